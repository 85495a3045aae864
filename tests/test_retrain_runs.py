"""Labels ▸ Retrain's run folders: in the user's cache folder (not the shared /tmp), created for the user only,
and pruned after each Retrain to the newest few per data folder and a total bound, deleting only finished run
folders of `cifar10 train` directly inside that folder (never a link, a file, a folder without our run.json,
an unfinished run or anything outside). Real folders in tmp_path; the user's folders point there. The Retrain
itself (the folder's mode, Improve finding its run) is in test_desktop_labelling.py."""

import hashlib
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from desktop_app.train_process import (RETRAIN_KEEP, RETRAIN_KEEP_ALL, TrainProcess, discard_run,  # noqa: E402
                                       prune_retrain_runs, retrain_runs_dir)
from desktop_fixtures import isolate_user_dirs  # noqa: E402

CLASSES = ("cat", "dog")


def run(runs, name, *, data, classes=CLASSES, finished="2025-01-01T00:00:00", status="finished",
        model="efficientnet_lite0_linear", size=128, settings=True) -> Path:
    """A run folder as `cifar10 train` leaves it: run.json and the Keras file."""
    folder = runs / name
    folder.mkdir(parents=True)
    record = {"status": status, "model": model, "class_names": list(classes), "image_size": size,
              "finished": finished, **({"settings": {"data": str(data)}} if settings else {})}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "final.keras").write_bytes(b"weights")
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_runs_folder_is_in_the_users_cache_folder(tmp_path, monkeypatch):
    isolate_user_dirs(tmp_path, monkeypatch)
    assert retrain_runs_dir() == tmp_path / "user-cache" / "cifar10-studio" / "retrain-runs"
    assert (RETRAIN_KEEP, RETRAIN_KEEP_ALL) == (2, 10)


def test_pruning_keeps_the_newest_runs_per_folder_and_deletes_only_our_finished_runs(tmp_path):
    runs, pets, birds = tmp_path / "runs", tmp_path / "pets", tmp_path / "birds"
    old_pets = [run(runs, f"pets-{day}", data=pets, finished=f"2025-01-0{day}T00:00:00") for day in range(1, 6)]
    other_order = run(runs, "pets-other-order", data=pets, classes=CLASSES[::-1], finished="2024-01-03T00:00:00")
    other_size = run(runs, "pets-96px", data=pets, size=96, finished="2024-01-02T00:00:00")
    birds_run = run(runs, "birds", data=birds, finished="2024-01-01T00:00:00")
    in_use = run(runs, "pets-in-use", data=pets, finished="2024-06-01T00:00:00")  # a running Improve's head
    unfinished = [run(runs, f"unfinished-{n}", data=pets, status="unfinished", finished=f"2020-0{n}-01")
                  for n in (1, 2)]
    killed = runs / "killed"  # a killed Retrain: the instant model writes its run.json when it is done
    killed.mkdir()
    (killed / "final.keras").write_bytes(b"weights")
    foreign = run(runs, "not-ours", data=pets, finished="2020-01-01T00:00:00", settings=False)
    (runs / "notes.txt").write_text("mine")

    outside = tmp_path / "outside"
    linked_run = run(outside, "elsewhere", data=pets, finished="2020-01-01T00:00:00")
    secret = outside / "secret.txt"
    secret.write_text("the user's file")
    digest = sha256(secret)
    (runs / "linked").symlink_to(linked_run, target_is_directory=True)
    (old_pets[0] / "link-to-secret").symlink_to(secret)  # a run that goes holds a link to a file outside

    deleted = prune_retrain_runs(runs, keep=[str(in_use)])
    assert sorted(deleted) == sorted(str(p) for p in old_pets[:3])
    assert not any(p.exists() for p in old_pets[:3])
    assert all(p.is_dir() for p in (*old_pets[3:], other_order, other_size, birds_run, in_use, *unfinished,
                                    killed, foreign, linked_run))
    assert (runs / "linked").is_symlink() and (runs / "notes.txt").read_text() == "mine"
    assert secret.exists() and sha256(secret) == digest
    assert prune_retrain_runs(runs, keep=[str(in_use)]) == []  # nothing more to do

    # The total bound: the oldest go first, whatever their folder (here all but the newest 2).
    deleted = prune_retrain_runs(runs, total=2)
    assert sorted(deleted) == sorted(map(str, (in_use, other_order, other_size, birds_run)))
    assert sorted(p.name for p in runs.iterdir()) == ["killed", "linked", "not-ours", "notes.txt", "pets-4",
                                                      "pets-5", "unfinished-1", "unfinished-2"]
    assert linked_run.is_dir() and sha256(secret) == digest


def test_the_total_bound_counts_runs_on_many_folders(tmp_path):
    runs = tmp_path / "runs"
    made = [run(runs, f"folder-{n:02d}", data=tmp_path / f"data-{n}", finished=f"2025-01-{n + 1:02d}T00:00:00")
            for n in range(RETRAIN_KEEP_ALL + 3)]
    assert sorted(prune_retrain_runs(runs)) == [str(p) for p in made[:3]]  # the three oldest
    assert sorted(runs.iterdir()) == made[3:]


def test_discard_run_deletes_nothing_outside_its_runs_folder(tmp_path):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    runs.mkdir()
    elsewhere = run(outside, "run", data=tmp_path, finished="2020-01-01T00:00:00")
    assert not discard_run(runs / ".." / "outside" / "run", finished=True, runs_dir=runs)
    assert not discard_run(outside, finished=True, runs_dir=runs)
    (runs / "link").symlink_to(elsewhere, target_is_directory=True)
    assert not discard_run(runs / "link", finished=True, runs_dir=runs)
    assert not discard_run(elsewhere, runs_dir=outside)  # finished: Stop and Discard leaves it
    assert elsewhere.is_dir() and (runs / "link").is_symlink()
    assert discard_run(elsewhere, finished=True, runs_dir=outside) and not elsewhere.exists()


def test_a_running_childs_runs_are_in_use(qtbot, tmp_path):
    """What a running child reads or writes is kept by the pruning (its --init-head here); once it is over, not."""
    train = TrainProcess()
    head = str(tmp_path / "runs" / "head")
    with qtbot.waitSignal(train.finished, timeout=30000):
        train.start(["-c", "import time; time.sleep(60)", "--init-head", head], program=sys.executable)
        assert head in TrainProcess.runs_in_use()
        train.cancel()
    assert head not in TrainProcess.runs_in_use()

