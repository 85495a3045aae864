"""Write a folder dataset of real photos-as-files from CIFAR-10: the benchmark input for training on a folder.

Default: 5 classes (cat, dog, deer, horse, frog), 1,000 training images per class from the training batches
(the first ones of each class, in batch order), each upscaled 32 -> 128 px with Pillow BICUBIC and saved
as JPEG (quality 90), plus a ``test/`` split from the test batch (all 1,000 test images of each class)::

    OUT/train/cat/cat_00000.jpg ...   OUT/test/cat/cat_00000.jpg ...      (--layout split, the default)
    OUT/cat/train_00000.jpg, OUT/cat/test_00000.jpg ...                   (--layout flat: one folder per class)

    python benchmarks/make_cifar_folder.py /tmp/cifar5 [--classes cat dog deer horse frog] [--per-class 1000]
        [--test-per-class 1000] [--size 128] [--layout split|flat] [--data-dir DIR]

CIFAR-10 is read with :mod:`cifar10.dataset` (``--data-dir``, ``$CIFAR10_DIR`` or
``../shared/data/cifar-10-batches-py`` beside the project). An existing OUT is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cifar10.contract import CLASS_NAMES  # noqa: E402
from cifar10.dataset import TEST_BATCH, TRAIN_BATCHES, load_batch, resolve_data_dir  # noqa: E402

DEFAULT_CLASSES = ("cat", "dog", "deer", "horse", "frog")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-batches-py"


def write_split(out: Path, images, labels, classes, per_class: int, size: int, layout: str, split: str) -> int:
    from PIL import Image

    written = 0
    for name in classes:
        class_id = CLASS_NAMES.index(name)
        chosen = images[labels == class_id][:per_class]
        if len(chosen) < per_class:
            print(f"warning: only {len(chosen)} {split} images of {name}", file=sys.stderr)
        folder = out / split / name if layout == "split" else out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(chosen):
            stem = f"{name}_{i:05d}" if layout == "split" else f"{split}_{i:05d}"
            Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC).save(
                folder / f"{stem}.jpg", quality=90)
            written += 1
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES), choices=CLASS_NAMES, metavar="CLASS")
    parser.add_argument("--per-class", type=int, default=1000, help="training images per class (default 1000)")
    parser.add_argument("--test-per-class", type=int, default=1000, help="test images per class (0: no test split)")
    parser.add_argument("--size", type=int, default=128, help="side in pixels (default 128)")
    parser.add_argument("--layout", choices=("split", "flat"), default="split")
    parser.add_argument("--data-dir", default=os.environ.get("CIFAR10_DIR") or (str(SHARED) if SHARED.is_dir() else None))
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    if args.out.exists():
        if not args.force:
            parser.error(f"{args.out} exists (use --force to replace it)")
        shutil.rmtree(args.out)
    data = resolve_data_dir(args.data_dir)
    start = time.perf_counter()
    import numpy as np

    batches = [load_batch(data / name) for name in TRAIN_BATCHES]
    x, y = np.concatenate([b.x for b in batches]), np.concatenate([b.y for b in batches])
    n = write_split(args.out, x, y, args.classes, args.per_class, args.size, args.layout, "train")
    if args.test_per_class:
        test = load_batch(data / TEST_BATCH)
        n += write_split(args.out, test.x, test.y, args.classes, args.test_per_class, args.size, args.layout, "test")
    print(f"wrote {n} JPEG files ({args.size} px, {len(args.classes)} classes, {args.layout} layout) to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
