"""`cifar10 classify --engine ray` and `cifar10 sweep` on a real two-node Ray cluster on 127.0.0.1
(tests/ray_cluster.py: one cluster for the whole module, torn down even when a test fails)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cifar10.resume import shards_dir
from cifar10.results_io import read_results
from cifar10_cli.main import main
from cifar_fixtures import write_dataset
from image_files import mixed_folder
from onnx_fixtures import MAPPING_B, write_model, write_v2_model
from ray_cluster import ray_cluster, ray_env  # noqa: F401  (the fixture)
from test_resume import assert_rows_once_and_equal, noisy_folder, start_and_kill

pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install -e '.[ray]')")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture()
def models(tmp_path, monkeypatch):
    models = tmp_path / "models"
    write_model(models, "colour_b", test_accuracy=0.8, mapping=MAPPING_B)
    write_model(models, "slow", test_accuracy=0.5, mapping=MAPPING_B, slow_layers=4, slow_channels=64)
    write_v2_model(models, "trusty", threshold=0.0)  # contract v2: ood_score and the unsure flag in every row
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    return models


def ray_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command as a real driver process, as a user runs it against a cluster."""
    return subprocess.run([sys.executable, "-m", "cifar10_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ray_env())


def test_ray_rows_equal_local_rows_on_a_mixed_folder(ray_cluster, models, tmp_path):
    images = tmp_path / "images"
    expected = mixed_folder(images)
    noisy_folder(images / "many", 300)  # several blocks, so both nodes' actors get work
    local, remote = tmp_path / "local.csv", tmp_path / "ray.json"
    assert main(["classify", str(images), "-o", str(local), "--model", "colour_b"]) == 1  # broken files: exit 1
    done = ray_cli("classify", str(images), "-o", str(remote), "--model", "colour_b", "--engine", "ray",
                   "--address", ray_cluster.address, "--batch-size", "32")
    assert done.returncode == 1, done.stderr
    assert f"the Ray cluster at {ray_cluster.address}: 2 nodes, 2 CPUs" in done.stderr
    local_rows, ray_rows = read_results(local), json.loads(remote.read_text())["rows"]
    assert len(local_rows) == len(expected) + 300
    for row in ray_rows:
        row.pop("top_k")
    assert [r["path"] for r in ray_rows] == [r["path"] for r in local_rows]  # same order too
    assert_rows_once_and_equal(ray_rows, local_rows)
    assert "this model has no open-set score" in done.stderr

    # a contract-v2 model: its open-set score and unsure flag come through the cluster unchanged
    local_v2, remote_v2 = tmp_path / "local_v2.csv", tmp_path / "ray_v2.csv"
    assert main(["classify", str(images), "-o", str(local_v2), "--model", "trusty"]) == 1
    done = ray_cli("classify", str(images), "-o", str(remote_v2), "--model", "trusty", "--engine", "ray",
                   "--address", ray_cluster.address, "--batch-size", "32")
    assert done.returncode == 1, done.stderr
    v2_local, v2_ray = read_results(local_v2), read_results(remote_v2)
    assert_rows_once_and_equal(v2_ray, v2_local)
    scored = [r for r in v2_ray if not r["error"]]
    assert scored and all(r["ood_score"] is not None and r["unsure"] in (True, False) for r in scored)
    unsure = sum(r["unsure"] for r in scored)
    assert f"{unsure} of {len(scored)} unsure" in done.stderr
    broken = [r for r in ray_rows if r["error"]]
    assert len(broken) == 3 + 12 and all(r["label"] == "" and r["cat"] is None for r in broken)
    assert {r["error"] for r in broken} >= {"not an image, or an unsupported format",
                                            "truncated or incomplete image file (image file is truncated)"}
    assert not shards_dir(remote).exists()  # a finished run removes its journal (the killed run's test reads one)


def test_shards_of_the_old_layout_still_read():
    """Shards written before contract v3 had one float32 column per CIFAR-10 class: --resume still reads them."""
    import pyarrow as pa

    from cifar10.contract import CLASS_NAMES
    from cifar10.resume import table_to_records

    old = {"path": ["a.png", "b.txt"], "key": ["/a.png", "/b.txt"], "size": [1, 2], "mtime_ns": [3, 4],
           "label": ["cat", ""], "confidence": [0.9, None], "error": ["", "not an image"],
           "unsure": [False, None], "ood_score": [None, None]}
    old |= {name: pa.array([0.9 if name == "cat" else 0.01, None], pa.float32()) for name in CLASS_NAMES}
    good, bad = table_to_records(pa.table(old))
    assert good["probabilities"][CLASS_NAMES.index("cat")] == pytest.approx(0.9) and len(good["probabilities"]) == 10
    assert bad["probabilities"] is None and bad["error"] == "not an image"


def test_killed_ray_run_resumes_with_every_file_once(ray_cluster, models, tmp_path):
    images = tmp_path / "images"
    paths = noisy_folder(images, 2400)
    reference = tmp_path / "reference.csv"
    assert main(["classify", str(images), "-o", str(reference), "--model", "slow", "--batch-size", "16"]) == 1
    out = tmp_path / "out.csv"
    args = ["classify", str(images), "-o", str(out), "--model", "slow", "--engine", "ray", "--address",
            ray_cluster.address, "--batch-size", "16"]
    start_and_kill(args, out, enough=lambda: len(list(shards_dir(out).glob("part-*.parquet"))) >= 2,
                   env=ray_env(), timeout=180)
    done_before = sum(pq.read_metadata(s).num_rows for s in shards_dir(out).glob("part-*.parquet"))
    assert 0 < done_before < len(paths), "killed half-way"
    # the Parquet shards hold the rows (full float32 precision, plus each file's key)
    table = pq.read_table(sorted(shards_dir(out).glob("part-*.parquet"))[0])
    assert {"path", "key", "size", "mtime_ns", "label", "confidence", "error", "probabilities"} <= set(table.column_names)
    resumed = ray_cli(*args, "--resume")
    assert resumed.returncode == 1, resumed.stderr  # every 25th file is broken
    assert "resuming" in resumed.stderr
    rows = read_results(out)
    assert_rows_once_and_equal(rows, read_results(reference))
    assert len(rows) == len(paths) and not shards_dir(out).exists()


def test_sweep_of_two_trials_exports_the_best(ray_cluster, tmp_path):
    data_dir = write_dataset(tmp_path / "cifar", per_batch=1020)
    out, export_dir = tmp_path / "sweeps", tmp_path / "exported"
    done = ray_cli("sweep", "--model", "baseline", "--optimizer", "adam", "sgd", "--epochs", "1", "--limit", "64",
                   "--data-dir", str(data_dir), "--out", str(out), "--export-dir", str(export_dir),
                   "--address", ray_cluster.address, timeout=500)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "2 trials (grid search), 1 CPU each, so 2 at a time" in done.stderr
    (sweep_dir,) = out.iterdir()
    with open(sweep_dir / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    assert sorted(t["optimizer"] for t in trials) == ["adam", "sgd"]
    assert all(t["status"] == "finished" and t["epochs_run"] == "1" for t in trials)
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    best = summary["best"]
    assert best["best_val_accuracy"] == pytest.approx(max(float(t["best_val_accuracy"]) for t in trials), abs=1e-4)
    assert summary["exported"] == str(export_dir / "baseline.onnx")
    card = json.loads((export_dir / "baseline.json").read_text())
    assert card["training_command"].startswith(f"cifar10 train --model baseline --optimizer {best['config']['optimizer']}")
    assert (Path(best["run_dir"]) / "run.json").is_file()
    assert (sweep_dir / "curves.png").stat().st_size > 5000
