"""`cifar10 train --data PATH`: a model trained on a folder of labelled images, exported for the apps.

Tiny on purpose (CI has 2 cores): a few dozen 48-96 px real image files, 32 px models, 1 epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from cifar10 import contract

REPO = Path(__file__).resolve().parents[1]
CLASSES = {"cat": (200, 60, 40), "dog": (40, 170, 60), "frog": (50, 70, 210)}  # folder -> mean colour


def write_folder(root: Path, per_class: int = 12, classes: dict = CLASSES) -> Path:
    """One subfolder per class of real JPEG and PNG files (48-96 px, noisy colour by class), plus a corrupt
    .jpg and a .txt file."""
    rng = np.random.default_rng(0)
    for k, (name, colour) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(rng.integers(48, 97))
            pixels = np.clip(rng.normal(colour, 40, (side, side + 8 * (i % 3), 3)), 0, 255).astype(np.uint8)
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(pixels).save(folder / f"{name}_{i:02d}{suffix}")
    first = next(iter(classes))
    (root / first / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" + bytes(200))
    (root / first / "notes.txt").write_text("a text file in a class folder")
    return root


def run_train(args: list[str], tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "XDG_DATA_HOME": str(tmp_path / "user-data"), "XDG_CACHE_HOME": str(tmp_path / "user-cache")}
    return subprocess.run([sys.executable, "-m", "cifar10_cli", "train", *args, "--out", str(tmp_path / "runs"),
                           "--progress", "json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def events(stdout: str) -> list[dict]:
    """Every stdout line is one JSON object (nothing else is printed there)."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_train_on_a_folder_exports_a_model_the_apps_discover(tmp_path):
    from cifar10.registry import discover_models

    data = write_folder(tmp_path / "my pets")
    export_dir = tmp_path / "exported"
    result = run_train(["--model", "baseline", "--data", str(data), "--epochs", "1", "--image-size", "32",
                        "--name", "tiny", "--export-dir", str(export_dir)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = events(result.stdout)
    kinds = [e["event"] for e in log]
    assert "scan" in kinds and kinds.count("epoch") == 1 and kinds[-1] == "exported" and "error" not in kinds
    epoch = next(e for e in log if e["event"] == "epoch")
    assert epoch["epoch"] == 1 and epoch["epochs"] == 1 and 0 <= epoch["accuracy"] <= 1 and "val_accuracy" in epoch
    scan = next(e for e in log if e["event"] == "scan")
    reported = json.dumps(scan)
    assert "broken.jpg" in reported and "notes.txt" in reported  # the corrupt file and the text file are reported
    exported = log[-1]
    assert exported["model"] == "tiny" and Path(exported["path"]) == export_dir / "tiny.onnx"

    models, errors = discover_models([export_dir])
    assert errors == [] and [m.name for m in models] == ["tiny"]
    (info,) = models
    assert tuple(info.class_names) == tuple(CLASSES) and info.image_size == 32 and info.dataset == "my pets"
    card = json.loads((export_dir / "tiny.json").read_text())
    assert card["dataset"] == "my pets" and card["class_names"] == list(CLASSES) and card["image_size"] == 32
    assert card["onnx"]["input"] == [None, 32, 32, 3] and card["onnx"]["output"] == [None, 3]
    assert card["test_accuracy"] == exported["test_accuracy"]
    assert "broken.jpg" in json.dumps(card["data"]["report"]["skipped"])
    meta = {p.key: p.value for p in onnx.load(export_dir / "tiny.onnx").metadata_props}
    assert meta[contract.META_CONTRACT] == "3" and json.loads(meta[contract.META_CLASS_NAMES]) == list(CLASSES)
    # run.json keeps the same report; no staging folder is left behind.
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "broken.jpg" in json.dumps(json.loads((run_dir / "run.json").read_text())["data"]["report"])
    assert sorted(p.name for p in export_dir.iterdir() if p.name != "float") == [
        "tiny.confusion_matrix.png", "tiny.curves.png", "tiny.json", "tiny.onnx"]
    # Issue 26: an own-class export is quantized by default; int8 ships within 0.3 points, else the card says why.
    from training.quantize import is_quantized

    q = card["quantization"]
    if q.get("int8") == "not shipped":
        assert "the bar is 0.3 points" in q["reason"] and not is_quantized(export_dir / "tiny.onnx")
    else:
        assert is_quantized(export_dir / "tiny.onnx") and q["source"] == "float/tiny.onnx"
        assert (export_dir / "float" / "tiny.onnx").is_file() and not is_quantized(export_dir / "float" / "tiny.onnx")
        assert q["int8_test_accuracy"] >= q["float_test_accuracy"] - 0.003
        assert "held out from training" in card["calibration"]["fitted_on"]  # its own validation split


def test_a_failing_run_says_why_and_leaves_no_model(tmp_path):
    data = write_folder(tmp_path / "one-class", per_class=6, classes={"cat": (200, 60, 40)})
    export_dir = tmp_path / "exported"
    result = run_train(["--model", "baseline", "--data", str(data), "--epochs", "1", "--image-size", "32",
                        "--export-dir", str(export_dir)], tmp_path)
    assert result.returncode != 0
    log = events(result.stdout)
    assert log and log[-1]["event"] == "error" and "2 classes" in log[-1]["message"]
    assert not export_dir.exists() or not any(export_dir.iterdir())


def test_settings_for_folder_data():
    from cifar10.errors import UserFacingError
    from training.train import TrainSettings

    cifar = TrainSettings.for_model("efficientnet_lite0_transfer")
    assert cifar.image_size == 32 and cifar.shift_px == 4 and cifar.export_name == "efficientnet_lite0_transfer"
    folder = TrainSettings.for_model("efficientnet_lite0_transfer", data="/photos/My Pets!")
    assert folder.image_size == 128 and folder.shift_px == 16 and folder.export_name == "efficientnet_lite0_transfer-My_Pets"
    assert TrainSettings.for_model("animals10_cnn", data="/x/animals").image_size == 128
    assert TrainSettings.for_model("baseline", data="/x/y", image_size=64, name="mine").export_name == "mine"
    with pytest.raises(UserFacingError, match="--image-size"):
        TrainSettings.for_model("baseline", image_size=64)  # CIFAR-10 is 32 px


def test_animals10_cnn_follows_the_study_table():
    import keras

    from training.models import create_model, get_spec

    model = create_model("animals10_cnn", num_classes=10)
    assert model.input_shape == (None, 128, 128, 3) and model.output_shape == (None, 10)
    kinds = [type(layer).__name__ for layer in model.layers][2:]  # after InputLayer, Rescaling
    assert kinds == ["Conv2D", "MaxPooling2D", "Dropout"] * 3 + ["Flatten", "Dense", "Dropout", "Dense"]
    defaults = get_spec("animals10_cnn").defaults
    assert (defaults.optimizer, defaults.lr, defaults.batch_size, defaults.epochs) == ("adamw", 1e-3, 32, 60)
    assert defaults.early_stopping_patience > 0 and defaults.augment
    assert create_model("animals10_cnn", num_classes=3, image_size=32).output_shape == (None, 3)
    keras.backend.clear_session()


def test_efficientnet_transfer_any_classes_and_size_exports(tmp_path):
    from training.efficientnet_lite import efficientnet_lite0_transfer
    from training.evaluate import onnx_probabilities
    from training.export import onnx_shapes, to_onnx

    model = efficientnet_lite0_transfer(weights=None, num_classes=3, image_size=64)
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 3)
    path = to_onnx(model, tmp_path / "pets.onnx", "pets", class_names=("cat", "dog", "frog"), dataset="pets")
    assert onnx_shapes(path) == {"input": [None, 64, 64, 3], "output": [None, 3]}
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta[contract.META_CONTRACT] == "3" and meta["dataset"] == "pets"
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    probs = onnx_probabilities(path, x)
    np.testing.assert_allclose(probs, np.asarray(model(x.astype("float32"), training=False)), atol=1e-4)
