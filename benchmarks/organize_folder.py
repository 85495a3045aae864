"""``cifar10 organize`` on a 10,000-file folder: time of move, copy and --undo, and that undo restores the tree.

The folder is the CIFAR-10 test images written as PNG files in 10 sub-folders (file names repeat across
sub-folders, so name clashes are exercised), plus a few unreadable files. For each mode, in a fresh
copy of that folder, it runs the real command in a subprocess and times it end to end (model load,
classification, the journalled file operations with their fsyncs):

1. ``cifar10 organize SRC --into DST --mode move`` then ``cifar10 organize --undo DST``;
2. ``cifar10 organize SRC --into DST`` (copy) then ``--undo``;

and checks after each undo that SRC is byte-identical to before (sha256 of every file, same folder set)
and that DST is gone. Results go to ``benchmarks/results/organize_folder.json``.

    flock /tmp/cpu.lock python benchmarks/organize_folder.py [--count 10000] [--model fast_cnn] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cifar10.organize import tree_digest  # noqa: E402


def make_folder(root: Path, count: int, data_dir: str | None) -> None:
    from PIL import Image

    from cifar10.dataset import load_test_set

    test = load_test_set(data_dir, limit=count)
    for i, (image, label) in enumerate(zip(test.x, test.y)):
        sub = root / f"camera_{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"IMG_{i // 10:04d}.png")  # the same names in every sub-folder
    for i in range(5):
        (root / f"camera_{i}" / f"broken_{i}.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cifar10_cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cifar10 {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--model", default="fast_cnn")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR"))
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "organize_folder.json")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="organize-bench-", dir=args.work))
    try:
        pristine = work / "pristine"
        t0 = time.perf_counter()
        make_folder(pristine, args.count, args.data_dir)
        before = tree_digest(pristine)
        files = sum(1 for v in before.values() if v != "DIR")
        print(f"{files} files ({args.count} PNG + 5 unreadable) written in {time.perf_counter() - t0:.1f} s under {work}")
        results = {"files": files, "model": args.model, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "python": platform.python_version(), "runs": []}
        for mode in ("move", "copy"):
            src, dst = work / f"src-{mode}", work / f"sorted-{mode}"
            shutil.copytree(pristine, src)
            src_before = tree_digest(src)
            organize_s, done = cli("organize", str(src), "--into", str(dst), "--mode", mode, "--model", args.model)
            journal_lines = sum(1 for _ in open(dst / ".cifar10-organize.jsonl", encoding="utf-8"))
            phases = re.search(r"\(classifying ([\d.]+) s, \w+ing ([\d.]+) s\)", done.stderr)
            classify_s, files_s = (float(phases.group(1)), float(phases.group(2))) if phases else (None, None)
            sorted_files = sum(1 for p in dst.rglob("*") if p.is_file() and not p.name.startswith("."))
            undo_s, undone = cli("organize", "--undo", str(dst))
            identical = tree_digest(src) == src_before
            run = {"mode": mode, "organize_s": round(organize_s, 1), "classify_s": classify_s, "file_ops_s": files_s,
                   "undo_s": round(undo_s, 1),
                   "files_sorted": sorted_files, "journal_lines": journal_lines,
                   "organize_rc": done.returncode, "undo_rc": undone.returncode,
                   "undo_restored_byte_identical": identical, "dst_removed_by_undo": not dst.exists(),
                   "summary": done.stderr.strip().splitlines()[-4:]}
            results["runs"].append(run)
            print(f"{mode}: organize {organize_s:.1f} s end to end ({sorted_files} files sorted; classifying "
                  f"{classify_s} s, journalled file operations {files_s} s), "
                  f"undo {undo_s:.1f} s; after undo the source tree is byte-identical: {identical}; "
                  f"DST removed: {not dst.exists()}")
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(dst, ignore_errors=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
        return 0 if all(r["undo_restored_byte_identical"] and r["dst_removed_by_undo"] for r in results["runs"]) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
