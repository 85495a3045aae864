"""`cifar10 evaluate` on a labelled folder and on CIFAR-10 test batches, in the apps' install (no TF, no sklearn)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cifar10_cli.main import main
from cifar10.evaluation import evaluate_folder, scan_labelled_folder
from cifar10.inference import Classifier
from cifar_fixtures import write_dataset
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED, write_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def labelled_folder(root):
    """colour_a calls red airplane, green automobile, blue bird. Truth by folder:
    airplane/ 2 red (right) + 1 green (wrong: automobile); automobile/ 1 green (right); Bird/ 1 blue (right),
    1 red (wrong: airplane) and a broken file; plus a loose file and a folder that is not a class."""
    solid(root / "airplane" / "r1.png", RED)
    solid(root / "airplane" / "deep" / "r2.png", RED)
    solid(root / "airplane" / "g_wrong.png", GREEN)
    solid(root / "automobile" / "g.png", GREEN)
    solid(root / "Bird" / "b.png", BLUE)
    solid(root / "Bird" / "r_wrong.png", RED)
    (root / "Bird" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "readme.txt").write_text("loose")
    solid(root / "holiday" / "x.png", RED)
    return root


def test_scan_maps_folders_to_classes_case_insensitively(tmp_path):
    root = labelled_folder(tmp_path / "lab")
    files, ignored = scan_labelled_folder(root)
    by_name = {os.path.basename(f.path): f.true_class for f in files}
    assert by_name == {"r1.png": 0, "r2.png": 0, "g_wrong.png": 0, "g.png": 1, "b.png": 2, "r_wrong.png": 2,
                       "broken.jpg": 2}
    assert sorted(os.path.basename(p) for p in ignored) == ["holiday", "readme.txt"]


def test_folder_figures(tmp_path, models):
    root = labelled_folder(tmp_path / "lab")
    evaluation = evaluate_folder(Classifier(models / "colour_a.onnx", provider="cpu"), root)
    m = evaluation.metrics
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(4 / 6)
    cm = np.array(m["confusion_matrix"])
    assert cm[0, 0] == 2 and cm[0, 1] == 1 and cm[1, 1] == 1 and cm[2, 2] == 1 and cm[2, 0] == 1
    assert m["per_class"]["airplane"]["precision"] == pytest.approx(2 / 3)  # 2 red airplanes + the red bird
    assert m["per_class"]["airplane"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["automobile"]["precision"] == pytest.approx(1 / 2)
    assert m["macro_over"] == ["airplane", "automobile", "bird"]
    assert [os.path.basename(r.path) for r, _ in evaluation.unreadable] == ["broken.jpg"]
    assert [os.path.basename(r.path) for r in evaluation.cell(2, 0)] == ["r_wrong.png"]
    assert sorted(os.path.basename(r.path) for r in evaluation.cell(0, 0)) == ["r1.png", "r2.png"]


def test_evaluate_cli_folder_json_report(tmp_path, models, capsys):
    root = labelled_folder(tmp_path / "lab")
    out = tmp_path / "report.json"
    # exit 1: one image could not be read (it is listed and left out of the figures); the report is written
    assert main(["evaluate", "--folder", str(root), "--model", "colour_a", "-o", str(out)]) == 1
    text = capsys.readouterr().out
    assert "colour_a on" in text and "accuracy 0.6667 on 6 images" in text
    assert "1 could not be read" in text and "broken.jpg" in text and "2 ignored" in text
    report = json.loads(out.read_text())
    assert report["accuracy"] == pytest.approx(4 / 6) and len(report["rows"]) == 6
    wrong = sorted(os.path.basename(r["path"]) for r in report["rows"] if r["true"] != r["predicted"])
    assert wrong == ["g_wrong.png", "r_wrong.png"]


def test_evaluate_cli_clear_errors(tmp_path, models, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--folder", str(tmp_path / "empty"), "--model", "colour_a"]) == 2
    assert "one subfolder per class" in capsys.readouterr().err
    assert main(["evaluate", "--folder", str(tmp_path / "nope"), "--model", "colour_a"]) == 2
    assert "is not a folder" in capsys.readouterr().err


BLOCK_TRAINING_LIBS = ("import sys\n"
                       "for name in ('tensorflow', 'keras', 'sklearn', 'tf2onnx', 'torch', 'matplotlib'):\n"
                       "    sys.modules[name] = None  # importing any of them now fails, as in the apps' install\n"
                       "from cifar10_cli.main import main\n"
                       "code = main(sys.argv[1:])\n"
                       "assert 'training' not in sys.modules, 'the training package was imported'\n"
                       "sys.exit(code)\n")


def run_app_only(args, tmp_path, models):
    env = {**os.environ, "CIFAR10_MODELS_DIR": str(models), "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "XDG_DATA_HOME": str(tmp_path / "user-data")}
    return subprocess.run([sys.executable, "-c", BLOCK_TRAINING_LIBS, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path)


def test_evaluate_works_without_tensorflow_or_sklearn_on_a_folder_and_the_test_batch(tmp_path, models):
    root = labelled_folder(tmp_path / "lab")
    done = run_app_only(["evaluate", "--folder", str(root), "--model", "colour_a"], tmp_path, models)
    assert done.returncode == 1, done.stderr  # broken.jpg could not be read
    assert "accuracy 0.6667 on 6 images" in done.stdout
    data = write_dataset(tmp_path / "cifar", per_batch=50)
    done = run_app_only(["evaluate", str(models / "colour_a.onnx"), "--data-dir", str(data)], tmp_path, models)
    assert done.returncode == 0, done.stderr
    assert "on 50 test images" in done.stdout and "Traceback" not in done.stderr
