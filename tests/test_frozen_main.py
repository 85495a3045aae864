"""The bundle's entry point, unfrozen (fast): dispatch to classify / self-test / the GUI."""

import os
import subprocess
import sys

import pytest

from cifar10.paths import project_root
from cifar10.results_io import read_results
from desktop_app import frozen_main
from desktop_app.app import SHOWN_MARKER
from sample_model import write_nearest_sample_model


@pytest.fixture()
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    write_nearest_sample_model(folder)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(folder))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    return folder


def test_classify_goes_through_the_cifar10_cli(models, tmp_path, capsys):
    out = tmp_path / "results.csv"
    samples = project_root() / "resources" / "samples"
    assert frozen_main.main(["classify", str(samples), "--output", str(out)]) == 0
    rows = read_results(out)
    assert len(rows) == 10 and all(os.path.basename(r["path"]).startswith(r["label"] + "_") for r in rows)
    assert frozen_main.main(["classify", str(tmp_path / "missing")]) == 2
    assert "cifar10: error: classify: no such file or folder" in capsys.readouterr().err


def test_self_test_flag_and_subcommand(models, capsys):
    assert frozen_main.main(["--self-test"]) == 0
    assert "self-test PASS: 10/10" in capsys.readouterr().out
    assert frozen_main.main(["self-test", "--model", "nearest_sample"]) == 0
    assert frozen_main.main(["--self-test", "--model", "nope"]) == 2


def test_usage_names_the_bundled_program(capsys):
    with pytest.raises(SystemExit):
        frozen_main.main(["classify", "--help"])
    assert capsys.readouterr().out.startswith("usage: cifar10-classifier classify")


def test_version_lists_the_model_folders(models, capsys):
    assert frozen_main.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cifar10-classifier ") and str(models) in out


def test_gui_quits_after_the_first_show(models, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "desktop_app.frozen_main", "--quit-after-show"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert SHOWN_MARKER in done.stdout


def test_training_commands_are_refused_not_opened_as_files(capsys):
    assert frozen_main.main(["train", "--epochs", "1"]) == 2
    assert "'train' is not part of this bundle" in capsys.readouterr().err


def test_bundle_command_names_the_extra_when_pyinstaller_is_missing(monkeypatch):
    from cifar10_cli.main import MissingExtra, main

    monkeypatch.setitem(sys.modules, "PyInstaller", None)  # import PyInstaller -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "desktop_app.bundle", raising=False)
    with pytest.raises(MissingExtra, match=r"needs the 'bundle' extra \(PyInstaller is not installed\)"):
        main(["bundle", "--out", "nowhere"])
