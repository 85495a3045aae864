"""`cifar10 train --resume RUN_DIR` (training/checkpoint.py): a real tiny `cifar10 train` killed with SIGKILL
after epoch 2 of 4 and resumed (epochs 3-4 only, each epoch once in history.csv, the same history as an
uninterrupted run, a card that lists both stages); the refusals (settings flags, a finished run, a changed
model, exporting an unfinished run); and checkpoint writes that a kill -9 cannot tear."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cifar10_cli import main as cli
from cifar_fixtures import StopAfter, write_dataset

REPO = Path(__file__).resolve().parents[1]
# Augmentation off: with it, two uninterrupted runs of the same seed already differ slightly (the augmentation
# layers draw their seeds in parallel tf.data map calls, in no fixed order), so only the run-to-run spread
# could be compared. Without it a run is repeatable, and so must its resumed twin be.
TINY = ["--model", "baseline", "--epochs", "4", "--limit", "512", "--no-augment", "--lr-schedule", "plateau",
        "--early-stopping-patience", "3", "--seed", "3"]
TOLERANCE = 1e-4  # float32 round-off (oneDNN may order sums differently between processes); measured 0


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.delenv("CIFAR10_MODELS_DIR", raising=False)
    return tmp_path


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def kill_after_epoch(command: list[str], epoch: int, cwd: Path) -> tuple[Path, list[dict]]:
    """Run `cifar10 train ... --progress json`; at the "epoch" event of ``epoch`` freeze the child (SIGSTOP) and
    kill it (SIGKILL): nothing of its own gets to run. Returns the run folder and the events read."""
    child = subprocess.Popen([sys.executable, "-m", "cifar10_cli", "train", *command, "--progress", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd, env=child_env())
    events, run_dir = [], None
    try:
        for line in child.stdout:
            event = json.loads(line)
            events.append(event)
            if event["event"] == "run":
                run_dir = Path(event["run_dir"])
            if event["event"] == "epoch" and event["epoch"] == epoch:
                os.kill(child.pid, signal.SIGSTOP)
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(60)
    assert child.returncode == -signal.SIGKILL, events
    return run_dir, events


def test_kill_9_after_epoch_2_of_4_then_resume_trains_epochs_3_and_4_only(home):
    data_dir = write_dataset(home / "cifar", per_batch=1020)
    runs, models_dir = home / "runs", home / "models"
    common = [*TINY, "--data-dir", str(data_dir), "--export-dir", str(models_dir)]
    run_dir, events = kill_after_epoch([*common, "--out", str(runs)], 2, home)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    record = json.loads((run_dir / "run.json").read_text())
    # The folder says what it is; the epoch 3 that was under way when the kill came is lost, epoch 2 is kept.
    assert record["status"] == "unfinished" and record["epochs"] == 4
    assert record["epochs_done"] in (2, 3)
    from cifar10.run_folders import unfinished_runs
    from training.checkpoint import load_checkpoint
    assert load_checkpoint(run_dir).epochs_done == 2
    assert [r["run_dir"] for r in unfinished_runs(runs)] == [str(run_dir)]
    assert not models_dir.exists()

    # Exporting or continuing (--init-from) an unfinished run is refused, with the way on.
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "export", str(run_dir), "--data-dir", str(data_dir),
                             "--export-dir", str(models_dir)], capture_output=True, text=True, env=child_env())
    assert result.returncode == 2 and f"resume it with cifar10 train --resume {run_dir}" in result.stderr

    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--resume", str(run_dir), "--progress", "json"],
                            capture_output=True, text=True, cwd=home, env=child_env(), timeout=600)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0] == {"event": "run", "run_dir": str(run_dir), "epochs_done": 2, "epochs": 4, "resumed": True,
                         "resumable": True}
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [3, 4]  # the remaining epochs only
    assert events[-1]["event"] == "exported" and Path(events[-1]["path"]) == models_dir / "baseline.onnx"
    assert f"Resuming {run_dir}: 2 of 4 epochs done" in result.stderr
    resumed = history(run_dir)
    assert [row["epoch"] for row in resumed] == [0, 1, 2, 3]  # each epoch once

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["epochs_run"] == 4
    assert not (run_dir / "checkpoint.npz").exists()  # done with: best.keras is the result
    card = json.loads((models_dir / "baseline.json").read_text())
    stages = card["training"]["resumed"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in stages] == [(1, 2), (3, 4)]
    assert stages[1]["command"] == f"cifar10 train --resume …/{run_dir.name} --progress json"
    assert card["training"]["wall_time_s"] == card["training_wall_time_s"] == record["training_wall_time_s"]
    assert card["training_wall_time_s"] == pytest.approx(sum(s["wall_time_s"] for s in stages), abs=0.2)
    assert card["training_command"].startswith("cifar10 train --model baseline --epochs 4")

    # The same run without the kill: the same history (weights, Adam's moments, the plateau schedule's and early
    # stopping's counters, Dropout's seeds and the shuffle order all carried over).
    assert cli.main(["train", *TINY, "--data-dir", str(data_dir), "--out", str(home / "straight"), "--no-export"]) == 0
    (straight,) = (home / "straight").iterdir()
    uninterrupted = history(straight)
    assert len(uninterrupted) == len(resumed)
    for a, b in zip(uninterrupted, resumed):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=TOLERANCE), (key, a, b)

    # Finished: --resume says so and how to export it.
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--resume", str(run_dir)],
                            capture_output=True, text=True, env=child_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (f"cifar10: error: --resume {run_dir}: that run is already "
                                                      f"finished; export it with cifar10 export {run_dir}")


def interrupted_run(home: Path, data_dir: Path, epochs_done: int = 1, **overrides) -> Path:
    from training.train import TrainSettings, train

    settings = TrainSettings.for_model("baseline", epochs=3, limit=128, augment=True, **overrides)
    events = []
    with pytest.raises(KeyboardInterrupt):
        train(settings, data_dir=data_dir, out=home / "runs", callbacks=[StopAfter(epochs_done)], progress=events.append)
    stopped = events[-1]
    assert stopped["event"] == "stopped" and stopped["epochs_done"] == epochs_done
    return Path(stopped["run_dir"])


def test_resume_refuses_settings_flags_and_a_changed_model(home, capsys, monkeypatch):
    data_dir = write_dataset(home / "cifar", per_batch=1020)
    run_dir = interrupted_run(home, data_dir)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_dir), "--epochs", "9", "--lr=0.1", "--no-export"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cifar10: error: --resume takes the run's settings from {run_dir / 'run.json'}: leave out "
                   "--epochs, --lr"]

    # The registered model's layers changed since the run started: refused, nothing trained.
    import training.train as train_module
    from training.models import create_model
    monkeypatch.setattr(train_module, "build_model",
                        lambda settings, num_classes: create_model("baseline", num_classes=num_classes, batch_norm=True))
    before = (run_dir / "checkpoint.npz").read_bytes()
    assert cli.main(["train", "--resume", str(run_dir), "--data-dir", str(data_dir), "--no-export"]) == 2
    assert "the model baseline has changed since this run started" in capsys.readouterr().err
    assert (run_dir / "checkpoint.npz").read_bytes() == before
    monkeypatch.undo()

    # Not a run folder at all.
    assert cli.main(["train", "--resume", str(home), "--no-export"]) == 2
    assert "no readable run.json there" in capsys.readouterr().err

    # And the resume itself, in this process, with the augmentation on, given the runs folder (one unfinished run
    # there): the history goes on from epoch 2.
    assert cli.main(["train", "--resume", str(home / "runs"), "--data-dir", str(data_dir), "--no-export"]) == 0
    out = capsys.readouterr()
    assert f"Resuming the unfinished run in {home / 'runs'}: {run_dir}" in out.err
    assert out.out.strip().splitlines()[-1].startswith(f"Saved run {run_dir} — export it: cifar10 export")
    assert [row["epoch"] for row in history(run_dir)] == [0, 1, 2]


def test_checkpoint_writes_survive_kill_9(tmp_path):
    """A writer replaces checkpoint.npz over and over (each a complete, self-consistent array); killed with
    SIGKILL at some moment, the file left is always one of the complete versions (never a torn one)."""
    target = tmp_path / "checkpoint.npz"
    script = (f"import io, sys, numpy as np\nsys.path.insert(0, {str(REPO)!r})\n"
              "from training.checkpoint import atomic_write_bytes\n"
              "i = 0\n"
              "while True:\n"
              "    buffer = io.BytesIO(); np.savez(buffer, values=np.full(4_000_000, i, np.int32)); i += 1\n"
              f"    atomic_write_bytes({str(target)!r}, buffer.getvalue())\n")
    for delay in (0.8, 1.3, 1.9):
        child = subprocess.Popen([sys.executable, "-c", script], env=child_env())
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with np.load(target) as stored:
            values = stored["values"]
        assert values.size == 4_000_000 and (values == values[0]).all()
        assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # an ordinary file, not mkstemp's private one
        target.unlink()
        for leftover in tmp_path.glob(".checkpoint.npz.*"):  # a torn temporary file: never read
            leftover.unlink()


def test_a_killed_run_of_a_recipe_that_cannot_resume_is_not_offered(home):
    """The instant model trains in one go (seconds) and keeps no run record until it is done: killed, its folder
    is not an unfinished run, so Models ▸ Resume Training (unfinished_runs) does not list it, and `--resume` on it
    says it is not a training run folder."""
    from cifar10.run_folders import unfinished_runs
    from test_train_folder import write_folder

    data = write_folder(home / "pets", per_class=6)
    runs = home / "runs"
    child = subprocess.Popen([sys.executable, "-m", "cifar10_cli", "train", "--data", str(data), "--model",
                              "test_linear", "--out", str(runs), "--no-export", "--progress", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=home, env=child_env())
    try:
        for line in child.stdout:
            event = json.loads(line)
            if event["event"] == "run":
                os.kill(child.pid, signal.SIGKILL)
                run_dir = Path(event["run_dir"])
                break
    finally:
        child.kill()
        child.wait(60)
    assert run_dir.is_dir() and not (run_dir / "run.json").exists()
    assert unfinished_runs(runs) == []
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--resume", str(run_dir)],
                            capture_output=True, text=True, cwd=home, env=child_env(), timeout=600)
    assert result.returncode == 2 and "no readable run.json there (not a training run folder)" in result.stderr
