"""Contract v3 in the core: a model of the user's own classes at its own input size, end to end through
discovery, preprocessing, inference, result rows, results files, evaluation, heatmaps and organize."""

import json

import numpy as np
import pytest

from cifar10.evaluation import evaluate_folder, evaluate_test_set
from cifar10.heatmap import explain
from cifar10.inference import Classifier, classify_files
from cifar10.organize import class_folder_name, execute, plan_organize
from cifar10.preprocess import load_image
from cifar10.registry import load_model_info
from cifar10.results import columns, result_row
from cifar10.results_io import export_metadata, read_results, write_results
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED, write_model

CLASSES = ("rosso", "verde", "blu")          # folder names (the model's class_names)
LABELS = ("red thing", "green thing", "blue/other")  # display names: what apps show


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("v3")
    write_model(folder, "colours", class_names=CLASSES, display_names=LABELS, image_size=64, dataset="colours")
    return Classifier(folder / "colours.onnx", provider="cpu")


def test_load_image_at_any_size(tmp_path):
    path = solid(tmp_path / "r.png", RED, size=(150, 97))
    for size in (32, 64, 128):
        assert load_image(path, size).shape == (size, size, 3)
    assert np.array_equal(load_image(path, 64), load_image(path.read_bytes(), 64))
    with pytest.raises(ValueError):
        load_image(path, 0)


def test_classifier_follows_the_models_size_and_classes(clf, tmp_path):
    assert clf.image_size == 64 and clf.labels == LABELS
    files = [solid(tmp_path / f"{n}.jpg", rgb, size=(120, 90)) for n, rgb in (("r", RED), ("g", GREEN), ("b", BLUE))]
    (tmp_path / "notes.txt").write_text("not an image")
    results = list(classify_files(clf, [tmp_path], keep_images=True))
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in results}
    assert [by_name[f"{n}.jpg"].label for n in "rgb"] == list(LABELS)
    assert by_name["r.jpg"].image.shape == (64, 64, 3) and by_name["r.jpg"].probabilities.shape == (3,)
    assert by_name["notes.txt"].error and by_name["notes.txt"].classes == LABELS
    with pytest.raises(ValueError, match=r"\[N, 64, 64, 3\]"):
        clf.predict(np.zeros((1, 32, 32, 3), np.uint8))
    row = result_row(by_name["g.jpg"], top_k=2)
    assert list(row)[:len(columns(LABELS))] == list(columns(LABELS))
    assert row["green thing"] > 0.5 and row["top_k"][0][0] == "green thing"
    assert "airplane" not in row


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_results_files_have_the_models_columns(clf, tmp_path, suffix):
    images = tmp_path / "in"
    images.mkdir()
    solid(images / "b.png", BLUE)
    (images / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / f"results{suffix}"
    assert write_results(classify_files(clf, [images]), out, meta=export_metadata(clf.model)) == 2
    rows = read_results(out)
    good, bad = rows  # b.png, bad.jpg
    assert bad["label"] == "" and bad["error"] and bad["blue/other"] is None
    assert good["label"] == "blue/other" and good["blue/other"] > 0.5
    if suffix == ".csv":
        header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header[-3:] == list(LABELS)
    else:
        assert json.loads(out.read_text(encoding="utf-8"))["classes"] == list(LABELS)


def test_evaluate_a_folder_named_by_class_or_display_names(clf, tmp_path):
    solid(tmp_path / "rosso" / "1.png", RED)        # folder = class name
    solid(tmp_path / "Green Thing" / "2.png", GREEN)  # folder = display name, other case
    solid(tmp_path / "blu" / "3.png", RED)          # a mistake the model makes
    evaluation = evaluate_folder(clf, tmp_path)
    assert evaluation.metrics["n"] == 3 and evaluation.metrics["accuracy"] == pytest.approx(2 / 3)
    assert list(evaluation.metrics["per_class"]) == list(LABELS)
    with pytest.raises(ValueError, match="not CIFAR-10's classes"):
        evaluate_test_set(clf)


def test_heatmap_at_the_models_size(clf):
    image = np.full((64, 64, 3), 128, np.uint8)
    image[8:24, 40:56] = BLUE
    heat = explain(clf, image)
    assert heat.heat.shape == (64, 64) and heat.method == "occlusion" and heat.class_name == "blue/other"
    row, col = heat.peak
    assert 4 <= row < 28 and 36 <= col < 60


def test_organize_into_the_models_class_folders(clf, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    solid(src / "r.png", RED)
    solid(src / "b.png", BLUE)
    report = execute(plan_organize(clf, [src], dst, mode="copy", min_confidence=0.0))
    assert not report.problems and len(report.done) == 2
    assert (dst / "red thing" / "r.png").is_file()
    assert (dst / class_folder_name("blue/other") / "b.png").is_file() and class_folder_name("blue/other") == "blue_other"


def test_card_of_a_v3_model(tmp_path):
    write_model(tmp_path, "m", class_names=["x", "y"], image_size=96, dataset="xy")
    info = load_model_info(tmp_path / "m.onnx")
    assert info.card["class_names"] == ["x", "y"] and info.card["image_size"] == 96 and info.card["dataset"] == "xy"
    assert info.labels == ("x", "y") and info.display_names is None
