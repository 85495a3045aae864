"""fast_cnn's pieces (whitening, Muon, alternating-flip batches) and a tiny run of its recipe through
`train` + export. No full training here: the 8-epoch run is benchmarks/fast_cnn.py."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import pytest

from cifar10.registry import validate_onnx
from cifar_fixtures import StopAfter, write_dataset
from training import fast_cnn, models
from training.data import load_cifar10
from training.export import float32_copy
from training.precision import resolve_precision
from training.train import TrainSettings, resume, train


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", per_batch=120)


def test_whitening_layer_decorrelates_the_training_patches(tiny_cifar):
    images = load_cifar10(tiny_cifar, validation_size=0).train.x
    model = models.create_model("fast_cnn")
    fast_cnn.init_whitening(model, images, eps=0.0)
    whiten = keras.Model(model.inputs, model.get_layer("whiten").output)
    features = whiten.predict(images.astype(np.float32), verbose=0)[..., :12].reshape(-1, 12).astype(np.float64)
    # The first 12 filters map 2x2 patches to coordinates with identity second moments; the other 12 are
    # their negatives.
    np.testing.assert_allclose(features.T @ features / len(features), np.eye(12), atol=1e-3)
    kernel = model.get_layer("whiten").kernel.numpy()
    np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])


def test_blocks_start_as_identity_and_head_has_unit_std():
    model = models.create_model("fast_cnn")
    kernel = model.get_layer("block2_conv1").kernel.numpy()  # 64 -> 256 channels
    assert kernel.shape == (3, 3, 64, 256)
    np.testing.assert_array_equal(kernel[1, 1, :, :64], np.eye(64))
    assert np.count_nonzero(kernel[..., :64]) == 64 and np.count_nonzero(kernel[..., 64:]) > 0
    assert abs(float(np.std(model.get_layer("head").kernel.numpy())) - 1) < 1e-5


def test_fast_cnn_95_is_fast_cnn_wider_and_longer_with_the_same_recipe():
    spec, base = models.get_spec("fast_cnn_95"), models.get_spec("fast_cnn")
    assert spec.fit is base.fit is fast_cnn.fit_fast_cnn
    assert (spec.defaults.epochs, base.defaults.epochs) == (12, 10)
    assert dataclasses.replace(spec.defaults, epochs=10) == base.defaults  # only the length differs
    model = models.create_model("fast_cnn_95")
    assert model.name == "fast_cnn_95"
    widths = [model.get_layer(f"block{i}_conv2").kernel.shape[-1] for i in (1, 2, 3)]
    assert widths == [128, 384, 384]
    kernel = model.get_layer("block2_conv1").kernel.numpy()  # 128 -> 384, identity on the first 128 filters
    np.testing.assert_array_equal(kernel[1, 1, :, :128], np.eye(128))


def test_newton_schulz_roughly_orthogonalises():
    matrix = np.random.default_rng(0).normal(size=(216, 64)).astype(np.float32)
    singular_values = np.linalg.svd(keras.ops.convert_to_numpy(fast_cnn.newton_schulz(matrix)),
                                    compute_uv=False)
    # Three quintic steps map every singular value into a band around 1 (airbench: about 0.5..1.5)
    # whatever the input's scale, while keeping the singular vectors.
    assert singular_values.min() > 0.3 and singular_values.max() < 1.6
    raw = np.linalg.svd(matrix, compute_uv=False)
    assert raw.max() / raw.min() > 1.5 * singular_values.max() / singular_values.min()


def test_muon_sgd_updates_the_right_weights():
    keras.utils.set_random_seed(0)
    model = models.create_model("fast_cnn", widths=(8, 16, 16))
    trainer = fast_cnn.logits_model(model)
    trainer.compile(optimizer=fast_cnn.MuonSGD(1.0, whiten_bias_steps=1),
                    loss=keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum"))
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(16) % 10]
    watched = ("whiten", "block1_conv1", "head", "block1_norm1")

    def snapshot():
        return {name: [w.numpy().copy() for w in model.get_layer(name).weights] for name in watched}
    before = snapshot()
    trainer.train_on_batch(x, y)
    after_one = snapshot()
    trainer.train_on_batch(x, y)
    after_two = snapshot()
    np.testing.assert_array_equal(before["whiten"][0], after_two["whiten"][0])  # frozen whitening filters
    assert not np.allclose(before["head"][0], after_one["head"][0])
    conv = after_one["block1_conv1"][0]
    assert not np.allclose(before["block1_conv1"][0], conv)
    # Muon renormalises each kernel to norm sqrt(out_channels) before its orthogonalised step of size lr.
    assert abs(np.linalg.norm(conv) - np.sqrt(8)) < 1.0
    beta_before, beta_after = before["block1_norm1"][0], after_one["block1_norm1"][0]
    assert not np.allclose(beta_before, beta_after)  # BatchNorm biases: SGD
    bias = [model.get_layer("whiten_bias").bias.numpy()]
    trainer.train_on_batch(x, y)
    np.testing.assert_array_equal(bias[0], model.get_layer("whiten_bias").bias.numpy())  # past its steps


def test_batches_alternate_the_flip_and_cover_every_image_once_per_epoch():
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(40) % 10
    batches = fast_cnn.FlipShiftBatches(images, labels, batch_size=8, shift_px=0, seed=1)
    assert len(batches) == 5

    def epoch():
        parts = [batches[i] for i in range(len(batches))]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    (first, first_labels), (second, _) = epoch(), epoch()
    assert first.dtype == np.float32 and first_labels.shape == (40, 10)
    index_of = {images[i].tobytes(): i for i in range(40)}
    index_of.update({images[i][:, ::-1].tobytes(): i for i in range(40)})
    seen = [index_of[img.astype(np.uint8).tobytes()] for img in first]
    assert sorted(seen) == list(range(40))  # a permutation: every image once
    np.testing.assert_array_equal(first_labels.argmax(1), labels[seen])
    flipped_first = {i: img.astype(np.uint8).tobytes() != images[i].tobytes() for i, img in zip(seen, first)}
    second_seen = [index_of[img.astype(np.uint8).tobytes()] for img in second]
    for i, img in zip(second_seen, second):
        # Epoch 2 shows each image the other way round from epoch 1.
        assert (img.astype(np.uint8).tobytes() != images[i].tobytes()) != flipped_first[i]


@pytest.mark.parametrize("size, num_classes", [(32, 10), (24, 3)])  # CIFAR-10, and a user's own 3 classes
def test_tf_dataset_feeds_the_same_batches_in_the_same_order_over_epochs(size, num_classes):
    """fit_fast_cnn hands Keras as_tf_dataset(batches): what it yields over three epochs (iterated anew each
    epoch, as Keras does) is exactly what the PyDataset itself serves."""
    images = np.random.default_rng(0).integers(0, 256, (40, size, size, 3)).astype(np.uint8)
    labels = np.arange(40) % num_classes
    direct = fast_cnn.FlipShiftBatches(images, labels, batch_size=8, shift_px=2, seed=5, num_classes=num_classes)
    fed = fast_cnn.FlipShiftBatches(images, labels, batch_size=8, shift_px=2, seed=5, num_classes=num_classes)
    dataset = fast_cnn.as_tf_dataset(fed)
    assert tuple(dataset.element_spec[0].shape) == (8, size, size, 3)
    assert tuple(dataset.element_spec[1].shape) == (8, num_classes)
    for _ in range(3):
        got = [(x.numpy(), y.numpy()) for x, y in dataset]
        want = [direct[i] for i in range(len(direct))]
        assert len(got) == len(want) == 5
        for (got_x, got_y), (want_x, want_y) in zip(got, want):
            np.testing.assert_array_equal(got_x, want_x)
            np.testing.assert_array_equal(got_y, want_y)


def test_batches_translate_by_at_most_shift_px():
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3)).astype(np.uint8)
    batches = fast_cnn.FlipShiftBatches(images, np.zeros(30, int), batch_size=30, shift_px=2, seed=3)
    batch, _ = batches[0]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    order = batches.order
    for img, i in zip(batch.astype(np.uint8), order):
        views = [padded[i, dy:dy + 32, dx:dx + 32] for dy in range(5) for dx in range(5)]
        views += [v[:, ::-1] for v in views]
        assert any(np.array_equal(img, v) for v in views)


def test_recipe_trains_on_all_images_and_exports_with_flip_shift_tta(tiny_cifar, tmp_path):
    settings = TrainSettings.for_model("fast_cnn", epochs=2, batch_size=100)
    assert (settings.validation_size, settings.precision, settings.tta) == (0, "auto", "flip_shift")
    run_dir = train(settings, data_dir=tiny_cifar, out=tmp_path / "runs", export_dir=tmp_path / "models",
                    command="cifar10 train --model fast_cnn --epochs 2 --batch-size 100", test_curve=True)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for whatever runs next
    record = json.loads((run_dir / "run.json").read_text())
    assert record["settings"]["precision"] == resolve_precision("auto")[0]  # what ran, not "auto"
    assert record["data"]["train"] == 600 and record["data"]["validation"] == 0
    assert record["checkpoint"] == "final.keras" and "best_epoch" not in record
    history = (run_dir / "history.csv").read_text().splitlines()
    assert "test_accuracy" in history[0] and "train_time_s" in history[0] and len(history) == 3
    losses = [float(row.split(",")[history[0].split(",").index("loss")]) for row in history[1:]]
    assert losses[1] < losses[0]

    onnx_path = tmp_path / "models" / "fast_cnn.onnx"
    validate_onnx(onnx_path)  # the apps' own contract check
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert card["onnx"]["test_time_augmentation"] == "flip_shift"
    assert card["onnx"]["parity_vs_keras"]["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert {i.type for i in session.get_inputs()} == {"tensor(float)"}
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    probs = session.run(None, {"image": x})[0]
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    # The graph holds airbench's 6-view TTA: 1/2 the image, 1/4 each 1-px shift, each averaged with its mirror.
    model = float32_copy(keras.models.load_model(run_dir / "final.keras"))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    views = [(0.5, x), (0.25, padded[:, 2:, 2:]), (0.25, padded[:, :-2, :-2])]
    expected = sum(weight * (model.predict(v, verbose=0) + model.predict(v[:, :, ::-1], verbose=0)) / 2
                   for weight, v in views)
    # Contract v2: the graph then folds in the temperature (cross-fitted on the test images: no validation
    # split), a monotone map of those averaged probabilities.
    from cifar10 import contract
    from training.calibration import calibrated

    meta = session.get_modelmeta().custom_metadata_map
    assert meta[contract.META_CONTRACT] == "3" and "cross-fitted" in card["calibration"]["fitted_on"]
    np.testing.assert_allclose(probs, calibrated(expected, float(meta[contract.META_TEMPERATURE])), atol=1e-4)
    np.testing.assert_array_equal(probs.argmax(1), expected.argmax(1))


def test_a_stopped_run_resumes_where_it_stopped_and_ends_as_the_uninterrupted_one(tiny_cifar, tmp_path):
    """fast_cnn's recipe is resumable like train.py's fit: weights, Muon's and SGD's momentum buffers, the step
    count behind the schedule and the batches' random state are in the per-epoch checkpoint."""
    settings = TrainSettings.for_model("fast_cnn", epochs=3, batch_size=100, precision="float32")
    straight = train(settings, data_dir=tiny_cifar, out=tmp_path / "straight", test_curve=True)
    events = []
    with pytest.raises(KeyboardInterrupt):
        train(settings, data_dir=tiny_cifar, out=tmp_path / "runs", test_curve=True, callbacks=[StopAfter(1)],
              progress=events.append)
    assert events[0]["event"] == "run" and events[0]["resumable"]
    assert events[-1]["event"] == "stopped" and events[-1]["epochs_done"] == 1
    run_dir = Path(events[-1]["run_dir"])
    assert json.loads((run_dir / "run.json").read_text())["status"] == "unfinished"

    resumed_events = []
    assert resume(run_dir, progress=resumed_events.append) == run_dir
    assert [e["epoch"] for e in resumed_events if e["event"] == "epoch"] == [2, 3]  # the remaining epochs only
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["epochs_run"] == 3 and record["checkpoint"] == "final.keras"
    assert [(s["first_epoch"], s["last_epoch"]) for s in record["resumed"]] == [(1, 1), (2, 3)]
    assert not (run_dir / "checkpoint.npz").exists()

    def rows(folder):
        lines = (folder / "history.csv").read_text().splitlines()
        return [{key: float(value) for key, value in zip(lines[0].split(","), line.split(",")) if value != "NA"}
                for line in lines[1:]]
    want, got = rows(straight), rows(run_dir)
    assert [row["epoch"] for row in got] == [0, 1, 2]  # each epoch once
    for a, b in zip(want, got):
        for key in ("loss", "accuracy", "test_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), (key, a, b)
    final = [w.numpy() for w in keras.models.load_model(run_dir / "final.keras").weights]
    for a, b in zip([w.numpy() for w in keras.models.load_model(straight / "final.keras").weights], final):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_recipe_refuses_what_it_would_ignore(tiny_cifar, tmp_path):
    from cifar10.errors import UserFacingError

    for overrides, message in (({"optimizer": "adam"}, "--optimizer adam does not apply"),
                               ({"batch_size": 5000}, "make no full batch of 5000")):
        with pytest.raises(UserFacingError, match=message):
            train(TrainSettings.for_model("fast_cnn", epochs=1, **overrides), data_dir=tiny_cifar, out=tmp_path)


def test_the_benchmark_reads_the_newest_run_folder_not_a_log_named_like_one(tmp_path):
    """benchmarks/fast_cnn.py once took `fast_cnn_95-seed0.log` (written beside the runs, newer) for the run."""
    import importlib.util
    import os
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fast_cnn.py"
    spec = importlib.util.spec_from_file_location("fast_cnn_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    old, new = tmp_path / "fast_cnn_95-20261207-040000", tmp_path / "fast_cnn_95-20261207-050000"
    for i, run in enumerate((old, new)):
        run.mkdir()
        (run / "run.json").write_text("{}")
        os.utime(run, (1_000 + i, 1_000 + i))
    (tmp_path / "fast_cnn_95-seed0.log").write_text("Epoch 1/12\n")  # the newest entry of all
    (tmp_path / "fast_cnn_95-unfinished").mkdir()  # no run.json
    assert bench.newest_run(tmp_path, "fast_cnn_95") == new
