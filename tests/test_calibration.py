"""Contract v2 (issue 12): calibration folded into the graph, logits, the open-set score, class activation maps."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cifar10 import contract
from cifar10.inference import Classifier, classify_files
from cifar10.registry import load_model_info
from onnx_fixtures import GREEN, RED, build_cam_model, build_colour_model, write_model, write_v2_model
from training import calibration
from cifar10.metrics import expected_calibration_error


def run(model: onnx.ModelProto, images: np.ndarray) -> dict:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {contract.INPUT_NAME: images.astype(np.float32)})))


def scenes(n: int = 24, seed: int = 0) -> np.ndarray:
    """Grey backgrounds with a coloured square somewhere (red, green or blue), plus mild noise."""
    rng = np.random.default_rng(seed)
    images = np.full((n, 32, 32, 3), 128, np.float32) + rng.normal(0, 4, (n, 32, 32, 3))
    for i in range(n):
        y, x, s = rng.integers(0, 20), rng.integers(0, 20), rng.integers(6, 12)
        images[i, y:y + s, x:x + s] = (RED, GREEN, (30, 30, 220))[i % 3]
    return np.clip(images, 0, 255).astype(np.float32)


@pytest.mark.parametrize("flip_tta", [False, True])
def test_logits_are_the_view_averaged_logits_and_t1_keeps_probabilities(flip_tta):
    v1 = build_cam_model(flip_tta=flip_tta)
    x = scenes()
    before = run(v1, x)[contract.OUTPUT_NAME]
    out = run(calibration.add_trust_outputs(v1, 1.0, score="energy"), x)
    np.testing.assert_allclose(out[contract.OUTPUT_NAME], before, atol=1e-6)
    # Reference logits from the graph's own per-view tensors.
    probe = onnx.ModelProto.FromString(v1.SerializeToString())
    views = ["plain_logits"] + (["mirror_logits"] if flip_tta else [])
    for v in views:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, None))
    ref = run(probe, x)
    np.testing.assert_allclose(out[contract.LOGITS_NAME], np.mean([ref[v] for v in views], axis=0), atol=1e-5)
    # CAM: one map per class from the un-augmented view; its spatial mean is that view's logits, exactly.
    assert out[contract.CAM_NAME].shape == (len(x), 32, 32, 10)
    np.testing.assert_allclose(out[contract.CAM_NAME].mean(axis=(1, 2)), ref["plain_logits"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.3, 2.5])
def test_temperature_changes_confidence_never_the_class(temperature):
    v1 = build_cam_model(flip_tta=True)
    x = scenes(60, seed=1)
    base = run(calibration.add_trust_outputs(v1, 1.0, score="energy"), x)[contract.OUTPUT_NAME]
    hot = run(calibration.add_trust_outputs(v1, temperature, score="energy"), x)[contract.OUTPUT_NAME]
    np.testing.assert_array_equal(hot.argmax(1), base.argmax(1))
    np.testing.assert_allclose(hot.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(hot, calibration.calibrated(base, temperature), atol=1e-5)
    if temperature > 1:
        assert (hot.max(1) <= base.max(1) + 1e-6).all()
    else:
        assert (hot.max(1) >= base.max(1) - 1e-6).all()


def test_fit_temperature_fixes_underconfidence():
    # Labels drawn from sharpened probabilities: the model's own numbers are too soft, T < 1 fixes it.
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 10))
    truth = calibration.calibrated(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 1.0)
    labels = np.array([rng.choice(10, p=p) for p in truth])
    soft = calibration.calibrated(truth, 2.0)  # what an under-confident model would say
    t = calibration.fit_temperature(soft, labels)
    assert 0.4 < t < 0.6
    assert expected_calibration_error(labels, calibration.calibrated(soft, t)) < 0.5 * expected_calibration_error(labels, soft)


def test_threshold_lets_95_percent_pass_and_rates():
    rng = np.random.default_rng(0)
    scores_in, scores_out = rng.normal(0, 1, 2000), rng.normal(4, 1, 500)
    threshold = calibration.threshold_for(scores_in)
    assert (scores_in <= threshold).mean() == pytest.approx(0.95, abs=0.002)
    rates = calibration.open_set_rates(scores_in, scores_out, threshold)
    assert rates["in_distribution_flagged"] == pytest.approx(0.05, abs=0.002)
    assert rates["ood_flagged"] > 0.9 and rates["auroc"] > 0.99 and rates["fpr_at_95_tpr"] < 0.05
    same = calibration.open_set_rates(scores_in, rng.normal(0, 1, 500), threshold)
    assert 0.4 < same["auroc"] < 0.6


@pytest.mark.parametrize("score", calibration.SCORES)
def test_graph_score_matches_numpy(score):
    v1 = build_cam_model(flip_tta=True)
    x = scenes(30, seed=2)
    raw = calibration.raw_outputs(v1, x)
    bank = calibration.feature_bank(v1, scenes(40, seed=9)) if score == "knn" else None
    out = run(calibration.add_trust_outputs(v1, 0.7, score, bank=bank), x)
    expected = calibration.ood_scores(score, raw["p"], raw["z"], 0.7, raw["f"], bank)
    np.testing.assert_allclose(out[contract.OOD_SCORE_NAME], expected, rtol=1e-4, atol=1e-4)


def test_cam_peaks_on_the_object():
    """An object pasted on a flat background: the predicted class's map peaks on the object."""
    model = calibration.add_trust_outputs(build_cam_model(flip_tta=True), 1.0, score="energy")
    for (y, x), colour in (((3, 20), RED), ((22, 4), GREEN)):
        image = np.full((1, 32, 32, 3), 128, np.float32)
        image[0, y:y + 8, x:x + 8] = colour
        out = run(model, image)
        k = int(out[contract.OUTPUT_NAME][0].argmax())
        heat = out[contract.CAM_NAME][0, :, :, k]
        py, px = np.unravel_index(np.argmax(heat), heat.shape)
        assert y <= py < y + 8 and x <= px < x + 8


def test_knn_score_flags_what_is_far_from_the_training_features():
    v1 = build_cam_model(flip_tta=True)
    bank = calibration.feature_bank(v1, scenes(200, seed=4))  # training-like: coloured squares on grey
    model = calibration.add_trust_outputs(v1, 1.0, "knn", bank=bank)
    near = run(model, scenes(30, seed=5))[contract.OOD_SCORE_NAME]
    far_images = np.zeros((6, 32, 32, 3), np.float32)  # every pixel saturated red+green: no such training image
    far_images[..., 0] = far_images[..., 1] = 250
    far = run(model, far_images)[contract.OOD_SCORE_NAME]
    assert far.min() > np.quantile(near, 0.95)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.META_OOD_SCORE].startswith("knn (k=10")
    with pytest.raises(ValueError, match="feature bank"):
        calibration.add_trust_outputs(v1, 1.0, "knn")


def test_plain_view_features_are_the_dense_input():
    assert calibration.plain_features(build_cam_model(flip_tta=True)) == "plain_pooled"
    assert calibration.plain_features(build_colour_model()) == "mean_rgb"


def test_no_cam_without_a_global_pooling_head():
    model = calibration.add_trust_outputs(build_colour_model(), 1.3, score="energy")  # ReduceMean + MatMul: not a conv map
    names = [o.name for o in model.graph.output]
    assert names == [contract.OUTPUT_NAME, contract.LOGITS_NAME, contract.OOD_SCORE_NAME]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[contract.META_CONTRACT] == "2" and float(meta[contract.META_TEMPERATURE]) == pytest.approx(1.3)


def test_upgrading_twice_is_refused():
    model = calibration.add_trust_outputs(build_colour_model(), 1.0, score="energy")
    with pytest.raises(calibration.GraphError, match="already"):
        calibration.add_trust_outputs(model, 1.0, score="energy")


def test_upgrade_fits_on_held_out_images_and_fills_the_card():
    v1 = build_cam_model(flip_tta=True, sharpness=40.0)
    x = scenes(300, seed=3)
    labels = np.array([(0, 1, 2)[i % 3] for i in range(300)])
    labels[::5] = 9  # some wrong labels
    upgraded, card = calibration.upgrade(v1, x, labels, source="test images", train_images=scenes(100, seed=6))
    cal, open_set = card[contract.CARD_CALIBRATION], card[contract.CARD_OPEN_SET]
    raw_p = calibration.raw_outputs(v1, x)["p"]
    assert cal["temperature"] == pytest.approx(calibration.fit_temperature(raw_p, labels), abs=1e-3)
    assert open_set["bank_images"] == 100 and open_set["k"] == calibration.KNN_K
    assert cal["ece_after"] < cal["ece_before"] and cal["fitted_on"] == "test images"
    temperature = float({p.key: p.value for p in upgraded.metadata_props}[contract.META_TEMPERATURE])
    assert temperature == pytest.approx(cal["temperature"], abs=1e-3)
    assert open_set["score"] == calibration.DEFAULT_SCORE and open_set["held_out_flagged"] <= 0.05 + 1 / 300
    out = run(upgraded, x)
    assert (out[contract.OOD_SCORE_NAME] > open_set["threshold"]).mean() <= 0.05 + 1 / 300


def test_v1_and_v2_models_side_by_side_in_the_apps_core(tmp_path):
    v1_path = write_model(tmp_path, "colour_a")
    v2_path = write_v2_model(tmp_path, "cam_colour", threshold=-3.0)
    v1, v2 = Classifier(load_model_info(v1_path)), Classifier(load_model_info(v2_path))
    assert v1.threshold is None and not v1.has_cam and v1.outputs == (contract.OUTPUT_NAME,)
    assert v2.threshold == -3.0 and v2.has_cam
    x = scenes(6)
    a, b = v1.predict_all(x, with_cam=True), v2.predict_all(x, with_cam=True)
    assert np.isnan(a.ood_score).all() and not a.unsure.any() and a.cam is None and a.logits is None
    assert np.isfinite(b.ood_score).all() and b.cam.shape == (6, 32, 32, 10)
    np.testing.assert_array_equal(b.unsure, b.ood_score > -3.0)
    # A flat grey image has no colour at all: energy is high (logits ~0), it is flagged.
    grey = v2.predict_all(np.full((1, 32, 32, 3), 128, np.uint8))
    assert grey.unsure[0] and grey.ood_score[0] > -3.0


def test_classify_files_carries_ood_score_and_unsure(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 40), (128, 128, 128)).save(folder / "grey.png")
    red = np.full((40, 40, 3), 128, np.uint8)
    red[5:35, 5:35] = RED
    Image.fromarray(red).save(folder / "red.png")
    (folder / "broken.png").write_bytes(b"not an image")
    clf = Classifier(load_model_info(write_v2_model(tmp_path / "m", threshold=-3.0)))
    rows = {r.path.rsplit("/", 1)[-1]: r for r in classify_files(clf, [folder])}
    assert rows["grey.png"].unsure and rows["grey.png"].display_label == contract.unsure_text()
    assert not rows["red.png"].unsure and rows["red.png"].display_label == "airplane"
    assert np.isfinite(rows["red.png"].ood_score)
    assert rows["broken.png"].error and not rows["broken.png"].unsure and np.isnan(rows["broken.png"].ood_score)


def _study_calibration():
    """benchmarks/study_calibration.py (benchmarks/ is no package): loaded from its file."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "study_calibration.py"
    spec = importlib.util.spec_from_file_location("study_calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flip_tta", [False, True])
def test_study_calibration_undoes_the_graphs_temperature(tmp_path, flip_tta):
    """The study of issue 29 measures temperatures on the uncalibrated probabilities of a shipped graph: undoing
    its T (through the apps' Classifier) gives back what the graph computed before calibration."""
    study = _study_calibration()
    path = write_v2_model(tmp_path, "hot", temperature=0.6, flip_tta=flip_tta)
    x = scenes(40, seed=4)
    got = study.uncalibrated(path, x, batch_size=16)
    before = run(build_cam_model(flip_tta=flip_tta), x)[contract.OUTPUT_NAME]
    assert got["temperature"] == pytest.approx(0.6)
    assert not np.allclose(got["q"], before, atol=1e-3)  # the graph's output is calibrated: not p itself
    np.testing.assert_allclose(got["p"], before, atol=1e-5)
    if not flip_tta:  # one view: softmax(logits) is p too
        np.testing.assert_allclose(calibration.calibrated(np.exp(got["logits"]), 1.0), before, atol=1e-5)


def test_study_calibration_rows_and_the_test_oracle():
    """Over-confident probabilities: the validation half's labels follow what a temperature of 2 would give,
    the test half's what 1.5 would (a shift between the splits). The likelihood fit finds T ~ 2 on validation;
    only the oracle, which looks at the test labels, finds ~1.5, and its test ECE is the grid's lowest.
    10,000 images a half, as in CIFAR-10's test set (with 3,000 even the true temperature's ECE was 0.025)."""
    study = _study_calibration()
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2.5, (20000, 10))
    softmax = calibration.calibrated(np.exp(logits - logits.max(1, keepdims=True)), 1.0)
    model = calibration.calibrated(softmax, 0.5)  # what the model says
    truth = np.r_[calibration.calibrated(model[:10000], 2.0), calibration.calibrated(model[10000:], 1.5)]
    labels = (truth.cumsum(1) > rng.random((20000, 1))).argmax(1)
    grid = np.round(np.arange(1.0, 3.0 + 1e-9, 0.05), 2)
    out = study.temperature_study(model[:10000], labels[:10000], model[10000:], labels[10000:], 1.0, grid)
    rows = out["rows"]
    assert 1.8 < rows["nll_validation"]["temperature"] < 2.2 and 1.8 < rows["ece_validation"]["temperature"] < 2.2
    assert 1.35 < rows["oracle_test"]["temperature"] < 1.65
    assert rows["graph"] == rows["none"]  # the graph's T here is 1
    test_ece = [expected_calibration_error(labels[10000:], calibration.calibrated(model[10000:], t)) for t in grid]
    assert rows["oracle_test"]["test_ece"] == pytest.approx(min(test_ece))
    assert rows["oracle_test"]["test_ece"] < study.ECE_GOAL < rows["nll_validation"]["test_ece"]
    low, high = out["test_temperatures_reaching_goal"]
    assert grid[0] < low <= rows["oracle_test"]["temperature"] <= high < 1.8
