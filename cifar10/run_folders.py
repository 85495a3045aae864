"""Training run folders as the apps see them, without TensorFlow: is a run finished, and which unfinished runs
can `cifar10 train --resume RUN_DIR` continue (training/checkpoint.py writes them).

A run folder's ``run.json`` says ``"status": "unfinished"`` from the first epoch on, with ``epochs_done`` /
``epochs`` and the settings, and ``"status": "finished"`` once training is over (runs written before
checkpoints existed have no status: their run.json was only written at the end, so they are finished).
"""

from __future__ import annotations

import json
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


def unfinished_runs(*runs_dirs) -> list[dict]:
    """The unfinished runs directly inside each of ``runs_dirs`` (missing folders are skipped), newest first:
    each its run.json plus "run_dir"."""
    found, seen = [], set()
    for runs_dir in runs_dirs:
        try:
            folders = [p for p in Path(runs_dir).iterdir() if p.is_dir()]
        except OSError:
            continue
        for folder in folders:
            key = folder.resolve()
            record = read_record(folder)
            if key in seen or record is None or is_finished(record) or "settings" not in record:
                continue
            seen.add(key)
            found.append(record | {"run_dir": str(folder)})
    return sorted(found, key=lambda r: str(r.get("started", "")), reverse=True)
