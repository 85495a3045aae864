"""`cifar10 label-issues FOLDER`: out-of-fold predictions of a linear model on cached features + cleanlab."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_train_folder import REPO, write_folder

pytest.importorskip("tensorflow")
pytest.importorskip("cleanlab")


def planted_folder(root: Path) -> tuple[Path, dict[str, str]]:
    """Colour classes (12 per class) with two pictures in the wrong class folder: {new path: true class}."""
    data = write_folder(root, per_class=12)
    (data / "cat" / "broken.jpg").unlink()
    planted = {}
    for name, wrong in (("cat/cat_03.png", "dog"), ("frog/frog_04.jpg", "cat")):
        target = data / wrong / Path(name).name
        shutil.move(data / name, target)
        planted[str(target)] = name.split("/")[0]
    return data, planted


def test_label_issues_lists_the_planted_mistakes_first(tmp_path):
    data, planted = planted_folder(tmp_path / "pets")
    out = tmp_path / "issues.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "label-issues", str(data), "--model", "test_linear",
                             "--output", str(out), "--folds", "3"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["path", "given_label", "suggested_label", "confidence"]
    top = {row["path"]: row for row in rows[:len(planted)]}
    assert set(top) == set(planted)
    for path, true in planted.items():
        assert top[path]["suggested_label"] == true and top[path]["given_label"] != true
    assert all(0 <= float(row["confidence"]) <= 1 for row in rows)
    assert (data / "dog" / "cat_03.png").exists()


def test_json_progress_needs_a_csv_file(tmp_path, capsys):
    from cifar10_cli import main as cli

    assert cli.main(["label-issues", str(tmp_path), "--progress", "json"]) == 2
    assert "give the CSV a file with --output" in capsys.readouterr().err
