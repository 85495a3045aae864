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


def test_evaluate_and_organize_go_through_the_cifar10_cli(models, tmp_path, capsys):
    """The bundle has `evaluate` and `organize` (they need only the apps' libraries)."""
    import shutil

    from cifar10.contract import CLASS_NAMES

    samples = project_root() / "resources" / "samples"
    labelled = tmp_path / "labelled"
    for path in samples.glob("*.png"):
        (labelled / path.stem.rsplit("_", 1)[0]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, labelled / path.stem.rsplit("_", 1)[0] / path.name)
    assert frozen_main.main(["evaluate", "--folder", str(labelled)]) == 0
    assert "accuracy 1.0000 on 10 images" in capsys.readouterr().out
    sorted_dir = tmp_path / "sorted"
    assert frozen_main.main(["organize", str(samples), "--into", str(sorted_dir), "--min-confidence", "0"]) == 0
    assert sorted(p.parent.name for p in sorted_dir.rglob("*.png")) == sorted(CLASS_NAMES)
    assert frozen_main.main(["organize", "--undo", str(sorted_dir)]) == 0
    assert not sorted_dir.exists()


def test_a_v3_model_dropped_next_to_the_executable(tmp_path, monkeypatch, capsys):
    """The bundle's folder layout (PyInstaller one-folder, simulated: sys.frozen, _MEIPASS, sys.executable): a
    contract-v3 model of 3 non-CIFAR classes at 64 px dropped into models/ is discovered, and classify / evaluate /
    organize follow its classes; --self-test says it cannot test it; the shipped v1 model is unchanged."""
    import json

    from cifar10 import paths
    from cifar10.results import file_columns
    from image_files import solid
    from onnx_fixtures import BLUE, GREEN, RED, write_model

    real_root = project_root()
    bundle = tmp_path / "cifar10-classifier"
    internal = bundle / "_internal"
    write_model(internal / "exported_models", "shipped", test_accuracy=0.6)
    write_model(bundle / "models", "pets", class_names=("gatto", "cane", "cavallo"), image_size=64,
                dataset="my-pets", test_accuracy=0.9)
    monkeypatch.delenv("CIFAR10_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "cifar10-classifier"))
    monkeypatch.chdir(tmp_path)
    assert paths.bundle_models_dir() == (bundle / "models").resolve()

    images = tmp_path / "images"
    for name, rgb in (("r.png", RED), ("g.jpg", GREEN), ("b.png", BLUE)):
        solid(images / name, rgb, size=(120, 90))
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff nope")
    out = tmp_path / "pets.csv"
    assert frozen_main.main(["classify", str(images), "--model", "pets", "--output", str(out)]) == 1  # corrupt.jpg
    assert out.read_text().splitlines()[0] == ",".join(file_columns(("gatto", "cane", "cavallo")))
    labels = {os.path.basename(r["path"]): r["label"] for r in read_results(out)}
    assert labels == {"r.png": "gatto", "g.jpg": "cane", "b.png": "cavallo", "corrupt.jpg": ""}
    assert "model pets (my-pets · 3 classes, 64 px" in capsys.readouterr().err
    # The shipped v1 model still gives CIFAR-10 rows (the best model by accuracy is pets, so name it).
    v1 = tmp_path / "v1.json"
    assert frozen_main.main(["classify", str(images / "r.png"), "--model", "shipped", "-o", str(v1)]) == 0
    assert json.loads(v1.read_text())["rows"][0]["label"] == "airplane"

    labelled = tmp_path / "labelled"
    solid(labelled / "gatto" / "1.png", RED)
    solid(labelled / "cane" / "2.png", GREEN)
    assert frozen_main.main(["evaluate", "--model", "pets", "--folder", str(labelled)]) == 0
    assert "accuracy 1.0000 on 2 images" in capsys.readouterr().out
    sorted_dir = tmp_path / "sorted"
    assert frozen_main.main(["organize", str(images), "--into", str(sorted_dir), "--model", "pets",
                             "--min-confidence", "0"]) == 1  # corrupt.jpg: listed, left alone
    assert {p.name for p in sorted_dir.iterdir() if p.is_dir()} == {"gatto", "cane", "cavallo"}

    import shutil

    shutil.copytree(real_root / "resources" / "samples", internal / "resources" / "samples")
    capsys.readouterr()
    assert frozen_main.main(["--self-test", "--model", "pets"]) == 2
    assert "cannot self-test pets: it knows my-pets · 3 classes at 64 px" in capsys.readouterr().out


def test_the_bundle_spec_collects_every_cli_module_main_imports_by_name():
    """cifar10_cli/main.py imports its subcommands by module name, which PyInstaller cannot follow: the spec
    must list each of them (a hand-kept list once missed cifar10_cli.quantize, and the built app's start
    failed with ModuleNotFoundError)."""
    import re

    root = project_root()
    spec = (root / "bundle" / "cifar10-classifier.spec").read_text()
    namespace = {"SPECPATH": str(root / "bundle")}
    exec(compile(spec.split("\na = Analysis(")[0], "cifar10-classifier.spec", "exec"), namespace)
    named = set(re.findall(r"cifar10_cli\.(\w+)", (root / "cifar10_cli" / "main.py").read_text()))
    assert {"quantize", "classify", "label_issues"} <= named
    assert {f"cifar10_cli.{m}" for m in named} <= set(namespace["CLI_MODULES"])
    assert "hiddenimports=CLI_MODULES" in spec
