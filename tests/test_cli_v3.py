"""The CLI with a contract-v3 model of three non-CIFAR classes at 64 px (next to a v1 CIFAR-10 model):
classify (table, CSV, JSON, unsure summary), the model lists, evaluate, organize and self-test follow the
selected model's classes and input size."""

import io
import json
import os

import pytest

from cifar10_cli.main import main
from cifar10_cli.selftest import EXIT_CANNOT_RUN, run_self_test
from cifar10.contract import CLASS_NAMES
from cifar10.results import file_columns
from cifar10.results_io import read_results
from image_files import mixed_folder, solid
from onnx_fixtures import BLUE, GREEN, RED, write_model

CLASSES = ("rosso", "verde", "blu")
LABELS = ("red thing", "green thing", "blue/other")


@pytest.fixture()
def env(tmp_path, monkeypatch):
    models = tmp_path / "models"
    write_model(models, "colours", class_names=CLASSES, display_names=LABELS, image_size=64, dataset="colours",
                test_accuracy=0.9)
    write_model(models, "colour_a", test_accuracy=0.6)  # a v1 CIFAR-10 model
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    images = tmp_path / "images"
    return {"models": models, "images": images, "expected": mixed_folder(images), "tmp": tmp_path}


def by_name(rows):
    return {os.path.basename(r["path"]): r for r in rows}


def test_csv_has_the_models_columns(env, capsys):
    out = env["tmp"] / "r.csv"
    assert main(["classify", str(env["images"]), "--model", "colours", "-o", str(out)]) == 1  # 3 broken files
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(file_columns(LABELS))
    rows = by_name(read_results(out))
    assert rows["red.png"]["label"] == "red thing" and rows["red.png"]["red thing"] > 0.5
    assert rows["blue.jpg"]["label"] == "blue/other" and "cat" not in rows["red.png"]
    assert rows["notes.txt"]["error"] and rows["notes.txt"]["green thing"] is None
    err = capsys.readouterr().err
    assert "model colours (colours · 3 classes, 64 px; 90.0% test accuracy)" in err
    assert "no open-set score: no image is flagged unsure" in err  # not "(contract v1)": it is a v3 model


def test_json_and_table(env, capsys):
    out = env["tmp"] / "r.json"
    assert main(["classify", str(env["images"] / "sub"), "--model", "colours", "-o", str(out), "--top-k", "2"]) == 1  # sub/broken.png
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["classes"] == list(LABELS) and data["model"] == "colours"
    blue = by_name(data["rows"])["blue.jpg"]
    assert blue["label"] == "blue/other" and blue["top_k"][0][0] == "blue/other" and len(blue["top_k"]) == 2
    capsys.readouterr()
    assert main(["classify", str(env["images"]), "--model", "colours"]) == 1
    table = capsys.readouterr().out.splitlines()
    assert any(line.startswith("red thing") and line.endswith("red.png") for line in table)
    assert any(line.startswith("green thing") and line.endswith("green.bmp") for line in table)
    # The v1 model in the same folder still gives CIFAR-10 rows.
    assert main(["classify", str(env["images"] / "red.png"), "--model", "colour_a"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("airplane")


def test_unsure_summary_counts_the_models_classes():
    """A v3 model with an open-set score: "may be none of the 3 classes"."""
    from cifar10_cli.classify import unsure_summary

    assert unsure_summary(2, 5, True, 3) == "2 of 5 unsure: may be none of the 3 classes"
    assert unsure_summary(2, 5, True) == "2 of 5 unsure: may be none of the 10 classes"
    assert unsure_summary(0, 5, False, 10).endswith("(contract v1): no image is flagged unsure")


def test_model_lists_say_what_each_model_knows(env, capsys):
    assert main(["classify", "--list-models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("* colours") and "colours · 3 classes at 64 px" in out[0]
    assert "CIFAR-10 · 10 classes at 32 px" in out[1]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "colours · 3 classes at 64 px" in out and "CIFAR-10 · 10 classes at 32 px" in out


def test_evaluate_a_folder_and_refuse_the_cifar10_test_set(env, capsys):
    labelled = env["tmp"] / "labelled"
    solid(labelled / "rosso" / "1.png", RED)
    solid(labelled / "Green Thing" / "2.jpg", GREEN, size=(90, 70))
    solid(labelled / "blu" / "3.png", BLUE)
    solid(labelled / "blu" / "4.png", RED)  # wrong
    report = env["tmp"] / "eval.json"
    assert main(["evaluate", "--model", "colours", "--folder", str(labelled), "-o", str(report)]) == 0
    out = capsys.readouterr().out
    assert "colours on" in out and "accuracy 0.7500 on 4 images" in out
    assert "red thing" in out and "blue/other" in out and "airplane" not in out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert {row["true"] for row in data["rows"]} == set(LABELS)
    # The CIFAR-10 test set is not this model's: one clear line, exit 2, no traceback.
    assert main(["evaluate", "--model", "colours", "--limit", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cifar10: error: evaluate: colours knows colours · 3 classes at 64 px")
    assert "--folder" in err
    # A folder of CIFAR-10 classes names the model's folders.
    solid(env["tmp"] / "cifar" / "cat" / "c.png", RED)
    assert main(["evaluate", "--model", "colours", "--folder", str(env["tmp"] / "cifar")]) == 2
    assert "one subfolder per class, named red thing, green thing, blue/other" in capsys.readouterr().err


def test_organize_into_the_models_class_folders(env, capsys):
    dst = env["tmp"] / "sorted"
    assert main(["organize", str(env["images"]), "--into", str(dst), "--model", "colours",
                 "--min-confidence", "0"]) == 1  # the 3 broken files are listed, left alone
    assert sorted(p.name for p in dst.iterdir() if not p.name.startswith(".")) == [
        "blue_other", "green thing", "red thing"]
    assert (dst / "red thing" / "red.png").is_file() and (dst / "blue_other" / "blue.jpg").is_file()
    assert not any(name in CLASS_NAMES for name in os.listdir(dst))
    assert "copied 3 files: blue_other 1, green thing 1, red thing 1" in capsys.readouterr().err


def test_self_test_refuses_a_model_of_other_classes(env, tmp_path, capsys):
    out = io.StringIO()
    report = run_self_test(model="colours", stream=out)
    assert report.exit_code == EXIT_CANNOT_RUN and not report.outcomes
    assert "cannot self-test colours: it knows colours · 3 classes at 64 px" in report.message
    assert "cifar10 evaluate --model colours --folder PATH" in report.message
    # The default skips it (it is the best shipped model) and tests the best CIFAR-10 one.
    assert run_self_test(stream=io.StringIO()).model_name == "colour_a"
    assert main(["self-test", "--model", "colours"]) == 2
    # Only non-CIFAR models shipped: it says why nothing can be tested.
    (env["models"] / "colour_a.onnx").unlink()
    report = run_self_test(stream=io.StringIO())
    assert report.exit_code == EXIT_CANNOT_RUN
    assert "no shipped CIFAR-10 models in" in report.message and "colours knows other classes" in report.message
