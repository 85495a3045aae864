"""Regenerate resources/samples/: the first CIFAR-10 *test* image of each class, as 32x32 PNG.

File names are ``<class>_<test index>.png`` (e.g. ``cat_0.png``: test image 0 is a cat). They are
kept at 32x32, so :func:`cifar10.preprocess.load_image` returns exactly the test-set pixels and a
model's prediction on a sample equals its prediction in the test-set evaluation. Apps upscale them
for display. Used by the desktop app screenshot, the web apps' examples and packaging self-tests.

    python resources/make_samples.py [--data-dir DIR]   (default: $CIFAR10_DIR, else the usual places)
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from cifar10.contract import CLASS_NAMES  # noqa: E402

CANDIDATES = (os.environ.get("CIFAR10_DIR"), HERE.parent.parent / "shared/data/cifar-10-batches-py",
              Path.home() / ".cache/cifar10-studio/cifar-10-batches-py")


def load_test_batch(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC images and labels of the official ``test_batch`` (no TensorFlow needed)."""
    for candidate in ([data_dir] if data_dir else CANDIDATES):
        if candidate and (Path(candidate) / "test_batch").is_file():
            with open(Path(candidate) / "test_batch", "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return np.ascontiguousarray(images), np.asarray(batch[b"labels"], np.int64)
    raise SystemExit("CIFAR-10 test_batch not found: pass --data-dir or set CIFAR10_DIR")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=HERE / "samples")
    args = parser.parse_args(argv)
    images, labels = load_test_batch(args.data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()
    for class_id, name in enumerate(CLASS_NAMES):
        index = int(np.flatnonzero(labels == class_id)[0])
        path = args.out / f"{name}_{index}.png"
        Image.fromarray(images[index]).save(path, optimize=True)
        print(path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
