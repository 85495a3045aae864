"""Training run folders as the apps see them, without TensorFlow: is a run finished, which unfinished runs can
`cifar10 train --resume RUN_DIR` continue (training/checkpoint.py writes them), and which finished instant-model
run a fine-tune can start its head from (`cifar10 train --init-head RUN_DIR`).

A run folder's ``run.json`` says ``"status": "unfinished"`` from the first epoch on, with ``epochs_done`` /
``epochs`` and the settings, and ``"status": "finished"`` once training is over (runs written before
checkpoints existed have no status: their run.json was only written at the end, so they are finished).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RUN_RECORD = "run.json"
CHECKPOINT = "checkpoint.npz"
UNFINISHED, FINISHED = "unfinished", "finished"


def read_record(run_dir) -> dict | None:
    """``run_dir/run.json`` as a dict; None when it is missing or unreadable."""
    try:
        record = json.loads((Path(run_dir) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_finished(record: dict) -> bool:
    return record.get("status", FINISHED) == FINISHED


def _records(runs_dirs):
    """(folder, its run.json) of every run folder directly inside each of ``runs_dirs``, each folder once (missing
    folders are skipped)."""
    seen = set()
    for runs_dir in runs_dirs:
        try:
            folders = [p for p in Path(runs_dir).iterdir() if p.is_dir()]
        except OSError:
            continue
        for folder in folders:
            key = folder.resolve()
            record = read_record(folder)
            if key not in seen and record is not None:
                seen.add(key)
                yield folder, record


def unfinished_runs(*runs_dirs) -> list[dict]:
    """The unfinished runs directly inside each of ``runs_dirs`` (missing folders are skipped), newest first:
    each its run.json plus "run_dir"."""
    found = [record | {"run_dir": str(folder)} for folder, record in _records(runs_dirs)
             if not is_finished(record) and "settings" in record]
    return sorted(found, key=lambda r: str(r.get("started", "")), reverse=True)


def head_mismatch(record: dict, class_names, image_size: int) -> str | None:
    """Why the classifier head of the run ``record`` cannot start a model for ``class_names`` (in this order) at
    ``image_size`` px (``cifar10 train --init-head``); None when it can. The feature width and the backbone's
    weights are checked on the models themselves (training.linear_probe.init_head_from_run)."""
    theirs, ours = list(record.get("class_names") or []), list(class_names)
    if theirs != ours:
        if sorted(theirs) == sorted(ours):
            return f"its classes are in another order ({', '.join(theirs)}; this data: {', '.join(ours)})"
        return f"it was trained on other classes ({', '.join(theirs)}; this data: {', '.join(ours)})"
    if int(record.get("image_size") or 0) != int(image_size):
        return f"it takes {record.get('image_size')} px pictures, this model {image_size} px"
    return None


def finished_runs(*runs_dirs, model: str | None = None, data=None) -> list[dict]:
    """The finished runs directly inside each of ``runs_dirs`` (missing folders are skipped), of ``model`` and
    trained on the folder ``data`` (the same folder on disk) when they are given, newest first: each its run.json
    plus "run_dir"."""
    want = os.path.realpath(data) if data else None

    def trained_on_it(record: dict) -> bool:
        folder = (record.get("settings") or {}).get("data")
        return want is None or (bool(folder) and os.path.realpath(folder) == want)

    found = [record | {"run_dir": str(folder)} for folder, record in _records(runs_dirs)
             if is_finished(record) and model in (None, record.get("model")) and trained_on_it(record)]
    return sorted(found, key=lambda r: str(r.get("finished", "")), reverse=True)
