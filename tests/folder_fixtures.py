"""Folder datasets of real image files (JPEG and PNG, 96-160 px) written by the tests themselves.

The images are CIFAR-10 test images upscaled with Pillow when the shared copy of CIFAR-10 is there,
otherwise synthetic ones whose mean colour depends on the class (either way a tiny model can learn them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cifar_fixtures import SHARED_CIFAR

CLASSES = ("airplane", "automobile", "bird")
SIZES = (96, 112, 128, 144, 160)
_CIFAR_CACHE: dict = {}


def source_images(class_id: int, n: int) -> np.ndarray:
    """``n`` 32x32 uint8 images of CIFAR-10 class ``class_id`` (real ones if available)."""
    test_batch = SHARED_CIFAR / "test_batch"
    if test_batch.is_file():
        if "test" not in _CIFAR_CACHE:
            from cifar10.dataset import load_batch

            _CIFAR_CACHE["test"] = load_batch(test_batch)
        split = _CIFAR_CACHE["test"]
        return split.x[split.y == class_id][:n]
    rng = np.random.default_rng(class_id)
    base = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)][class_id % 4])
    return np.clip(rng.integers(-40, 40, (n, 32, 32, 3)) + base, 0, 255).astype(np.uint8)


def write_image(path: Path, image32: np.ndarray, size: int | tuple[int, int]) -> Path:
    """A 32x32 image upscaled (BICUBIC) to ``size`` and saved by suffix (.jpg quality 90, .png)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (size, size) if isinstance(size, int) else size
    im = Image.fromarray(image32).resize(size, Image.Resampling.BICUBIC)
    im.save(path, **({"quality": 90} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    return path


def corrupt_jpeg(path: Path) -> Path:
    """A real 128 px JPEG cut off after 40% of its bytes (a broken download)."""
    rng = np.random.default_rng(7)
    write_image(path, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), 128)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 5])
    return path


def write_folder_dataset(root: Path, per_class: int = 12, classes=CLASSES, *, corrupt: bool = True,
                         text: bool = True, offset: int = 0) -> dict[str, list[Path]]:
    """``root/<class>/<class>_<i>.jpg|png`` (alternating JPEG / PNG, sizes 96-160 px), plus (``corrupt``)
    ``root/<classes[0]>/broken.jpg`` and (``text``) ``root/<classes[0]>/notes.txt``.
    Returns {class: [image files written]} (the corrupt file and the text file not included)."""
    written: dict[str, list[Path]] = {}
    for class_id, name in enumerate(classes):
        images = source_images(class_id, per_class + offset)[offset:]
        written[name] = [write_image(root / name / f"{name}_{i}.{'jpg' if i % 2 == 0 else 'png'}", image,
                                     (SIZES[i % len(SIZES)], SIZES[(i + 1) % len(SIZES)]))
                         for i, image in enumerate(images)]
    if corrupt:
        corrupt_jpeg(root / classes[0] / "broken.jpg")
    if text:
        (root / classes[0] / "notes.txt").write_text("not an image\n", encoding="utf-8")
    return written
