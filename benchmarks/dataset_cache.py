"""Decode cache of a folder dataset: build speed (images/s), reuse time and peak memory.

Each measurement runs in a fresh child process (so its peak resident memory, ``ru_maxrss``, is its own):

1. **build**: ``load_folder_dataset(FOLDER, S)`` with an empty cache folder: scan, decode every file once
   (thread pool), write the memory-mapped array, split;
2. **reuse**: the same call again: nothing is decoded;
3. **cache only**: :func:`cifar10.image_cache.cache_images` alone (no splits in memory), empty cache.

Also recorded: the cache array's size on disk, and what full-size decoded images would take in memory.
Results go to ``benchmarks/results/dataset_cache.json``.

    python benchmarks/make_cifar_folder.py /tmp/cifar5            # 5 classes x 1,000 + test/, 128 px JPEG
    flock /tmp/cpu.lock python benchmarks/dataset_cache.py /tmp/cifar5 [--size 128] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
mode, folder, size, cache, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
start = time.perf_counter()
if mode == "cache_only":
    from cifar10.image_folders import scan_image_folder
    from cifar10.image_cache import cache_images
    scan = scan_image_folder(folder)
    files = [p for per_class in scan.files.values() for c in scan.classes for p in per_class[c]]
    cached = cache_images(files, size, root=folder, cache_dir=cache, workers=workers or None)
    out = {{"images": len(files), "decoded": cached.decoded, "failed": len(cached.errors)}}
else:
    from training.data import load_folder_dataset
    data = load_folder_dataset(folder, size, cache_dir=cache, workers=workers or None)
    out = {{"images": data.report["files"], "decoded": data.report["cache"]["decoded"],
           "train": len(data.train), "validation": len(data.val), "test": len(data.test),
           "failed": len(data.report["skipped"])}}
out["seconds"] = time.perf_counter() - start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_child(mode: str, folder: Path, size: int, cache: Path, workers: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode, str(folder), str(size),
                           str(cache), str(workers)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0, help="decode threads (default: min(8, CPUs))")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "dataset_cache.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    files = [p for p in args.folder.rglob("*") if p.is_file()]
    with Image.open(files[0]) as im:
        source_px = im.size
    with tempfile.TemporaryDirectory(prefix="dataset-cache-") as tmp:
        build = run_child("dataset", args.folder, args.size, Path(tmp) / "a", args.workers)
        reuse = run_child("dataset", args.folder, args.size, Path(tmp) / "a", args.workers)
        cache_only = run_child("cache_only", args.folder, args.size, Path(tmp) / "b", args.workers)
        npy = next((Path(tmp) / "a").glob("*/images-*.npy"))
        cache_mb = npy.stat().st_size / 2**20
    n = build["images"]
    result = {
        "command": f"flock /tmp/cpu.lock python benchmarks/dataset_cache.py {args.folder} --size {args.size}"
                   + (f" --workers {args.workers}" if args.workers else ""),
        "folder": str(args.folder), "files": n, "image_size": args.size, "source_image_px": list(source_px),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "workers": args.workers or min(8, os.cpu_count() or 2),
        "build": {**build, "images_per_s": round(n / build["seconds"], 1)},
        "reuse": reuse,
        "cache_only": {**cache_only, "images_per_s": round(n / cache_only["seconds"], 1)},
        "cache_file_mb": round(cache_mb, 1),
        "full_size_decoded_mb": round(n * source_px[0] * source_px[1] * 3 / 2**20, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
