"""Resumable training: a checkpoint after every epoch, and what `cifar10 train --resume RUN_DIR` reads back.

A run folder says what it is in ``run.json``: ``"status": "unfinished"`` from the moment training starts
(written before the first epoch, with the settings, the export target and ``epochs_done``), ``"finished"`` once
the run record is complete. Only a finished run can be exported or continued with ``--init-from``; only an
unfinished one can be resumed.

After every epoch :class:`EpochCheckpoint` writes ``checkpoint.npz`` in the run folder: every model variable
(weights, BatchNorm statistics, the Dropout layers' seed states), every optimizer variable (step count, the
learning rate as ReduceLROnPlateau left it, moments), the augmentation layers' seed states, the callbacks' state
(best-so-far of the best checkpoint, EarlyStopping's and ReduceLROnPlateau's counters), the history so far,
``history.csv`` as it was, NumPy's and Python's random states and the time spent. The shuffle order is not stored:
``make_dataset(..., skip_epochs=k)`` draws (and drops) the first k epochs' orders of the seeded shuffle. With
all of that a resumed run repeats the uninterrupted one (tests/test_resume_training.py compares the histories).

Every file here is written atomically (a temporary file in the same folder, flushed to disk, then
``os.replace``): a kill -9 in the middle of a write leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

from cifar10.errors import UserFacingError
from cifar10.run_folders import (CHECKPOINT, FINISHED, RUN_RECORD, UNFINISHED, is_finished,  # noqa: F401
                                 read_record, unfinished_runs)

BEST = "best.keras"
HISTORY = "history.csv"
FORMAT = 1  # checkpoint.npz's layout


# --- atomic files --------------------------------------------------------------------------------------

def _file_mode() -> int:
    """What open() would give a new file (mkstemp makes them private: 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new one, never half."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, _file_mode())
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, record: dict) -> None:
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary .keras file in the same folder."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
    os.close(handle)
    try:
        os.chmod(temporary, _file_mode())
        model.save(temporary)
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the run folder ------------------------------------------------------------------------------------

def model_fingerprint(model: keras.Model) -> str:
    """A hash of the model's layers (classes and configs, names left out: Keras numbers them per process) and
    of its variables' shapes and dtypes: a checkpoint restores into the same network only."""
    def unnamed(value):
        if isinstance(value, dict):
            return {k: unnamed(v) for k, v in value.items() if k not in ("name", "registered_name")}
        if isinstance(value, (list, tuple)):
            return [unnamed(v) for v in value]
        return value

    layers = [(type(layer).__name__, unnamed(layer.get_config())) for layer in model._flatten_layers(include_self=False)]
    variables = [(tuple(v.shape), str(v.dtype)) for v in model.variables]
    text = json.dumps([layers, variables], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- callback state ------------------------------------------------------------------------------------

class BestCheckpoint(keras.callbacks.Callback):
    """Keep the epoch with the highest ``monitor`` in ``path`` (as ModelCheckpoint(save_best_only=True) does,
    but written atomically, and with its best-so-far part of the checkpoint)."""

    def __init__(self, path: Path, monitor: str = "val_accuracy"):
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, None

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if self.best is None or float(current) > self.best:
            self.best = float(current)
            save_model_atomically(self.model, self.path)


# What each kind of callback must carry over a restart (everything else is set up anew by on_train_begin).
CALLBACK_STATE = {
    "BestCheckpoint": ("best",),
    "EarlyStopping": ("wait", "best", "best_epoch", "stopped_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "TestCurve": ("train_time_s",),  # its test seconds are per stage
}


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if hasattr(value, "numpy"):
        return np.asarray(value).item()
    return value


def callback_states(callbacks) -> list:
    return [{"class": type(c).__name__, **{a: _plain(getattr(c, a, None)) for a in CALLBACK_STATE[type(c).__name__]}}
            if type(c).__name__ in CALLBACK_STATE else None for c in callbacks]


def restore_callback_states(callbacks, states) -> None:
    if len(states) != len(callbacks):
        raise UserFacingError("the checkpoint was written with other training callbacks: cannot resume it")
    for callback, state in zip(callbacks, states):
        if state is None:
            continue
        if state["class"] != type(callback).__name__:
            raise UserFacingError("the checkpoint was written with other training callbacks: cannot resume it")
        for attribute, value in state.items():
            if attribute != "class":
                setattr(callback, attribute, value)


# --- the checkpoint ------------------------------------------------------------------------------------

class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch, everything a restart needs, in ``run_dir/checkpoint.npz`` (atomically), and
    ``epochs_done`` in run.json. Put it after the callbacks whose state it keeps (their on_epoch_end has run
    by then) and before the progress events (an "epoch" event means: that epoch is kept).

    ``tracked``: the callbacks whose state is saved (the list's order is the checkpoint's); ``augmenter``: the
    tf.data augmentation layers (their seed states); ``resume_from``: a :class:`Checkpoint` to continue;
    ``elapsed_before``: seconds of this stage before fit (loading the data); ``stages``: earlier stages;
    ``data_state``: a function that returns the input pipeline's state as JSON-ready values, stored as the
    checkpoint's ``data`` (a recipe's own batches: fast_cnn's random generator; may be set after creation)."""

    def __init__(self, run_dir: Path, *, tracked, epochs: int, augmenter=None, resume_from: "Checkpoint | None" = None,
                 stage_started: float, stage: dict, stages: list[dict] | None = None, exclude_seconds=None,
                 data_state=None):
        super().__init__()
        self.run_dir, self.tracked, self.epochs, self.augmenter = Path(run_dir), list(tracked), epochs, augmenter
        self.data_state = data_state
        self.resume_from = resume_from
        self.history: dict[str, list] = {k: list(v) for k, v in (resume_from.history if resume_from else {}).items()}
        self.stage_started, self.stage, self.stages = stage_started, stage, list(stages or [])
        self.exclude_seconds = exclude_seconds or (lambda: 0.0)
        self.epochs_done = resume_from.epochs_done if resume_from else 0

    def on_train_begin(self, logs=None):
        if self.resume_from is not None:  # after the tracked callbacks' own on_train_begin has reset them
            restore_callback_states(self.tracked, self.resume_from.callbacks)

    def stage_seconds(self) -> float:
        return time.perf_counter() - self.stage_started - self.exclude_seconds()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.stage.update(last_epoch=epoch + 1, wall_time_s=round(self.stage_seconds(), 1))
        state = {
            "format": FORMAT, "epochs_done": epoch + 1, "epochs": self.epochs,
            "stop_training": bool(self.model.stop_training),
            "fingerprint": model_fingerprint(self.model),
            "history": self.history, "callbacks": callback_states(self.tracked),
            "stages": self.stages + [self.stage],
            "python_random": _python_state(),
            "data": self.data_state() if self.data_state is not None else None,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(self.model.variables)}
        optimizer = self.model.optimizer
        arrays |= {f"optimizer_{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
        if self.augmenter is not None:
            arrays |= {f"augmenter_{i}": np.asarray(v) for i, v in enumerate(self.augmenter.variables)}
        kind, keys, position, has_gauss, cached = np.random.get_state()
        arrays |= {"numpy_random_keys": keys, "numpy_random_rest": np.array([position, has_gauss, cached], np.float64)}
        history_csv = self.run_dir / HISTORY
        arrays["history_csv"] = np.frombuffer(history_csv.read_bytes() if history_csv.exists() else b"", np.uint8)
        arrays["state"] = np.frombuffer(json.dumps(state).encode(), np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.run_dir / CHECKPOINT, buffer.getvalue())
        self.epochs_done = epoch + 1  # only once it is on disk (a "stopped" event reports this)
        record = read_record(self.run_dir)
        if record is not None and not is_finished(record):
            atomic_write_json(self.run_dir / RUN_RECORD, record | {"epochs_done": epoch + 1,
                                                                   "stopped_early": bool(self.model.stop_training)})


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


class Checkpoint:
    """A checkpoint.npz read back: ``restore_model``, ``restore_optimizer``, ``restore_augmenter`` and
    ``restore_random`` put its values into freshly built objects; ``history_csv`` goes back to disk."""

    def __init__(self, path: Path):
        try:
            with np.load(path) as stored:
                self.arrays = {k: stored[k] for k in stored.files}
            self.state = json.loads(self.arrays.pop("state").tobytes().decode())
        except (OSError, ValueError, KeyError) as exc:
            raise UserFacingError(f"{path}: the checkpoint cannot be read ({exc})") from None
        if self.state.get("format") != FORMAT:
            raise UserFacingError(f"{path}: a checkpoint of another version of this program")
        self.epochs_done = int(self.state["epochs_done"])
        self.history = self.state["history"]
        self.callbacks = self.state["callbacks"]
        self.stages = self.state["stages"]
        self.data = self.state.get("data")  # EpochCheckpoint's data_state, if it had one

    def _values(self, prefix: str) -> list[np.ndarray]:
        count = sum(1 for k in self.arrays if k.startswith(prefix))
        return [self.arrays[f"{prefix}{i}"] for i in range(count)]

    def _assign(self, variables, prefix: str, what: str) -> None:
        values = self._values(prefix)
        if len(values) != len(variables) or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
            raise UserFacingError(f"the checkpoint's {what} does not match this model: cannot resume it")
        for variable, value in zip(variables, values):
            variable.assign(value)

    def check_model(self, model: keras.Model, name: str) -> None:
        if model_fingerprint(model) != self.state["fingerprint"]:
            raise UserFacingError(f"the model {name} has changed since this run started (its layers differ from "
                                  "the checkpoint's): it cannot be resumed; start a new run")

    def restore_model(self, model: keras.Model) -> None:
        self._assign(model.variables, "model_", "model")

    def restore_optimizer(self, model: keras.Model) -> None:
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        self._assign(optimizer.variables, "optimizer_", "optimizer state")

    def restore_augmenter(self, augmenter) -> None:
        if augmenter is not None:
            self._assign(augmenter.variables, "augmenter_", "augmentation state")

    def restore_random(self) -> None:
        rest = self.arrays["numpy_random_rest"]
        np.random.set_state(("MT19937", self.arrays["numpy_random_keys"], int(rest[0]), int(rest[1]), float(rest[2])))
        version, internal, gauss = self.state["python_random"]
        random.setstate((version, tuple(internal), gauss))

    def restore_history_csv(self, run_dir: Path) -> None:
        """history.csv as it was at the checkpoint: an epoch logged after it (then lost) is not logged twice."""
        atomic_write_bytes(Path(run_dir) / HISTORY, self.arrays["history_csv"].tobytes())


def load_checkpoint(run_dir) -> Checkpoint | None:
    path = Path(run_dir) / CHECKPOINT
    return Checkpoint(path) if path.is_file() else None
