"""Issue 26: static int8 quantization of an exported model (training/quantize.py, `cifar10 quantize`).

A tiny real contract-v2 model (colour dominance, GAP + Dense head, flip TTA, kNN open-set score, CAM) is
quantized; the int8 file must honour the contract with every optional output, carry re-fitted trust values
and a re-measured card, and ship (float twin to float/) only within the accuracy bar.
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
from cifar_fixtures import SHARED_CIFAR

from cifar10 import contract
from cifar10.inference import Classifier
from cifar10.registry import discover_models, load_model_info
from onnx_fixtures import BLUE, GREEN, RED, build_cam_model
from training import calibration, quantize
from training.data import Dataset, Split

ROOT = Path(__file__).resolve().parents[1]


def scenes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey backgrounds with a red, green or blue square (labels 0, 1, 2: the colour model's classes)."""
    rng = np.random.default_rng(seed)
    images = np.clip(np.full((n, 32, 32, 3), 128.0) + rng.normal(0, 6, (n, 32, 32, 3)), 0, 255)
    labels = np.arange(n) % 3
    for i in range(n):
        y, x, s = rng.integers(0, 20), rng.integers(0, 20), rng.integers(5, 12)
        images[i, y:y + s, x:x + s] = (RED, GREEN, BLUE)[labels[i]]
    labels = labels.copy()
    labels[::7] = 9  # a few wrong labels, so that calibration has something to fit
    return images.astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="module")
def data() -> Dataset:
    (tx, ty), (vx, vy), (sx, sy) = scenes(400, 1), scenes(200, 2), scenes(300, 3)
    return Dataset(train=Split(tx, ty), val=Split(vx, vy), test=Split(sx, sy), source=Path("scenes"))


def write_float_model(directory: Path, data: Dataset, name: str = "colour_knn") -> Path:
    """A contract-v2 model fitted like `cifar10 export` does (temperature, threshold, kNN bank) + its card."""
    directory.mkdir(parents=True, exist_ok=True)
    v1 = build_cam_model(name, flip_tta=True, sharpness=30.0)
    upgraded, trust = calibration.upgrade(v1, data.val.x, data.val.y, source="validation scenes",
                                          train_images=data.train.x)
    path = directory / f"{name}.onnx"
    onnx.save(upgraded, path)
    probs = quantize.run_graph(path, data.test.x, [contract.OUTPUT_NAME])[contract.OUTPUT_NAME]
    card = {"name": name, "summary": "test model: colour dominance, GAP + Dense",
            "test_accuracy": round(float((probs.argmax(1) == data.test.y).mean()), 4),
            "data": {"validation": len(data.val), "source": "…/scenes"}, "onnx": {"file": path.name}, **trust}
    path.with_suffix(".json").write_text(json.dumps(card, indent=2))
    (directory / f"{name}.curves.png").write_bytes(b"png")
    return path


def outputs(path: Path, images: np.ndarray) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {contract.INPUT_NAME: images.astype(np.float32)})))


def test_int8_file_keeps_the_contract_outputs_and_refits_its_trust_values(tmp_path, data):
    float_path = write_float_model(tmp_path / "float_models", data)
    out = tmp_path / "int8" / float_path.name
    path, card = quantize.quantize_model(float_path, out, data, calibration=64, timing=False, command="test")
    assert path == out and quantize.is_quantized(out) and not quantize.is_quantized(float_path)

    # The apps' own checks accept it, with every optional output (logits, ood_score, cam).
    info = load_model_info(out)
    classifier = Classifier(info, provider="cpu")
    assert set(classifier.outputs) == {contract.OUTPUT_NAME, *contract.OPTIONAL_OUTPUTS}
    got = classifier.predict_all(data.test.x, with_cam=True)
    assert got.cam.shape[:1] == (len(data.test),) and got.cam.shape[-1] == contract.NUM_CLASSES
    np.testing.assert_allclose(got.probabilities.sum(1), 1, atol=1e-5)
    float_out = outputs(float_path, data.test.x)
    agreement = (got.probabilities.argmax(1) == float_out[contract.OUTPUT_NAME].argmax(1)).mean()
    assert agreement >= 0.95

    # Trust values were re-fitted on the int8 graph: the threshold lets ~95 % of the held-out images pass.
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert float(meta[contract.META_TEMPERATURE]) == pytest.approx(card["calibration"]["temperature"], abs=1e-3)
    assert meta[contract.META_OOD_SCORE].startswith("knn") and meta[contract.META_CONTRACT] == "2"
    val_scores = outputs(out, data.val.x)[contract.OOD_SCORE_NAME]
    assert (val_scores > card["open_set"]["threshold"]).mean() == pytest.approx(
        card["open_set"]["held_out_flagged"], abs=1e-3)
    assert card["open_set"]["held_out_flagged"] <= 0.05 + 1 / len(data.val)
    assert "re-fitted on the int8 graph" in card["calibration"]["fitted_on"]
    inits = {i.name: i for i in onnx.load(out).graph.initializer}
    assert "knn__bank_t" not in inits and inits["knn__bank_t_int8"].data_type == onnx.TensorProto.INT8
    assert card["quantization"]["knn_bank"].startswith("int8")

    # The card is re-measured on the int8 file and records its float source.
    measured = float((got.probabilities.argmax(1) == data.test.y).mean())
    assert card["test_accuracy"] == pytest.approx(measured, abs=1e-4)
    q = card["quantization"]
    assert q["source_sha256"] == quantize.sha256(float_path) and q["source"].endswith(float_path.name)
    assert q["method"] == quantize.DEFAULT_METHOD and q["per_channel"] and q["calibration_images"] == 64
    assert q["int8_test_accuracy"] == card["test_accuracy"] and q["command"] == "test"
    assert q["meets_accuracy_bar"] == (q["float_test_accuracy"] - q["int8_test_accuracy"] <= 0.003 + 1e-9)
    assert card["summary"].endswith("(int8)") and card["onnx"]["file"] == out.name
    float_card = json.loads(float_path.with_suffix(".json").read_text())
    assert {k: card[k] for k in ("name", "data")} == {k: float_card[k] for k in ("name", "data")}  # copied as is


def test_the_trust_arithmetic_and_the_head_stay_float(tmp_path, data):
    float_path = write_float_model(tmp_path, data)
    out = tmp_path / "q" / float_path.name
    quantize.quantize_graph(float_path, out, data.val.x[:32])
    graph = onnx.load(out).graph
    producer = {o: n for n in graph.node for o in n.output}
    readers = {"knn__flat", "cam__nhwc"}  # where the trust arithmetic reads the backbone's (8-bit) features
    for node in graph.node:
        trust = node.name.startswith(("calib__", "cam__")) or any("knn__" in o or "ood__" in o for o in node.output)
        if trust and not readers & set(node.output):
            fed_by = {producer[i].op_type for i in node.input if i in producer}
            assert "DequantizeLinear" not in fed_by, node.name
        if node.op_type == "Softmax":  # the head and the calibrated probabilities compute in float
            assert producer[node.input[0]].op_type != "DequantizeLinear"
    assert {n.op_type for n in graph.node} >= {"QuantizeLinear", "DequantizeLinear", "Conv"}


def test_the_quantizers_own_lines_go_to_the_log_not_to_stdout(tmp_path, data, capsys, caplog):
    float_path = write_float_model(tmp_path, data)
    with caplog.at_level("INFO", logger="training.quantize"):
        quantize.quantize_graph(float_path, tmp_path / "q" / float_path.name, data.val.x[:32], method="percentile")
    printed = capsys.readouterr()
    assert "Percentile" not in printed.out + printed.err  # `cifar10 train --data` prints nothing of it ...
    assert any("Percentile : (" in r.getMessage() for r in caplog.records)  # ... `cifar10 --verbose` shows it


def test_a_last_calibration_batch_of_another_size_is_calibrated_too(tmp_path, data):
    # 45 images: batches of 32 and 13 (a folder's validation split); onnxruntime stacks a chunk's batches
    float_path = write_float_model(tmp_path, data)
    for method in ("percentile", "entropy"):
        out = tmp_path / method / float_path.name
        done = quantize.quantize_graph(float_path, out, data.val.x[:45], method=method)
        assert done["calibration_images"] == 45 and quantize.is_quantized(out)


def test_calibration_images_are_held_out_training_images_never_test(data):
    pool, text = quantize.calibration_pool(data)
    assert pool is data.val.x and "validation" in text
    no_val = Dataset(train=data.train, val=Split(data.val.x[:0], data.val.y[:0]), test=data.test, source=Path("x"))
    pool, text = quantize.calibration_pool(no_val)
    assert pool is data.train.x and "training images" in text
    images, labels, crossfit, _ = quantize.held_out(no_val, {})
    assert crossfit and images is data.test.x  # fast_cnn's case: trust values cross-fitted on test halves
    sample = quantize.calibration_sample(data.val.x, 50)
    assert len(sample) == 50 and np.array_equal(sample, quantize.calibration_sample(data.val.x, 50))


def test_in_place_ships_the_int8_model_and_moves_the_float_twin(tmp_path, data):
    float_path = write_float_model(tmp_path / "models", data)
    float_bytes, float_sha = float_path.read_bytes(), quantize.sha256(float_path)
    shipped, path, card = quantize.quantize_in_place(float_path, data, calibration=64, timing=False,
                                                     max_drop=1.0)
    assert shipped and path == float_path and quantize.is_quantized(path)
    twin = tmp_path / "models" / "float" / float_path.name
    assert twin.read_bytes() == float_bytes and twin.with_suffix(".json").is_file()
    assert (twin.parent / "colour_knn.curves.png").is_file() and (path.parent / "colour_knn.curves.png").is_file()
    assert card["quantization"]["source"] == "float/colour_knn.onnx"
    assert card["quantization"]["source_sha256"] == float_sha
    models, problems = discover_models([tmp_path / "models"])  # float/ is not discovered, like study/
    assert not problems and [m.name for m in models] == ["colour_knn"]
    assert quantize.is_quantized(models[0].onnx_path)
    assert json.loads(path.with_suffix(".json").read_text())["quantization"]["meets_accuracy_bar"] is True
    assert not list((tmp_path / "models").glob(".*"))  # no staging folder left behind
    with pytest.raises(quantize.QuantizeError, match="already int8"):
        quantize.quantize_in_place(path, data, timing=False)


def test_in_place_keeps_the_float_model_when_int8_loses_too_much(tmp_path, data):
    float_path = write_float_model(tmp_path, data)
    before = float_path.read_bytes()
    shipped, path, card = quantize.quantize_in_place(float_path, data, calibration=64, timing=False,
                                                     max_drop=-1.0)  # an impossible bar
    assert not shipped and path == float_path and float_path.read_bytes() == before
    assert not (tmp_path / "float").exists() and not list(tmp_path.glob(".*"))
    note = json.loads(float_path.with_suffix(".json").read_text())["quantization"]
    assert note["int8"] == "not shipped" and "the bar is" in note["reason"]
    assert load_model_info(float_path).card["quantization"]["int8"] == "not shipped"


def test_cli_constants_match_the_training_module():
    from cifar10_cli import quantize as cli

    assert cli.METHODS == quantize.METHODS and cli.DEFAULT_METHOD == quantize.DEFAULT_METHOD
    assert cli.DEFAULT_CALIBRATION_IMAGES == quantize.DEFAULT_CALIBRATION_IMAGES
    assert cli.MAX_ACCURACY_DROP == quantize.MAX_ACCURACY_DROP


@pytest.mark.skipif(not (SHARED_CIFAR / "test_batch").is_file(),
                    reason=f"needs CIFAR-10 at {SHARED_CIFAR}: set CIFAR10_DIR to a cifar-10-batches-py folder")
def test_cli_quantize_writes_an_int8_twin_to_output(tmp_path, data):
    float_path = write_float_model(tmp_path / "models", data, name="colour_cli")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CIFAR10_MODELS_DIR": str(tmp_path / "models"),
           "CIFAR10_DIR": str(SHARED_CIFAR)}
    done = subprocess.run([sys.executable, "-m", "cifar10_cli", "--verbose", "quantize", "colour_cli", "--output",
                           str(out), "--calibration", "32", "--no-timing"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "int8, test accuracy" in done.stdout and "Percentile" not in done.stdout
    assert "onnxruntime.quantization: Percentile : (" in done.stderr  # --verbose: the quantizer's lines, on stderr
    card = json.loads((out / "colour_cli.json").read_text())
    assert card["quantization"]["calibration_images"] == 32
    assert card["quantization"]["command"].startswith("cifar10 --verbose quantize colour_cli")
    assert "the last 200 training images" in card["calibration"]["fitted_on"]  # the card's validation size
    assert quantize.is_quantized(out / "colour_cli.onnx") and float_path.is_file()
    again = subprocess.run([sys.executable, "-m", "cifar10_cli", "quantize", str(out / "colour_cli.onnx")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2 and "already int8" in again.stderr


def test_the_leaderboard_lists_the_float_twin_as_leaderboard_only(tmp_path, data):
    from training.report import load_cards

    float_path = write_float_model(tmp_path / "models", data)
    quantize.quantize_in_place(float_path, data, calibration=32, timing=False, max_drop=1.0)
    cards = {c["name"]: c["_ships"] for c in load_cards(tmp_path / "models")}
    assert cards == {"colour_knn (int8)": True, "colour_knn (float)": False}
