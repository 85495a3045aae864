"""Local engine vs Ray engine for `cifar10 classify --output`: files/s, peak memory, Ray's start-up overhead.

Writes N CIFAR-10 images as PNG files into a temporary folder (the 60,000 train + test images, then their
mirror images, so up to 120,000 distinct files), classifies the folder with each engine in a fresh
process (`python -m cifar10_cli classify DIR --output OUT.csv [--engine ray]`, a local Ray instance),
samples the memory of the whole process tree (the driver and, for Ray, its GCS, raylet and workers)
every 0.2 s, checks that both engines wrote the same rows, and deletes the folder. Run it alone:

    flock /tmp/cpu.lock python benchmarks/classify_engines.py --count 100000

Memory: PSS (proportional set size, shared pages split between the processes that map them) summed
over the tree, and the sum of RSS (which counts shared pages, such as Ray's object store, once per process).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CIFAR10_DIR") or REPO.parent / "shared" / "data" / "cifar-10-batches-py")
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_images() -> np.ndarray:
    """All 60,000 images, NHWC uint8."""
    parts = []
    for name in BATCHES:
        with open(DATA / name, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        parts.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(parts)


def _write_chunk(args) -> int:
    from PIL import Image

    folder, start, images = args
    for offset, image in enumerate(images):
        index = start + offset
        sub = Path(folder) / f"{index // 1000:03d}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(image).save(sub / f"{index:06d}.png")
    return len(images)


def write_pngs(folder: Path, count: int) -> float:
    images = cifar_images()
    if count > 2 * len(images):
        raise SystemExit(f"at most {2 * len(images)} distinct images")
    images = np.concatenate([images, images[:, :, ::-1]])[:count]
    started = time.perf_counter()
    chunks = [(str(folder), i, images[i:i + 1000]) for i in range(0, count, 1000)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        written = sum(pool.map(_write_chunk, chunks))
    assert written == count
    return time.perf_counter() - started


def tree_memory(root: int) -> tuple[int, int, int]:
    """(PSS, RSS, processes) summed over ``root`` and its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    pss = rss = count = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
            count += 1
        except OSError:
            continue
    return pss, rss, count


def run_classify(folder: Path, out: Path, model: str, engine: str, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "cifar10_cli", "classify", str(folder), "--output", str(out), "--model", model,
               "--engine", engine, *extra]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    peak = {"pss": 0, "rss": 0, "processes": 0}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            pss, rss, count = tree_memory(process.pid)
            peak["pss"], peak["rss"] = max(peak["pss"], pss), max(peak["rss"], rss)
            peak["processes"] = max(peak["processes"], count)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    summary = re.search(r"([\d,]+) files classified in ([\d.]+) s", stderr)
    startup = re.search(r"\(([\d.]+) s to start\)", stderr)
    files = int(summary.group(1).replace(",", ""))
    return {"engine": engine, "files": files, "command_s": float(summary.group(2)), "wall_s": round(wall, 2),
            "files_per_s_command": round(files / float(summary.group(2))),
            "files_per_s_wall": round(files / wall), "ray_startup_s": float(startup.group(1)) if startup else None,
            "files_per_s_after_startup": round(files / (float(summary.group(2)) - (float(startup.group(1)) if startup else 0))),
            "peak_pss_mb": round(peak["pss"] / 2**20), "peak_rss_sum_mb": round(peak["rss"] / 2**20),
            "processes": peak["processes"], "command": " ".join(["cifar10", *command[3:]])}


def same_rows(a: Path, b: Path) -> tuple[int, float]:
    """Rows compared by path: (rows, largest probability difference); raises if labels or errors differ."""
    def load(path):
        with open(path, newline="") as f:
            return {row["path"]: row for row in csv.DictReader(f)}
    left, right = load(a), load(b)
    assert left.keys() == right.keys(), "different files"
    worst = 0.0
    for path, row in left.items():
        other = right[path]
        assert row["label"] == other["label"] and row["error"] == other["error"], path
        for key in ("confidence", "airplane", "cat", "truck"):
            if row[key]:
                worst = max(worst, abs(float(row[key]) - float(other[key])))
    return len(left), worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1000, help="a small run too: the fixed cost of each engine")
    parser.add_argument("--model", default=str(REPO / "exported_models" / "cnn_adam_m1.onnx"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "classify_engines.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cifar10-engines-"))
    try:
        images = work / "images"
        images.mkdir()
        write_s = write_pngs(images, args.count)
        print(f"wrote {args.count:,} PNG files in {write_s:.0f} s", flush=True)
        small = work / "small"
        small.mkdir()
        for sub in sorted(images.iterdir())[: max(1, args.small // 1000)]:
            shutil.copytree(sub, small / sub.name)
        results = []
        for label, folder in (("small", small), ("full", images)):
            for engine in ("local", "ray"):
                out = work / f"{label}-{engine}.csv"
                result = run_classify(folder, out, args.model, engine, [])
                result["case"] = label
                results.append(result)
                print(json.dumps(result), flush=True)
            rows, worst = same_rows(work / f"{label}-local.csv", work / f"{label}-ray.csv")
            print(f"{label}: {rows:,} rows, same labels and errors, largest probability difference {worst:.1e}")
        report = {"machine": f"{os.cpu_count()} CPUs", "count": args.count, "png_write_s": round(write_s, 1),
                  "model": Path(args.model).name, "results": results,
                  "command": "flock /tmp/cpu.lock python benchmarks/classify_engines.py " + " ".join(sys.argv[1:])}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print("\n| case | engine | files | files/s (command) | files/s (after Ray start-up) | files/s (wall) | Ray start-up | "
              "peak PSS | peak RSS sum | processes |\n|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            startup = "" if r["ray_startup_s"] is None else f"{r['ray_startup_s']:.1f} s"
            print(f"| {r['case']} | {r['engine']} | {r['files']:,} | {r['files_per_s_command']:,} | "
                  f"{r['files_per_s_after_startup']:,} | {r['files_per_s_wall']:,} | {startup} | "
                  f"{r['peak_pss_mb']:,} MB | {r['peak_rss_sum_mb']:,} MB | {r['processes']} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
