"""The self-test (`cifar10 self-test`, the bundle's `--self-test`) unfrozen, and model folders when frozen."""

import io
import shutil
import sys

import pytest

from cifar10 import paths
from cifar10_cli.main import main
from cifar10.registry import discover_models
from cifar10.paths import samples_dir as default_samples_dir
from cifar10_cli.selftest import EXIT_CANNOT_RUN, EXIT_FAIL, EXIT_PASS, expected_label, run_self_test
from onnx_fixtures import write_model
from sample_model import write_nearest_sample_model


@pytest.fixture()
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(folder))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))  # no real user models
    return folder


def test_expected_label_from_the_file_name():
    assert expected_label("samples/cat_0.png") == "cat"
    assert expected_label("automobile_6.png") == "automobile"
    assert expected_label("truck.png") == "truck"
    assert expected_label("my_cat_photo.png") is None and expected_label("x_1.png") is None
    assert sorted(expected_label(p) for p in default_samples_dir().glob("*.png")) == sorted(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])


def test_passes_with_a_model_that_knows_the_samples_and_uses_the_best_one(models):
    write_model(models, "colour_a", test_accuracy=0.5)  # classifies by mean colour: gets samples wrong
    write_nearest_sample_model(models, test_accuracy=0.9)
    out = io.StringIO()
    report = run_self_test(stream=out)
    text = out.getvalue()
    assert report.exit_code == EXIT_PASS and report.passed
    assert report.model_name == "nearest_sample" and report.correct == len(report.outcomes) == 10
    assert "model nearest_sample (best shipped model; 90.0% test accuracy" in text
    assert text.count("\n  ok    ") == 10 and "self-test PASS: 10/10" in text


def test_default_is_the_best_shipped_model_not_a_better_user_model(models, tmp_path):
    write_nearest_sample_model(models, test_accuracy=0.6)
    write_model(tmp_path / "user-data" / "cifar10-studio" / "models", "user_colour", test_accuracy=0.95)
    assert run_self_test(stream=io.StringIO()).model_name == "nearest_sample"
    report = run_self_test(model="user_colour", stream=io.StringIO())
    assert report.model_name == "user_colour" and report.exit_code == EXIT_FAIL


def test_no_shipped_model_names_the_others(models, tmp_path):
    write_model(tmp_path / "user-data" / "cifar10-studio" / "models", "user_colour", test_accuracy=0.95)
    report = run_self_test(stream=io.StringIO())
    assert report.exit_code == EXIT_CANNOT_RUN
    assert "no shipped models in" in report.message and "other folders have: user_colour" in report.message


def test_fails_and_names_the_wrong_ones(models):
    write_model(models, "colour_a", test_accuracy=0.5)
    out = io.StringIO()
    report = run_self_test(stream=out)
    assert report.exit_code == EXIT_FAIL and report.model_name == "colour_a"
    assert 0 < len(report.outcomes) - report.correct <= 10
    assert "WRONG" in out.getvalue() and "(expected " in out.getvalue() and "self-test FAIL" in out.getvalue()


def test_cannot_run_without_models_or_samples(models, tmp_path):
    out = io.StringIO()
    assert run_self_test(stream=out).exit_code == EXIT_CANNOT_RUN
    assert "no shipped models in" in out.getvalue() and "self-test ERROR" in out.getvalue()
    write_nearest_sample_model(models)
    assert run_self_test(samples_dir=tmp_path / "nowhere", stream=io.StringIO()).exit_code == EXIT_CANNOT_RUN
    report = run_self_test(model="missing", stream=io.StringIO())
    assert report.exit_code == EXIT_CANNOT_RUN and "no model named 'missing'" in report.message


def test_a_sample_without_a_class_in_its_name_is_an_error(models, tmp_path):
    write_nearest_sample_model(models)
    samples = tmp_path / "samples"
    shutil.copytree(default_samples_dir(), samples)
    shutil.copy(samples / "cat_0.png", samples / "kitten.png")
    out = io.StringIO()
    report = run_self_test(samples_dir=samples, stream=out)
    assert report.exit_code == EXIT_FAIL and report.correct == 10 and len(report.outcomes) == 11
    assert "ERROR kitten.png: the file name names no CIFAR-10 class" in out.getvalue()


def test_cli_subcommand(models, capsys):
    write_nearest_sample_model(models)
    assert main(["self-test", "--provider", "cpu"]) == EXIT_PASS
    assert "self-test PASS" in capsys.readouterr().out
    write_model(models, "colour_a", test_accuracy=0.5)
    assert main(["self-test", "--model", "colour_a"]) == EXIT_FAIL


def test_frozen_bundle_finds_models_next_to_its_executable(tmp_path, monkeypatch):
    """PyInstaller one-folder layout: shipped models in _internal/exported_models, user drops in models/."""
    bundle = tmp_path / "cifar10-classifier"
    internal = bundle / "_internal"
    write_model(internal / "exported_models", "shipped", test_accuracy=0.6)
    write_model(bundle / "models", "dropped", test_accuracy=0.7)
    monkeypatch.delenv("CIFAR10_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "cifar10-classifier"))
    monkeypatch.chdir(tmp_path)
    assert paths.project_root() == internal
    assert paths.bundle_models_dir() == (bundle / "models").resolve()
    assert paths.model_dirs()[:2] == [internal / "exported_models", (bundle / "models").resolve()]
    found, errors = discover_models()
    assert [m.name for m in found] == ["dropped", "shipped"] and errors == []


def test_unfrozen_model_dirs_are_unchanged(monkeypatch, tmp_path):
    monkeypatch.delenv("CIFAR10_MODELS_DIR", raising=False)
    assert paths.bundle_models_dir() is None
    assert paths.model_dirs() == [paths.shipped_models_dir(), paths.user_models_dir()]
