"""The parts of `cifar10 classify --engine ray` that run on the driver alone, whatever the cluster's size:
listing + stat'ing the files, journaling the rows it receives (Parquet shards), and writing OUT (CSV)
from the journal. These do not scale with the number of machines (README: "Ray engine on N machines").

    flock /tmp/cpu.lock python benchmarks/driver_costs.py --count 100000

Uses empty files (listing and stat do not read contents) and synthetic rows; deletes its folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cifar10.inference import iter_image_files  # noqa: E402
from cifar10.resume import FileKey, Journal, records_to_table  # noqa: E402
from cifar10.contract import CLASS_NAMES  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=1024, help="rows per Parquet shard (the engine's block)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cifar10-driver-"))
    try:
        for i in range(args.count):
            sub = work / "files" / f"{i // 1000:03d}"
            if i % 1000 == 0:
                sub.mkdir(parents=True)
            (sub / f"{i:06d}.png").touch()
        started = time.perf_counter()
        files = list(iter_image_files([work / "files"]))
        keys = [FileKey.of(p) for p in files]
        list_s = time.perf_counter() - started

        rng = np.random.default_rng(0)
        probs = rng.dirichlet(np.ones(len(CLASS_NAMES)), size=args.count).astype(np.float32)
        records = [{"path": p, "key": k.key, "size": k.size, "mtime_ns": k.mtime_ns,
                    "label": CLASS_NAMES[int(pr.argmax())], "confidence": float(pr.max()), "error": "",
                    "probabilities": [float(x) for x in pr]} for p, k, pr in zip(files, keys, probs)]
        tables = [records_to_table(records[i:i + args.block]) for i in range(0, args.count, args.block)]
        journal = Journal(work / "out.csv")
        journal.dir.mkdir()
        started = time.perf_counter()
        for table in tables:  # what the driver does per block it receives
            journal.append_table(table)
        journal_s = time.perf_counter() - started
        started = time.perf_counter()
        (journal.dir / "run.json").write_text("{}")
        rows = journal.write_output(top_k=3)
        write_s = time.perf_counter() - started
        assert rows == args.count
        result = {"files": args.count, "list_and_stat_s": round(list_s, 2), "list_files_per_s": round(args.count / list_s),
                  "journal_s": round(journal_s, 2), "journal_rows_per_s": round(args.count / journal_s),
                  "write_csv_s": round(write_s, 2), "write_rows_per_s": round(args.count / write_s),
                  "command": "flock /tmp/cpu.lock python benchmarks/driver_costs.py " + " ".join(sys.argv[1:])}
        print(json.dumps(result, indent=2))
        out = REPO / "benchmarks" / "results" / "driver_costs.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
