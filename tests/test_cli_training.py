"""Smoke tests of the training side of the `cifar10` command."""

import json
import subprocess
import sys

import pytest

from cifar10_cli import main as cli
from cifar_fixtures import write_dataset


def test_models_lists_the_registry(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("baseline", "cnn_adam_m1", "cnn_sgd_m1", "vgg16_transfer"):
        assert name in out


def test_missing_extra_names_the_extra():
    error = ImportError("No module named 'tensorflow'", name="tensorflow")
    message = str(cli._require(error))
    assert "'training' extra" in message and "pip install -e '.[training]'" in message


def test_train_then_export_then_evaluate_then_report(tmp_path, capsys):
    data_dir = write_dataset(tmp_path / "cifar", per_batch=1020)
    runs, models_dir = tmp_path / "runs", tmp_path / "models"
    assert cli.main(["train", "--model", "baseline", "--epochs", "1", "--limit", "64", "--data-dir", str(data_dir),
                     "--out", str(runs), "--no-export"]) == 0
    assert not models_dir.exists()
    (run_dir,) = runs.iterdir()
    assert cli.main(["export", str(run_dir), "--export-dir", str(models_dir), "--data-dir", str(data_dir)]) == 0
    card = json.loads((models_dir / "baseline.json").read_text())
    # The card ships to other machines: this machine's absolute paths become "…/<last folder>".
    assert card["training_command"] == ("cifar10 train --model baseline --epochs 1 --limit 64 --data-dir …/cifar "
                                        "--out …/runs --no-export")
    assert card["export_command"] == f"cifar10 export …/{run_dir.name} --export-dir …/models --data-dir …/cifar"
    assert str(tmp_path) not in json.dumps(card)
    capsys.readouterr()
    assert cli.main(["evaluate", str(models_dir / "baseline.onnx"), "--data-dir", str(data_dir),
                     "--limit", "64"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {card['test_accuracy']:.4f} on 64 test images" in out
    # A leaderboard-only model: exported into the models folder's study/ subfolder, which the apps do not read.
    assert cli.main(["train", "--model", "ishu_m2", "--epochs", "1", "--limit", "64", "--data-dir", str(data_dir),
                     "--out", str(runs), "--export-dir", str(models_dir / "study")]) == 0
    study_card = json.loads((models_dir / "study" / "ishu_m2.json").read_text())
    assert cli.main(["report", "--models-dir", str(models_dir), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "leaderboard.md").read_text()
    # One row per column of the study's table, in its order, with the study's figure and ours.
    study_part = report.split("## Every exported model")[0]
    study_rows = [line for line in study_part.splitlines() if line.startswith("| ") and line[2].isdigit()]
    rows = {line.split(" | ")[1]: line for line in study_rows}
    assert list(rows) == ["M1 Baseline Roland", "M2 VGG16 Transfer Learning", "M1 Ishu", "M2 Ishu", "M3 Ishu",
                          "baseline CNN", "baseline_CNN_adam_m1", "sgd_m1", "adam_m2", "Gulmehak (Animals-10)"]
    m2 = rows["M2 Ishu"]
    assert "0.7808 (0.7302), 10" in m2 and "`ishu_m2` (leaderboard only)" in m2
    assert f"**{study_card['test_accuracy']:.4f}**" in m2 and f"{study_card['test_accuracy'] - 0.7808:+.4f}" in m2
    assert "`cifar10 train --model ishu_m2 --epochs 1" in m2 and "cores" in m2
    assert "| changed: epochs 1 (10), limit 64 |" in m2  # what the run changed against the table's recipe
    assert f"**{card['test_accuracy']:.4f}**" in rows["M1 Baseline Roland"]
    assert "not trained yet: `cifar10 train --model ishu_m3`" in rows["M3 Ishu"]
    assert "VGG16 ImageNet weights" in rows["M2 VGG16 Transfer Learning"]
    # Every exported model, and whether it ships in the apps.
    assert "| `baseline` | yes |" in report and "| `ishu_m2` | no |" in report
    # Registered models outside the table with no card here: listed with their command, not silently missing.
    untrained = report.split("## Registered, not trained yet")[1]
    assert "| `fast_cnn_95` | airbench95 in Keras" in untrained and "`cifar10 train --model fast_cnn_95`" in untrained
    assert "`baseline`" not in untrained and "`ishu_m3`" not in untrained  # trained here / a study column
    assert (tmp_path / "report" / "leaderboard.png").stat().st_size > 1000


def test_bad_data_dir_is_a_clear_error_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--data-dir", str(tmp_path / "none"),
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_model_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--model", "nope", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "unknown model 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_init_from_continues_a_run_and_adds_up_its_time(tmp_path, capsys):
    data_dir = write_dataset(tmp_path / "cifar", per_batch=1020)
    runs = tmp_path / "runs"
    common = ["--epochs", "1", "--limit", "64", "--data-dir", str(data_dir), "--out", str(runs), "--no-export"]
    assert cli.main(["train", "--model", "baseline", *common]) == 0
    (first,) = runs.iterdir()
    assert cli.main(["train", "--model", "baseline", "--lr", "1e-4", "--init-from", str(first), *common]) == 0
    (second,) = set(runs.iterdir()) - {first}
    parent, record = (json.loads((d / "run.json").read_text()) for d in (first, second))
    assert record["continues"]["run"] == str(first) and record["continues"]["command"] == parent["command"]
    assert record["training_wall_time_s"] > parent["training_wall_time_s"]  # both stages counted
    capsys.readouterr()
    assert cli.main(["train", "--model", "cnn_adam_m1", "--init-from", str(first), *common]) == 2
    assert "that run trained 'baseline', not 'cnn_adam_m1'" in capsys.readouterr().err
