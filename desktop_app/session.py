"""The desktop app's session: everything the window shows, in plain Python (no Qt; the napari pattern).

One :class:`Session` holds the loaded sources and files, the results per model *file version*, the current
model, the filters, the selection and the running job. Views (model picker, table, preview, status bar, first
screen, dialogs) observe its psygnal events and send it intents (``add_paths``, ``set_model``, ``clear``,
``set_class_filter``, ``select`` …); jobs write their results into it. Nothing here imports Qt, so the
session is tested with plain pytest (tests/test_desktop_session.py), jobs running inline.

A model is identified by its :class:`ModelKey`: the .onnx path, its mtime and size, and its card's mtime. A
model re-trained or copied over under the same name is therefore a *new* model: its results are computed
again and never mixed with the old file's.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Protocol, Sequence

from psygnal import Signal

from cifar10.inference import Classifier, Result
from cifar10.registry import ModelError, ModelInfo, best_model, discover_models, find_model, load_model_info
from desktop_app.jobs import Job, path_key

ERRORS_ONLY = "__errors__"
UNSURE_ONLY = "__unsure__"  # the open-set flag: "may be none of the model's classes"
CACHED_MODELS = 2           # result sets kept per model file (the current one and the one before: switch back at once)


class ModelKey(NamedTuple):
    """A model file version: a re-exported (re-trained, copied over) file is a new model."""

    path: str
    mtime_ns: int
    size: int
    card_mtime_ns: int


def model_key(model: ModelInfo) -> ModelKey:
    def stamp(path: Path) -> tuple[int, int]:
        try:
            st = os.stat(path)
        except OSError:
            return -1, -1
        return st.st_mtime_ns, st.st_size

    mtime, size = stamp(model.onnx_path)
    return ModelKey(path_key(str(model.onnx_path)), mtime, size, stamp(model.card_path)[0])


def open_model_as_now(model: ModelInfo, provider: str = "auto"):
    """The model file as it is on disk now, loaded: (ModelInfo, Classifier, ModelKey). A dialog that took its
    ModelInfo earlier calls it when the user starts (Sort, Evaluate): a model re-trained or copied over under
    the same name since brings its new classes, never the old ones. ModelError (one line, naming the model)
    when the file is gone or cannot be used, or when it changed again while it was being loaded."""
    key = model_key(model)
    try:
        info = load_model_info(model.onnx_path)
        classifier = Classifier(info, provider=provider)
    except ModelError as exc:
        raise ModelError(f"The model {model.name} cannot be used as it is on disk now: {exc}") from None
    if model_key(info) != key:
        raise ModelError(f"The model {model.name} changed on disk while it was being loaded: start again")
    return info, classifier, key


def unsure_row_text(result: Result) -> str:
    """What a table row says when the open-set flag is raised: ``unsure — most like airplane (87 %)``."""
    return f"unsure — most like {result.label} ({result.confidence * 100:.0f} %)"


class Runner(Protocol):
    """Runs one :class:`desktop_app.jobs.Job` at a time (the Qt window: a superqt worker; tests: inline). It
    reports back with ``session.on_job_message(job, kind, payload)`` and, last, ``session.on_job_finished(job,
    error)``."""

    @property
    def busy(self) -> bool: ...

    def start(self, job: Job) -> None: ...

    def cancel(self) -> None: ...


@dataclass
class JobState:
    """The running job as the status bar shows it. ``done`` counts every classified file, rows re-classified
    in place included."""

    job: Job
    key: ModelKey
    in_place: bool                   # re-classifies files already loaded (a model switch)
    started: float = field(default_factory=time.perf_counter)
    files: list[str] = field(default_factory=list)
    stamps: dict = field(default_factory=dict)  # path -> file_stamp() before it was read (jobs.file_stamp)
    total: int = 0
    done: int = 0
    skipped: int = 0
    scanning: bool = True
    error: str = ""
    dropped: set = field(default_factory=set)  # path_keys the user took out of the list while it ran
    discarded: bool = False          # Clear: nothing of this job reaches the rows any more

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        return self.done / max(self.elapsed, 1e-6)

    @property
    def cancelled(self) -> bool:
        return self.job.stop.is_set()

    def progress_text(self) -> str:
        if self.scanning:
            return "scanning…"
        return f"{self.done:,} / {self.total:,} · {self.rate:,.0f} files/s"


@dataclass(frozen=True)
class Counts:
    total: int = 0      # rows (loaded files)
    shown: int = 0      # rows the filters let through
    unsure: int = 0
    errors: int = 0
    skipped: int = 0    # files with a non-image extension, not loaded
    stale: int = 0      # rows still showing another model's answer (a cancelled re-classification)

    def text(self) -> str:
        """``12 of 300 shown · 5 unsure · 2 could not be read · 2 other files skipped``."""
        parts = [f"{self.shown:,} of {self.total:,} shown" if self.shown != self.total else f"{self.total:,} files"]
        if self.unsure:
            parts.append(f"{self.unsure:,} unsure")
        if self.errors:
            parts.append(f"{self.errors:,} could not be read")
        if self.skipped:
            parts.append(f"{self.skipped:,} other file{'s' if self.skipped != 1 else ''} skipped")
        if self.stale:
            parts.append(f"{self.stale:,} from the previous model")
        return " · ".join(parts)


class Session:
    # --- events (psygnal): views observe these ---------------------------------------------------
    models_changed = Signal()            # the model list or its problems changed (reload)
    model_changed = Signal(object)       # ModelInfo | None: another model, or the same name with a new file
    classifier_changed = Signal(object)  # the current model's loaded Classifier (None until the first job)
    speed_measured = Signal(object, float)  # ModelInfo, images/s on this machine
    rows_added = Signal(object)          # list[Result]: new files' rows, in order
    rows_updated = Signal(object)        # list[Result]: new answers for rows already there (same paths)
    rows_removed = Signal(object)        # list[str]: paths taken out of the list
    rows_moved = Signal(object)          # list[(old path, Result at the new path)]: files the app moved; rows stay put
    rows_cleared = Signal()
    filters_changed = Signal()
    counts_changed = Signal(object)      # Counts
    selection_changed = Signal(object)   # Result | None: what the preview shows
    job_changed = Signal(object)         # JobState when one starts, None when it ended
    job_progress = Signal(object)        # JobState
    job_ended = Signal(object)           # JobState: after every job (done, cancelled or failed), once the
                                         # session has acted on it (a queued or restarted job may be running)
    job_failed = Signal(str)             # "Type: message"
    message = Signal(str, int)           # a status-bar line and how long it stays (ms; 0: until replaced)
    note_changed = Signal(str)           # the first screen's note ("No images found in …")

    def __init__(self, runner: Runner | None = None, *, model_dirs: Sequence | None = None, provider: str = "auto",
                 batch_size: int = 128, speed_known: Callable[[ModelInfo], bool] = lambda model: True):
        self.runner = runner
        self.model_dirs = list(model_dirs) if model_dirs is not None else None  # None: cifar10.paths.model_dirs()
        self.provider, self.batch_size = provider, batch_size
        self.speed_known = speed_known
        # models
        self.models: list[ModelInfo] = []
        self.model_errors: list[str] = []
        self.model: ModelInfo | None = None
        self.model_key: ModelKey | None = None
        self._extra_path: str | None = None     # a --model .onnx outside the model folders
        self._disk: dict = {}                    # model folders' files as last loaded (change detection)
        self._disk_seen: dict | None = None      # ... as seen by the last check that found a change
        self.classifiers: dict[ModelKey, object] = {}
        # files and results
        self.sources: list[str] = []             # files and folders as the user gave them
        self.files: list[str] = []               # loaded files, in row order
        self._rows: dict[str, Result] = {}       # path_key -> the result the row shows
        self._row_model: dict[str, ModelKey] = {}  # path_key -> the model file version that made it
        self._row_stamp: dict[str, object] = {}  # path_key -> the file version it was made from (jobs.file_stamp)
        # per model file version: path_key -> (Result, file stamp): a file changed since is classified again
        self._results: dict[ModelKey, dict[str, tuple[Result, object]]] = {}
        self.skipped: dict[str, str] = {}        # path_key -> path: non-image files (by extension) not loaded
        self.queue: list[str] = []               # given while a job ran, or before there was a model
        self.note = ""
        # filters, selection, job
        self.class_filter: str | None = None
        self.text_filter = ""
        self.selection: str | None = None        # path_key of the current row
        self._tally = dict.fromkeys(("shown", "unsure", "errors", "stale"), 0)  # kept as rows change: O(batch)
        self.job: JobState | None = None
        self._restart = False                    # a model switch cancelled the job: classify again when it ends
        self.last_error = ""

    # --- models --------------------------------------------------------------------------------
    def reload_models(self, prefer: str | None = None, remembered: str | None = None) -> None:
        """Rescan the model folders. ``prefer``: a model name or an .onnx path (which may lie outside the
        folders); else the current model's name, else ``remembered`` (the last one used), else the best one.
        A current model whose file changed on disk is loaded again and the rows are re-classified."""
        self.models, self.model_errors = discover_models(self.model_dirs)
        self._disk, self._disk_seen = self._scan_disk(), None
        wanted = prefer or (self.model.name if self.model else None) or remembered
        if prefer and not any(m.name == prefer for m in self.models):
            self._extra_path = prefer
        extra = self._add_extra() if self._extra_path else None
        chosen = ((extra if prefer else None) or next((m for m in self.models if m.name == wanted), None)
                  or best_model(self.models))
        self.models_changed.emit()
        self._set_model(chosen)

    def _add_extra(self) -> ModelInfo | None:
        try:
            extra = find_model(self._extra_path, self.models)
        except ModelError as exc:
            self.model_errors.append(str(exc))
            self._extra_path = None
            return None
        same = next((m for m in self.models if m.onnx_path.resolve() == extra.onnx_path.resolve()), None)
        if same is not None:
            return same
        self.models.insert(0, extra)
        return extra

    def find(self, name: str) -> ModelInfo:
        model = next((m for m in self.models if m.name == name), None)
        if model is None:
            raise KeyError(f"no model named {name!r}")
        return model

    def set_model(self, model: ModelInfo | str) -> None:
        """Use another model (a ModelInfo from ``models``, or its name): the loaded files are classified again
        in place (at once from the results kept for it, when it was used on them before)."""
        self._set_model(self.find(model) if isinstance(model, str) else model)

    def _set_model(self, model: ModelInfo | None) -> None:
        key = model_key(model) if model is not None else None
        if key == self.model_key:
            self.model = model  # the same file version (a reload made a new ModelInfo for it)
            return
        self.model, self.model_key = model, key
        if key is not None:  # a session of an older version of this file is never used again
            for old in [k for k in self.classifiers if k.path == key.path and k != key]:
                del self.classifiers[old]
            for old in [k for k in self._results if k.path == key.path and k != key]:
                del self._results[old]
        if model is not None and self.class_filter not in (None, ERRORS_ONLY, UNSURE_ONLY) and \
                self.class_filter not in model.labels:
            self.class_filter = None
            self.filters_changed.emit()
        self._recount()  # every row is the previous model's answer until re-classified
        self._emit_counts()  # now: a class filter the model lacks went, and the table shows more rows already
        self.model_changed.emit(model)
        self.classifier_changed.emit(self.classifier)
        if model is not None and (self.files or self.queue):
            self._reclassify()

    @property
    def classifier(self):
        """The current model's loaded onnxruntime session (None until a job loaded it)."""
        return self.classifiers.get(self.model_key) if self.model_key is not None else None

    def _scan_disk(self) -> dict:
        """{path: (mtime_ns, size)} of every model and card file in the model folders (and the --model file)."""
        from cifar10.paths import model_dirs

        found: dict = {}
        folders = [Path(d) for d in (self.model_dirs if self.model_dirs is not None else model_dirs())]
        paths: list[Path] = []
        for folder in folders:
            try:
                paths += [folder / name for name in os.listdir(folder) if name.endswith((".onnx", ".json"))]
            except OSError:
                continue
        if self._extra_path:
            extra = Path(self._extra_path)
            paths += [extra, extra.with_suffix(".json")]
        for path in paths:
            try:
                st = os.stat(path)
                found[str(path)] = (st.st_mtime_ns, st.st_size)
            except OSError:
                pass
        return found

    def check_model_files(self, *, wait_stable: bool = True) -> bool:
        """Reload the models when a model file was added, removed or changed on disk (re-trained under the same
        name, copied over). With ``wait_stable`` a change is acted on only once two checks in a row saw the
        same files (a model being written is not loaded half-way). Returns True when it reloaded."""
        disk = self._scan_disk()
        if disk == self._disk:
            self._disk_seen = None
            return False
        if wait_stable and disk != self._disk_seen:
            self._disk_seen = disk
            return False
        self.reload_models()
        return True

    # --- files ---------------------------------------------------------------------------------
    def add_paths(self, paths) -> None:
        """Classify files and/or folders (recursively) with the current model."""
        paths = [os.fspath(p) for p in paths if os.fspath(p)]
        if not paths:
            return
        self.sources.extend(p for p in paths if p not in self.sources)
        self._set_note("")
        if self.model is None or self.busy:
            self.queue.extend(paths)  # classified when the running job ends / when a model appears
            if self.model is None:
                self.message.emit("No model to classify with: add one to the models folder, then Models ▸ Reload "
                                  "Models", 0)
            return
        self._start(paths, in_place=False)

    def remove(self, paths) -> None:
        """Take rows out of the list (the files stay on disk): a model switch does not bring them back."""
        keys = {path_key(p) for p in paths}
        removed = [p for p in self.files if path_key(p) in keys]
        if not removed:
            return
        self.files = [p for p in self.files if path_key(p) not in keys]
        if self.job is not None:  # its results for these files, on their way or still to come, are dropped
            self.job.dropped |= {path_key(p) for p in removed}
        for key in keys:
            if key in self._rows:
                self._account(self._rows.pop(key), self._row_model.pop(key, None), -1)
                self._row_stamp.pop(key, None)
            for results in self._results.values():
                results.pop(key, None)
        self.rows_removed.emit(removed)
        if self.selection in keys:
            self.select(None)
        self._emit_counts()

    def follow_moves(self, pairs) -> None:
        """Files the app itself moved (Sort into Class Folders in move mode, its Undo): ``pairs`` of (old path,
        new path). A row follows its file and keeps its answer (the same bytes), its place and the selection; a
        file the running job had still to read is read at its new place. A moved file without a row (removed
        from the list, or never added) gets none."""
        job, moved, pending = self.job, [], []
        live = job is not None and not job.discarded
        waiting = set(map(path_key, job.files)) - job.dropped if live else set()  # the running job's files
        for src, dst in pairs:
            old, new = path_key(src), path_key(dst)
            result = self._rows.pop(old, None)
            if result is None and live and (old in waiting or job.scanning and old not in job.dropped):
                pending.append(dst)  # to be read at its new place (while the job scans, any file may be its)
            if job is not None:
                job.dropped.add(old)  # its answer for the old path, still to come, is not shown
            if result is None:
                continue
            model, stamp = self._row_model.pop(old), self._row_stamp.pop(old, None)
            for results in self._results.values():
                if old in results:
                    kept, kept_stamp = results.pop(old)
                    results[new] = dataclasses.replace(kept, path=dst), kept_stamp
            row = dataclasses.replace(result, path=dst)
            self._account(result, model, -1)
            self._rows[new], self._row_model[new] = row, model
            if job is not None and model != job.key:
                pending.append(dst)  # an answer of the previous model the running job will not reach now
            else:
                self._row_stamp[new] = stamp
            self._account(row, model, 1)
            moved.append((src, row))
            if self.selection == old:
                self.selection = new
        if moved:
            index = {path_key(src): row.path for src, row in moved}
            self.files = [index.get(path_key(p), p) for p in self.files]
            self.sources = [index.get(path_key(p), p) for p in self.sources]
            self.rows_moved.emit(moved)
            if self.selection in {path_key(row.path) for _, row in moved}:
                self.selection_changed.emit(self.selected_result())
            self._emit_counts()
        if pending:
            self.queue.extend(pending)

    def clear(self) -> None:
        """Forget every file, result and filter (the models stay)."""
        if self.job is not None:  # batches already on their way to the GUI thread must not bring rows back
            self.job.discarded = True
        self.cancel()
        self.sources, self.files, self.queue = [], [], []
        self._rows, self._row_model, self._row_stamp, self._results, self.skipped = {}, {}, {}, {}, {}
        self._tally = dict.fromkeys(self._tally, 0)
        self._restart = False
        self.rows_cleared.emit()
        if self.class_filter is not None or self.text_filter:
            self.class_filter, self.text_filter = None, ""
            self._recount()
            self.filters_changed.emit()
        self._set_note("")
        self.select(None)
        self._emit_counts()

    def rows(self) -> list[Result]:
        """The rows in input order (unfiltered)."""
        return [self._rows[path_key(p)] for p in self.files]

    def result(self, path: str) -> Result | None:
        return self._rows.get(path_key(path))

    def results_for(self, model: ModelInfo) -> dict[str, Result]:
        """The results kept for this model file version (path_key -> Result)."""
        return {k: result for k, (result, _) in self._results.get(model_key(model), {}).items()}

    def _set_note(self, text: str) -> None:
        if text != self.note:
            self.note = text
            self.note_changed.emit(text)

    # --- filters, counts, selection ------------------------------------------------------------
    def set_class_filter(self, label: str | None) -> None:
        """None: every row; ERRORS_ONLY / UNSURE_ONLY; else rows whose most likely class is ``label``."""
        label = label or None
        if label != self.class_filter:
            self.class_filter = label
            self._recount()
            self.filters_changed.emit()
            self._emit_counts()

    def set_text_filter(self, text: str) -> None:
        text = text.strip().lower()
        if text != self.text_filter:
            self.text_filter = text
            self._recount()
            self.filters_changed.emit()
            self._emit_counts()

    @property
    def filtering(self) -> bool:
        return self.class_filter is not None or bool(self.text_filter)

    def accepts(self, result: Result) -> bool:
        """Whether the filters let this row through (the table's proxy asks the same)."""
        label = self.class_filter
        if label == ERRORS_ONLY:
            if not result.error:
                return False
        elif label == UNSURE_ONLY:
            if not result.unsure:
                return False
        elif label is not None and result.label != label:
            return False
        return not self.text_filter or self.text_filter in result.path.lower()

    def counts(self) -> Counts:
        t = self._tally
        return Counts(total=len(self._rows), shown=t["shown"], unsure=t["unsure"], errors=t["errors"],
                      skipped=len(self.skipped), stale=t["stale"] if self.model_key is not None else 0)

    def _account(self, result: Result, key: ModelKey | None, sign: int) -> None:
        """Add (sign 1) or take out (-1) one row's share of the counts."""
        t = self._tally
        t["shown"] += sign * self.accepts(result)
        t["unsure"] += sign * bool(result.unsure)
        t["errors"] += sign * bool(result.error)
        t["stale"] += sign * (key != self.model_key)

    def _recount(self) -> None:
        """Count every row again (after a filter or model change: O(rows) once, not per batch)."""
        self._tally = dict.fromkeys(self._tally, 0)
        for k, result in self._rows.items():
            self._account(result, self._row_model.get(k), 1)

    def _emit_counts(self) -> None:
        self.counts_changed.emit(self.counts())

    def select(self, path: str | None) -> None:
        """The current row (None: none); the preview shows its result."""
        key = path_key(path) if path else None
        if key != self.selection:
            self.selection = key
        self.selection_changed.emit(self.selected_result())

    def selected_result(self) -> Result | None:
        return self._rows.get(self.selection) if self.selection else None

    # --- jobs ----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job is not None

    def _start(self, paths: list[str], *, in_place: bool, known: dict | None = None) -> None:
        """``known``: path_key -> file stamp of the answers already shown (default: every row, and the files
        skipped): those files are read again only if they changed on disk."""
        model, key = self.model, self.model_key
        if known is None:
            known = {**dict.fromkeys(self.skipped), **self._row_stamp}
        job = Job(paths=list(paths), model=model, provider=self.provider, known=known,
                  classifier=self.classifiers.get(key), batch_size=self.batch_size,
                  measure_speed=not self.speed_known(model))
        self.job = JobState(job, key, in_place)
        self.job_changed.emit(self.job)
        self.runner.start(job)

    def _reclassify(self) -> None:
        """Classify everything loaded again with the current model, in place (rows, selection, scroll stay).
        Results kept for this model file version are shown at once; the job then reads only the other files and
        those changed on disk since (replaced, edited, deleted)."""
        if self.busy:
            self._restart = True
            self.job.job.stop.set()
            self.runner.cancel()
            return
        kept = self._results.get(self.model_key, {})
        shown = [kept[k] for k in map(path_key, self.files) if k in kept]
        if shown:
            self._store(self.model_key, [result for result, _ in shown], {r.path: stamp for r, stamp in shown})
        paths, self.queue = self.files + self.queue, []
        if paths:
            self._start(paths, in_place=True, known={k: stamp for k, (_, stamp) in kept.items()})
        else:
            self._emit_counts()

    def cancel(self) -> None:
        """Stop the running job after the batch being decoded; rows already classified stay."""
        if self.job is not None:
            self.queue.clear()
            self._restart = False
            self.job.job.stop.set()
            self.runner.cancel()
            self.message.emit("cancelling…", 0)

    def on_job_message(self, job: Job, kind: str, payload) -> None:
        state = self.job
        if state is None or job is not state.job:
            return  # a job that was replaced: nothing of it reaches the window
        if state.discarded and kind != "classifier":
            return  # the list was cleared while it ran
        if kind == "classifier":
            self.classifiers[state.key] = payload
            if state.key == self.model_key:
                self.classifier_changed.emit(payload)
        elif kind == "speed":
            model, speed = payload
            self.speed_measured.emit(model, float(speed))
        elif kind == "files":
            files, skipped, state.stamps = payload
            for path in skipped:
                self.skipped.setdefault(path_key(path), path)
            state.files, state.total, state.skipped, state.scanning = list(files), len(files), len(skipped), False
            if not files and not state.in_place:
                where = ", ".join(os.path.basename(p.rstrip("/\\")) or p for p in job.paths[:3])
                more = f" ({len(skipped):,} other file{'s' if len(skipped) != 1 else ''} skipped)" if skipped else ""
                self._set_note(f"No images found in {where}{more}")
                self.message.emit(f"No images found in {where}{more}", 10000)
            self.job_progress.emit(state)
            if skipped:
                self._emit_counts()
        elif kind == "batch":
            self._store(state.key, [r for r in payload if path_key(r.path) not in state.dropped], state.stamps)
            state.done += len(payload)
            self.job_progress.emit(state)

    def _store(self, key: ModelKey, batch: list[Result], stamps: dict) -> None:
        """Keep a batch's results for their model file version, with the file versions they were made from
        (``stamps``: path -> jobs.file_stamp); if that is the current model, they are what the rows show."""
        kept = self._results.setdefault(key, {})
        for result in batch:
            kept[path_key(result.path)] = result, stamps.get(result.path)
        while len(self._results) > CACHED_MODELS:  # the oldest other model's results go first
            oldest = next(k for k in self._results if k != key and k != self.model_key)
            del self._results[oldest]
        if key != self.model_key:
            return  # a cancelled job of the previous model: kept for a switch back, not shown
        added, updated = [], []
        for result in batch:
            k = path_key(result.path)
            old = self._rows.get(k)
            if old is None:
                self.files.append(result.path)
                added.append(result)
            else:
                if result.image is None:
                    result.image = old.image
                updated.append(result)
                self._account(old, self._row_model.get(k), -1)
            self._rows[k] = result
            self._row_model[k] = key
            self._row_stamp[k] = stamps.get(result.path)
            self._account(result, key, 1)
        if added:
            self.rows_added.emit(added)
        if updated:
            self.rows_updated.emit(updated)
            if self.selection is not None and any(path_key(r.path) == self.selection for r in updated):
                self.selection_changed.emit(self.selected_result())
        self._emit_counts()

    def on_job_finished(self, job: Job, error: str | None = None) -> None:
        state = self.job
        if state is None or job is not state.job:
            return
        self.job = None
        if error:
            state.error = self.last_error = error
            self.message.emit(f"Classification failed: {error}", 0)
            self.job_failed.emit(error)
        self.job_changed.emit(None)
        if self._restart:
            self._restart = False
            # Files found by the cancelled job but not classified yet are loaded too.
            done = set(self._rows) | state.dropped
            self.queue = [p for p in state.files if path_key(p) not in done] + self.queue
            self._reclassify()
        else:
            if state.discarded:
                self.message.emit("", 0)  # cleared: "cancelling…" goes, the empty list says the rest
            elif state.cancelled:
                text = f"Cancelled: {state.done:,} of {state.total:,} files classified"
                if state.in_place and state.done < state.total:
                    text += "; the other rows still show the previous model's answers"
                self.message.emit(text, 10000)
            elif not error and (state.done or not state.in_place):  # (a switch back that found every file
                # unchanged: nothing to say) the skipped files are counted in the status bar's counts, beside this
                self.message.emit(f"Classified {state.done:,} file{'s' if state.done != 1 else ''} in "
                                  f"{state.elapsed:.1f} s ({state.rate:,.0f} files/s) with {job.model.name}", 10000)
            if self.queue and self.model is not None:  # given while it ran (a cancel emptied the queue: given since)
                queued, self.queue = self.queue, []
                self._start(queued, in_place=False)
        self._emit_counts()
        self.job_ended.emit(state)


class InlineRunner:
    """Runs a job's generator in the calling thread (plain-Python tests and scripts). ``start`` only takes the
    job; ``step(n)`` delivers its next ``n`` messages and ``run()`` all of them, so a test can act between
    batches as a user would between two table updates."""

    def __init__(self, session: Session | None = None):
        self.session = session
        self._job: Job | None = None
        self._messages = None

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, job: Job) -> None:
        from desktop_app.jobs import run_job

        if self._job is not None:
            raise RuntimeError("a job is already running")
        self._job, self._messages = job, run_job(job)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.stop.set()

    def step(self, n: int = 1) -> bool:
        """Deliver up to ``n`` messages; False once no job is left."""
        for _ in range(n):
            job = self._job
            if job is None:
                return False
            error = None
            try:
                kind, payload = next(self._messages)
            except StopIteration:
                kind = None
            except Exception as exc:  # noqa: BLE001 - reported as the job's error, as the Qt runner does
                kind, error = None, f"{type(exc).__name__}: {exc}"
            if kind is None:
                self._job, self._messages = None, None
                self.session.on_job_finished(job, error)
                continue
            self.session.on_job_message(job, kind, payload)
        return self._job is not None

    def run(self, limit: int = 100_000) -> None:
        """Deliver messages until no job is left (queued and restarted jobs included)."""
        for _ in range(limit):
            if not self.step():
                return
