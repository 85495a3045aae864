"""Real image files on disk for the inference / CLI / desktop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from onnx_fixtures import BLUE, GREEN, RED


def solid(path: Path, rgb, size=(40, 30), **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, tuple(rgb)).save(path, **save)
    return path


def truncated_png(path: Path) -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def mixed_folder(root: Path) -> dict[str, object]:
    """Three solid colours (one JPEG in a sub-folder), a text file, a truncated PNG, an empty .jpg, a hidden file.

    Returns {relative path: rgb tuple or None (broken)} for every file that should get a row.
    """
    expected: dict[str, object] = {}
    solid(root / "red.png", RED)
    expected["red.png"] = RED
    solid(root / "green.bmp", GREEN)
    expected["green.bmp"] = GREEN
    solid(root / "sub" / "blue.jpg", BLUE, quality=95)
    expected["sub/blue.jpg"] = BLUE
    (root / "notes.txt").write_text("not an image")
    expected["notes.txt"] = None
    truncated_png(root / "sub" / "broken.png")
    expected["sub/broken.png"] = None
    (root / "empty.jpg").write_bytes(b"")
    expected["empty.jpg"] = None
    (root / ".hidden.png").write_bytes(b"hidden files are skipped")
    return expected
