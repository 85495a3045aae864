"""Plant label mistakes in a copy of a class-folder dataset, then score `cifar10 label-issues` on it.

    python benchmarks/plant_label_mistakes.py plant SRC DST --mistakes 21 --seed 0   # DST/<class>/..., DST.truth.csv
    python benchmarks/plant_label_mistakes.py score DST.truth.csv ISSUES.csv

`plant` copies every picture of SRC (all splits, flat layout in DST) and puts ``--mistakes`` of them, chosen at
random, in another class's folder; the truth CSV lists them (path in DST, true class, planted class).
`score` prints recall (planted mistakes listed) and precision (listed pictures that were planted).
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cifar10.image_folders import scan_image_folder  # noqa: E402


def plant(src: Path, dst: Path, mistakes: int, seed: int) -> None:
    scan = scan_image_folder(src)
    pictures = [(path, name) for per_class in scan.files.values() for name in scan.classes
                for path in per_class.get(name, [])]
    rng = random.Random(seed)
    wrong = set(rng.sample(range(len(pictures)), mistakes))
    rows = []
    for i, (path, name) in enumerate(pictures):
        target = rng.choice([c for c in scan.classes if c != name]) if i in wrong else name
        out = dst / target / f"{i:05d}{Path(path).suffix}"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        if i in wrong:
            rows.append((str(out), name, target))
    with open(f"{dst}.truth.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "true_label", "planted_label"), *rows])
    print(f"{len(pictures)} pictures in {dst}, {len(rows)} in a wrong class folder ({dst}.truth.csv)")


def score(truth: Path, issues: Path) -> None:
    planted = {row["path"]: row for row in csv.DictReader(open(truth))}
    listed = list(csv.DictReader(open(issues)))
    found = [row for row in listed if row["path"] in planted]
    right = sum(row["suggested_label"] == planted[row["path"]]["true_label"] for row in found)
    print(f"listed {len(listed)}, planted {len(planted)}, planted and listed {len(found)}: recall "
          f"{len(found) / max(1, len(planted)):.3f}, precision {len(found) / max(1, len(listed)):.3f}; "
          f"suggested class right for {right} of {len(found)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plant")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--mistakes", type=int, default=21)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("score")
    p.add_argument("truth", type=Path)
    p.add_argument("issues", type=Path)
    args = parser.parse_args()
    plant(args.src, args.dst, args.mistakes, args.seed) if args.command == "plant" else score(args.truth, args.issues)
