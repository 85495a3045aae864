"""Real (tiny) Keras training, tf2onnx export and onnxruntime parity. No full training here."""

import json

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cifar10 import contract
from cifar_fixtures import write_dataset
from training import models
from training.export import export_run
from training.train import TrainSettings, train


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", per_batch=1100)  # 5,500 train rows: 5,000 held out


@pytest.fixture(scope="module")
def exported(tiny_cifar, tmp_path_factory):
    """One epoch of cnn_adam_m1 on 400 training images, then the full export path."""
    out = tmp_path_factory.mktemp("out")
    settings = TrainSettings.for_model("cnn_adam_m1", epochs=1, limit=400)
    run_dir = train(settings, data_dir=tiny_cifar, out=out / "runs", export_dir=out / "models",
                    command="cifar10 train --model cnn_adam_m1 --epochs 1 --limit 400")
    return run_dir, out / "models"


def test_study_parameter_counts():
    model = models.create_model("cnn_adam_m1")
    # The study's layer table: 323,946 parameters of which 323,050 trainable.
    assert model.count_params() == 323_946
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 323_050


@pytest.mark.parametrize("name", models.model_names())
def test_every_model_maps_raw_pixels_to_probabilities(name):
    # Transfer models without their ImageNet weights: no download, no torch.
    # Every model builds for any class count; those that take image_size build at another size too.
    weights = {"weights": None} if models.get_spec(name).pretrained else {}
    for kwargs in ({}, {"num_classes": 3, **({"image_size": 48} if models.build_accepts(name, "image_size") else {})}):
        model = models.create_model(name, **weights, **kwargs)
        size, classes = model.input_shape[1], kwargs.get("num_classes", 10)
        probs = model.predict(np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32"), verbose=0)
        assert probs.shape == (3, classes)
        np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    assert models.build_accepts(name, "image_size") == (name not in ("fast_cnn", "fast_cnn_95"))


def test_unknown_model_lists_known_ones():
    with pytest.raises(KeyError, match="known models: animals10_cnn, baseline"):
        models.get_spec("resnet9000")


def test_settings_take_study_defaults_and_overrides():
    s = TrainSettings.for_model("baseline")
    assert (s.epochs, s.batch_size, s.optimizer, s.lr) == (10, 64, "adam", 1e-3)
    s = TrainSettings.for_model("cnn_adam_m2", lr=0.05)  # the study's "adam_m2" column lists SGD
    assert (s.optimizer, s.lr, s.batch_size) == ("sgd_plain", 0.05, 32)
    s = TrainSettings.for_model("cnn_sgd_m1")  # and its "sgd_m1" column lists Adam
    assert (s.optimizer, s.lr, s.batch_size, s.epochs) == ("adam", 1e-3, 32, 50)


def test_vgg16_transfer_builds_without_download_and_fine_tunes_the_head_only():
    model = models.create_model("vgg16_transfer", weights=None)
    base = next(layer for layer in model.layers if layer.name == "vgg16")
    assert not base.trainable
    frozen_before = [w.numpy().copy() for w in base.weights[:2]]
    head = model.get_layer("probabilities")
    head_before = head.kernel.numpy().copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    model.fit(x, np.arange(16) % 10, epochs=1, batch_size=8, verbose=0)
    assert not np.allclose(head.kernel.numpy(), head_before)
    for before, w in zip(frozen_before, base.weights[:2]):
        np.testing.assert_array_equal(before, w.numpy())


def test_training_run_records_what_happened(exported):
    run_dir, _ = exported
    record = json.loads((run_dir / "run.json").read_text())
    assert record["epochs_run"] == 1 and record["settings"]["limit"] == 400
    assert record["data"]["train"] == 400
    assert (run_dir / "best.keras").exists() and (run_dir / "history.csv").exists()
    assert (run_dir / "curves.png").stat().st_size > 1000


def test_export_meets_the_onnx_contract(exported, tiny_cifar):
    _, models_dir = exported
    proto = onnx.load(models_dir / "cnn_adam_m1.onnx")
    (inp,), outputs = proto.graph.input, [o.name for o in proto.graph.output]
    # Contract v3 (v2's outputs: calibrated probabilities, logits, the open-set score; cnn_adam_m1's head is
    # GAP + Dense + Dense, so no CAM: occlusion is used for its heatmap), with CIFAR-10's classes and size.
    assert inp.name == contract.INPUT_NAME
    assert outputs == [contract.OUTPUT_NAME, contract.LOGITS_NAME, contract.OOD_SCORE_NAME]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [32, 32, 3] and isinstance(dims[0], str)  # dynamic batch
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[contract.META_CLASS_NAMES]) == list(contract.CLASS_NAMES)
    assert meta[contract.META_MODEL_NAME] == "cnn_adam_m1" and meta[contract.META_CONTRACT] == "3"
    assert meta["dataset"] == "CIFAR-10"
    card = json.loads((models_dir / "cnn_adam_m1.json").read_text())
    assert card["dataset"] == "CIFAR-10" and card["class_names"] == list(contract.CLASS_NAMES)
    assert card["image_size"] == 32 and card["onnx"]["input"] == [None, 32, 32, 3] and card["onnx"]["output"] == [None, 10]
    calibration, open_set = card[contract.CARD_CALIBRATION], card[contract.CARD_OPEN_SET]
    assert float(meta[contract.META_TEMPERATURE]) == pytest.approx(calibration["temperature"], rel=1e-3)
    assert "validation split" in calibration["fitted_on"]
    # The temperature minimises the negative log-likelihood on the images it was fitted on, so there the
    # calibrated probabilities are at least as likely as the raw ones (ECE, a binned figure, need not drop
    # for a one-epoch model). The raw probabilities are the calibrated ones with the temperature undone.
    from training.calibration import calibrated
    from training.data import load_cifar10

    val = load_cifar10(tiny_cifar, limit=400).val
    session = ort.InferenceSession(str(models_dir / "cnn_adam_m1.onnx"))
    fitted = session.run([contract.OUTPUT_NAME], {contract.INPUT_NAME: val.x.astype(np.float32)})[0]
    raw = calibrated(fitted, 1 / calibration["temperature"])

    def nll(p):
        return -np.log(np.clip(p[np.arange(len(val.y)), val.y], 1e-30, None)).mean()
    assert nll(fitted) <= nll(raw) + 1e-4
    assert open_set["score"] == "knn" and open_set["held_out_flagged"] <= 0.06
    assert contract.open_set_threshold(card) == open_set["threshold"]
    # Raw 0..255 pixels in, probabilities out.
    session = ort.InferenceSession(str(models_dir / "cnn_adam_m1.onnx"), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"image": np.full((2, 32, 32, 3), 200, np.float32)})[0]
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_onnx_matches_keras_and_card_matches_onnx(exported):
    _, models_dir = exported
    card = json.loads((models_dir / "cnn_adam_m1.json").read_text())
    parity = card["onnx"]["parity_vs_keras"]
    assert parity["images"] == 400 and parity["argmax_agreement"] == 1.0 and parity["max_abs_diff"] < 1e-4
    assert card["parameters"] == 323_946
    assert card["training_command"] == "cifar10 train --model cnn_adam_m1 --epochs 1 --limit 400"
    metrics = card["test_metrics"]
    assert card["test_accuracy"] == round(metrics["accuracy"], 4)
    assert np.trace(metrics["confusion_matrix"]) == round(metrics["accuracy"] * metrics["n"])
    for key in ("training_wall_time_s", "machine", "libraries", "data", "ece", "f1_macro", "architecture"):
        assert key in card


def test_flip_tta_is_inside_the_exported_graph(tmp_path):
    from training.export import to_onnx

    path = to_onnx(models.create_model("baseline"), tmp_path / "baseline.onnx", "baseline", tta="flip")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    mirrored = np.ascontiguousarray(x[:, :, ::-1])
    plain, flipped = (session.run(None, {"image": batch})[0] for batch in (x, mirrored))
    # Averaging over both views makes the model exactly mirror-invariant; without TTA it is not.
    np.testing.assert_allclose(plain, flipped, atol=1e-6)
    no_tta = to_onnx(models.create_model("baseline"), tmp_path / "plain.onnx", "baseline")
    session = ort.InferenceSession(str(no_tta), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"image": x})[0] - session.run(None, {"image": mirrored})[0]).max() > 1e-4


def test_flip_shift_tta_exports_and_matches_tensorflow(tmp_path):
    from training.export import parity, to_onnx

    model = models.create_model("baseline")
    path = to_onnx(model, tmp_path / "baseline.onnx", "baseline", tta="flip_shift")
    x = np.random.default_rng(2).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    figures = parity(model, path, x, tta="flip_shift")
    assert figures["argmax_agreement"] == 1.0 and figures["max_abs_diff"] < 1e-5
    probs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.astype(np.float32)})[0]
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_study_small_cnn_variants_used_by_the_ablations():
    """benchmarks/study_ablation.py builds the study's small CNNs with Keras' default padding or BatchNorm."""
    same = models.create_model("ishu_m2")
    valid = models.create_model("ishu_m2", padding="valid")
    normed = models.create_model("ishu_m2", batch_norm=True)
    assert (same.count_params(), valid.count_params()) == (558_570, 165_354)  # 4x4 vs 2x2 maps into Dense 512
    norms = [layer for layer in normed.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 3 and not any(isinstance(layer, keras.layers.BatchNormalization) for layer in same.layers)
    assert normed.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0).shape == (2, 10)


def test_the_study_sgd_is_plain_sgd():
    from training.train import make_optimizer

    assert float(make_optimizer("sgd_plain", 0.01).momentum) == 0.0  # the table's "SGD": Keras' defaults
    assert float(make_optimizer("sgd", 0.01).momentum) == 0.9


def test_backend_speed_benchmark_times_each_backend_in_its_own_process(tmp_path):
    """benchmarks/backend_speed.py: one row per backend, run by that backend, with the machine it ran on."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    results = tmp_path / "speed.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "backend_speed.py"), "--models", "cnn_sgd_m1",
                           "--backends", "tensorflow", "torch", "--steps", "1", "--warmup", "1", "--batch-size", "4",
                           "--results", str(results)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(results.read_text())
    assert report["command"].startswith("python benchmarks/backend_speed.py --models cnn_sgd_m1")
    assert report["machine"]["cores"] >= 1
    rows = report["results"]
    assert [row["backend"] for row in rows] == ["tensorflow", "torch"]
    for row in rows:
        assert "error" not in row, row
        assert row["batch_size"] == 4 and row["steps"] == 1 and row["ms_per_step"] > 0
        assert row["images_per_s"] == pytest.approx(4000 / row["ms_per_step"], rel=0.05)
