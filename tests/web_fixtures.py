"""Fixtures for the web tests: a pixel-sensitive ONNX model, CIFAR-10 test images as files, samples.

The colour models of ``onnx_fixtures`` only look at the mean colour, so they cannot tell whether two
preprocessing paths agree pixel by pixel. ``build_pixel_model`` fits a ridge-regression classifier
on raw CIFAR-10 pixels (about 39% test accuracy, in a second or two): every pixel moves its output,
which makes it a fair judge of browser-vs-Python agreement when no trained model is exported yet.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from PIL import Image

from cifar10 import contract
from cifar_fixtures import SHARED_CIFAR
from onnx_fixtures import MAPPING_B, contract_model, write_model

PIXEL_MODEL_VERSION = "1"


def have_cifar() -> bool:
    return (SHARED_CIFAR / "test_batch").is_file() and (SHARED_CIFAR / "data_batch_1").is_file()


def cifar_split(name: str = "test_batch"):
    from training.data import load_batch

    return load_batch(SHARED_CIFAR / name)


def build_pixel_model(directory: Path, name: str = "pixel_ridge", n_train: int = 5000, lam: float = 300.0) -> Path:
    """``<directory>/<name>.onnx`` + card: softmax(ridge regression on raw pixels); returns the .onnx path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.onnx"
    if path.is_file() and path.with_suffix(".json").is_file():
        card = json.loads(path.with_suffix(".json").read_text())
        if card.get("fixture_version") == PIXEL_MODEL_VERSION:
            return path
    train = cifar_split("data_batch_1")
    x = train.x[:n_train].reshape(n_train, -1).astype(np.float64) / 255.0
    y = np.eye(contract.NUM_CLASSES)[train.y[:n_train]]
    mean = x.mean(0)
    xc = x - mean
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(xc.shape[1]), xc.T @ (y - y.mean(0)))
    b = y.mean(0)
    scale = 8.0  # sharpen the regression outputs into confident-looking probabilities

    test = cifar_split("test_batch")
    logits = (test.x.reshape(len(test.y), -1) / 255.0 - mean) @ w + b
    accuracy = float((logits.argmax(1) == test.y).mean())

    inits = [numpy_helper.from_array(np.array([-1, 3072], np.int64), "flat_shape"),
             numpy_helper.from_array(np.array(1 / 255.0, np.float32), "inv255"),
             numpy_helper.from_array(mean.astype(np.float32), "mean"),
             numpy_helper.from_array((w * scale).astype(np.float32), "W"),
             numpy_helper.from_array((b * scale).astype(np.float32), "b")]
    nodes = [helper.make_node("Reshape", [contract.INPUT_NAME, "flat_shape"], ["flat"]),
             helper.make_node("Mul", ["flat", "inv255"], ["unit"]),
             helper.make_node("Sub", ["unit", "mean"], ["centred"]),
             helper.make_node("MatMul", ["centred", "W"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], [contract.OUTPUT_NAME], axis=1)]
    model = contract_model(name, nodes, inits)
    onnx.save(model, path)
    path.with_suffix(".json").write_text(json.dumps({
        "name": name, "test_accuracy": accuracy, "fixture_version": PIXEL_MODEL_VERSION,
        "summary": f"test fixture: ridge regression on raw pixels ({n_train} training images)"}, indent=2))
    return path


def write_pngs(directory: Path, images: np.ndarray, prefix: str = "img") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = directory / f"{prefix}_{i:05d}.png"
        Image.fromarray(image).save(path, compress_level=1)
        paths.append(path)
    return paths


def write_upscaled(directory: Path, images: np.ndarray, size: tuple[int, int], fmt: str = "JPEG",
                   prefix: str = "big", quality: int = 90) -> list[Path]:
    """Each 32x32 image enlarged (bicubic) to ``size`` and saved as ``fmt``: photos where resizing matters."""
    directory.mkdir(parents=True, exist_ok=True)
    ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
    paths = []
    for i, image in enumerate(images):
        big = Image.fromarray(image).resize(size, Image.Resampling.BICUBIC)
        path = directory / f"{prefix}_{size[0]}x{size[1]}_{i:05d}.{ext}"
        options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {"compress_level": 1}
        big.save(path, fmt, **options)
        paths.append(path)
    return paths


def jpeg_with_orientation(path: Path, image: np.ndarray, orientation: int, size=(240, 160)) -> Path:
    """A JPEG whose EXIF says ``orientation`` (e.g. 6: rotate 90 degrees clockwise to display)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).resize(size, Image.Resampling.BICUBIC).save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def sample_dir(directory: Path, per_class: int = 1) -> Path:
    """resources/samples-like folder: one CIFAR-10 test image per class, named after the class."""
    directory.mkdir(parents=True, exist_ok=True)
    if have_cifar():
        test = cifar_split("test_batch")
        for cls, name in enumerate(contract.CLASS_NAMES):
            index = int(np.flatnonzero(test.y == cls)[0])
            Image.fromarray(test.x[index]).save(directory / f"{name}.png")
    else:
        rng = np.random.default_rng(0)
        for name in contract.CLASS_NAMES[:4]:
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(directory / f"{name}.png")
    return directory


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def add_shipped_models(directory: Path) -> list[str]:
    """Copy the real exported models (exported_models/), if any, next to the test models: the
    screenshots then show trained networks. Returns their names, best test accuracy first."""
    from cifar10.paths import shipped_models_dir
    from cifar10.registry import discover_models

    models, _ = discover_models([shipped_models_dir()])
    directory.mkdir(parents=True, exist_ok=True)
    for model in models:
        for suffix in (".onnx", ".json"):
            source = model.onnx_path.with_suffix(suffix)
            (directory / source.name).write_bytes(source.read_bytes())
    return [m.name for m in models]


def write_colour_models(directory: Path) -> Path:
    """The web tests' two tiny models: colour_a (61 % "test accuracy", listed first) and colour_b (42 %,
    another colour-to-class mapping)."""
    write_model(directory, "colour_a", test_accuracy=0.61)
    write_model(directory, "colour_b", test_accuracy=0.42, mapping=MAPPING_B)
    return directory
