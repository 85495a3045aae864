"""Sort images into ``DST/<class>/`` folders, copying or moving them, with a journal that makes it undoable.

The core of ``cifar10 organize`` and of the desktop app's File > Sort into Class Folders...::

    plan = plan_organize(classifier, ["photos/"], "sorted/", mode="move", min_confidence=0.5)
    report = execute(plan)          # or just look at plan.steps (the app's preview, --dry-run)
    undo("sorted/")                 # puts everything back

Rules
-----
* Every readable image goes to ``DST/<label>/``; one whose confidence is below ``min_confidence``, or
  that the model flags as unsure (its open-set threshold, :func:`cifar10.evaluation.is_unsure`), goes
  to ``DST/_unsure/``. A file that cannot be read is not copied (copy) or stays where it is (move), and is
  listed. Files already inside ``DST/<class>/`` or ``DST/_unsure/`` are never picked up again.
* Nothing is overwritten: a name already taken in the target folder gets a suffix (``cat (2).jpg``).
* The journal ``DST/.cifar10-organize.jsonl`` gets a line, flushed and fsynced, *before* each step
  (``begin``: source, destination) and after it (``done``: size and sha256 of what was written); a
  folder the run creates is journalled before it is created. Steps are committed in groups of
  :data:`GROUP`: one fsync for the group's ``begin`` lines before any of its files is touched, one for
  its folders and one for its ``done`` lines after (one fsync per line made 10,000 files take minutes).
* A copy is written to a hidden temporary file next to its destination, fsynced, read back and compared
  (sha256) with the source, then renamed into place: a destination name never holds half a file.
  A move within one file system is one ``rename``; across file systems it is that copy, then the
  source is removed only once the copy is verified.
* Killed half-way (kill -9, power cut): running the same command again first finishes the step that was
  under way (:func:`recover`), then goes on; files the journal shows as already copied are not copied
  again. :func:`undo` reverses every journalled step, newest first, including a half-done one, removes
  the folders the runs created, and (when the whole journal was undone) the journal itself. A copy that
  was changed after it was made is not deleted by undo; it is reported instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from cifar10.contract import CLASS_NAMES
from cifar10.evaluation import is_unsure
from cifar10.inference import Classifier, Result, classify_files, iter_image_files
from cifar10.options import ORGANIZE_MODES

JOURNAL_NAME = ".cifar10-organize.jsonl"
UNSURE_DIR = "_unsure"
PART_SUFFIX = ".cifar10-part"
JOURNAL_VERSION = 1
# Held (an OS file lock) while a run or an undo works on DST, so two of them never interleave their steps in
# one journal. The OS drops the lock when its process ends, even by kill -9: a killed run never blocks the next.
LOCK_NAME = ".cifar10-organize.lock"
MODES = ORGANIZE_MODES
GROUP = 32  # steps per group commit of the journal (one fsync for their begin lines, one for their done lines)
_CHUNK = 1 << 20


class OrganizeError(RuntimeError):
    """The journal or the destination is not usable; the message says what to do."""


# --- small durable file-system helpers -------------------------------------------------------------------

def _fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename/create in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (hidden ones too), folders as ``"DIR"``: two equal
    digests mean two byte-identical trees (how the tests and the benchmark check that ``--undo`` restored one)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "DIR"
        for f in filenames:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = sha256_of(path)
    return out


def _copy_verified(src: str, dst: str, *, sync_dir: bool = True) -> tuple[int, str]:
    """Copy ``src`` to a temporary file beside ``dst``, fsync, re-read and compare, rename to ``dst``.

    Never overwrites: raises FileExistsError if ``dst`` appeared meanwhile. Returns (size, sha256).
    """
    part = _part_path(dst)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(part, "xb") as fout:
            while chunk := fin.read(_CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        try:
            shutil.copystat(src, part)  # keep the modification time (photo tools sort by it)
        except OSError:
            pass
        if sha256_of(part) != digest.hexdigest():
            raise OSError(f"the copy of {src} does not read back identical; nothing was changed")
        if os.path.lexists(dst):
            raise FileExistsError(dst)
        os.replace(part, dst)
    except BaseException:
        try:
            os.unlink(part)
        except OSError:
            pass
        raise
    if sync_dir:
        _fsync_dir(os.path.dirname(dst))
    return size, digest.hexdigest()


def _part_path(dst: str) -> str:
    head, tail = os.path.split(dst)
    return os.path.join(head, f".{tail}{PART_SUFFIX}")


def _same_file_system(src: str, dst_dir: str) -> bool:
    try:
        return os.stat(src).st_dev == os.stat(dst_dir).st_dev
    except OSError:
        return False


def _move(src: str, dst: str, *, force_copy: bool = False, sync_dirs: bool = True) -> tuple[int, str | None]:
    """Move ``src`` to ``dst`` without overwriting; across file systems copy, verify, then remove the source.

    ``sync_dirs=False``: the caller fsyncs both folders later (a group commit); a verified cross-device copy
    is always made durable before its source is removed."""
    if os.path.lexists(dst):
        raise FileExistsError(dst)
    if not force_copy and _same_file_system(src, os.path.dirname(dst)):
        size = os.stat(src).st_size
        os.rename(src, dst)
        if sync_dirs:
            _fsync_dir(os.path.dirname(dst))
            _fsync_dir(os.path.dirname(src))
        return size, None
    size, digest = _copy_verified(src, dst)
    os.unlink(src)
    _fsync_dir(os.path.dirname(src))
    return size, digest


def free_name(folder: str, name: str, taken: set[str] | None = None) -> str:
    """``name`` if nothing in ``folder`` (on disk or in ``taken``, lower-cased) has it, else ``stem (2).ext``…"""
    taken = taken if taken is not None else set()
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.lower() in taken or os.path.lexists(os.path.join(folder, candidate)):
        n += 1
        candidate = f"{stem} ({n}){ext}"
    return candidate


# --- the journal ---------------------------------------------------------------------------------------------

class _DestinationLock:
    """An exclusive, non-blocking lock on ``DST/.cifar10-organize.lock`` (fcntl.flock; msvcrt on Windows)."""

    def __init__(self, dst_root: str | os.PathLike):
        self.path = Path(dst_root) / LOCK_NAME
        self._file = open(self.path, "a+b")
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise OrganizeError(f"another `cifar10 organize` (or its --undo) is working on {dst_root} right now: "
                                "wait for it to finish, then run this again") from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None


class Journal:
    """Append-only JSON lines in ``DST/.cifar10-organize.jsonl``; every line is fsynced before it counts.
    Holds DST's lock (:data:`LOCK_NAME`) from creation to :meth:`close`."""

    def __init__(self, dst_root: str | os.PathLike):
        self.path = Path(dst_root) / JOURNAL_NAME
        self._file = None
        self._lock = _DestinationLock(dst_root)

    def write(self, record: dict) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict]) -> None:
        """Append the records and fsync once (a group commit): all of them count, or (crash) a prefix."""
        if not records:
            return
        if self._file is None:
            new = not self.path.exists()
            self._file = open(self.path, "a", encoding="utf-8")
            if new:
                _fsync_dir(self.path.parent)
        self._file.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._lock.release()

    def records(self) -> list[dict]:
        return read_journal(self.path.parent)


def read_journal(dst_root: str | os.PathLike) -> list[dict]:
    """Every complete line of the journal (a line cut off by a crash is ignored: it was never acted on)."""
    path = Path(dst_root) / JOURNAL_NAME
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the last line was being written when the process died
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise OrganizeError(f"{path}: line {len(records) + 1} is not a journal record; "
                                    "the journal was edited or damaged, so nothing was changed") from None
    return records


@dataclass
class StepState:
    """One journalled step with what is known about it: begun, done, undone."""

    begin: dict
    done: dict | None = None
    undone: bool = False


def journal_steps(records: list[dict]) -> tuple[dict[str, StepState], list[dict]]:
    """Steps by id (in journal order) and the ``mkdir`` records."""
    steps: dict[str, StepState] = {}
    mkdirs: list[dict] = []
    for record in records:
        op = record.get("op")
        if op == "begin":
            steps[record["id"]] = StepState(record)
        elif op == "done" and record.get("id") in steps:
            steps[record["id"]].done = record
        elif op == "undone" and record.get("id") in steps:
            steps[record["id"]].undone = True
        elif op == "mkdir":
            mkdirs.append(record)
    return steps, mkdirs


# --- plan ------------------------------------------------------------------------------------------------------

@dataclass
class Step:
    src: str
    folder: str          # class name or UNSURE_DIR
    name: str            # file name in that folder (suffixed on a clash)
    label: str
    confidence: float
    reason: str = ""     # why it goes to _unsure ("" otherwise)

    def dst(self, dst_root: str) -> str:
        return os.path.join(dst_root, self.folder, self.name)


@dataclass
class Plan:
    dst_root: str
    mode: str
    model: str
    min_confidence: float
    sources: list[str]
    steps: list[Step] = field(default_factory=list)
    unreadable: list[Result] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)   # copy: the journal shows them copied already
    pending: int = 0                                         # half-done steps of a killed run (see recover)
    cancelled: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for step in self.steps:
            out[step.folder] = out.get(step.folder, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == UNSURE_DIR, kv[0])))


_UNSAFE_IN_NAMES = '<>:"/\\|?*'


def class_folder_name(label: str) -> str:
    """The folder a class's images go to: its label, with characters no file system allows in a name replaced
    by "_" (a display name may hold "/" or ":")."""
    name = "".join("_" if ch in _UNSAFE_IN_NAMES or ord(ch) < 32 else ch for ch in label).strip().rstrip(".")
    return name if name and name not in (".", "..") else "_"


def _inside_sorted_folders(path: str, dst_real: str, classes=CLASS_NAMES) -> bool:
    """True for files already in DST/<class>/ or DST/_unsure/ (never organised again)."""
    try:
        rel = os.path.relpath(os.path.realpath(path), dst_real)
    except ValueError:  # another drive on Windows
        return False
    if rel.startswith(os.pardir):
        return False
    first = rel.split(os.sep, 1)[0]
    return first in {class_folder_name(c) for c in classes} or first == UNSURE_DIR or first == JOURNAL_NAME


def destination_folder(result: Result, min_confidence: float) -> tuple[str, str]:
    """(folder, reason): the class folder, or UNSURE_DIR and why (low confidence, or the model's unsure flag)."""
    if is_unsure(result):
        return UNSURE_DIR, "the model is unsure (open-set threshold)"
    if result.confidence < min_confidence:
        return UNSURE_DIR, f"confidence {result.confidence:.0%} < {min_confidence:.0%}"
    return class_folder_name(result.label), ""


def plan_organize(classifier: Classifier, sources: Iterable[str | os.PathLike], dst_root: str | os.PathLike, *,
                  mode: str = "copy", min_confidence: float = 0.5, batch_size: int = 256,
                  on_progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Plan:
    """Classify the sources and decide where each file goes; touches nothing."""
    if mode not in MODES:
        raise ValueError(f"mode must be copy or move, not {mode!r}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError("min_confidence must be between 0 and 1")
    dst_root = os.path.abspath(dst_root)
    if os.path.exists(dst_root) and not os.path.isdir(dst_root):
        raise OrganizeError(f"{dst_root} exists and is not a folder")
    sources = [os.path.abspath(s) for s in sources]
    plan = Plan(dst_root, mode, classifier.model.name, min_confidence, sources)
    steps, _ = journal_steps(read_journal(dst_root))
    pending = {os.path.normcase(s.begin["src"]) for s in steps.values() if s.done is None and not s.undone}
    plan.pending = len(pending)  # finished by execute() first (recover), so not planned again
    done_copies = {os.path.normcase(s.begin["src"]) for s in steps.values()
                   if s.done is not None and not s.undone and s.begin.get("mode") == "copy"
                   and os.path.lexists(s.begin["dst"])}
    dst_real = os.path.realpath(dst_root)
    files = []
    for path in iter_image_files(sources):
        if _inside_sorted_folders(path, dst_real, classifier.labels):
            continue
        key = os.path.normcase(os.path.abspath(path))
        if key in pending:
            continue
        if mode == "copy" and key in done_copies:
            plan.already_done.append(path)
            continue
        files.append(path)
    taken: dict[str, set[str]] = {}
    seen = 0
    for result in classify_files(classifier, files, batch_size=batch_size, on_progress=on_progress,
                                 should_stop=should_stop):
        seen += 1
        if result.error:
            plan.unreadable.append(result)
            continue
        folder, reason = destination_folder(result, min_confidence)
        names = taken.setdefault(folder, set())
        name = free_name(os.path.join(dst_root, folder), os.path.basename(result.path), names)
        names.add(name.lower())
        plan.steps.append(Step(result.path, folder, name, result.label, float(result.confidence), reason))
    plan.cancelled = seen < len(files)
    return plan


# --- execute, recover, undo --------------------------------------------------------------------------------------

@dataclass
class Report:
    done: list[tuple[str, str]] = field(default_factory=list)      # (source, destination)
    problems: list[str] = field(default_factory=list)              # a sentence per file left alone
    recovered: int = 0
    cancelled: bool = False


def _ensure_folder(folder: str, journal: Journal, run_id: str) -> None:
    if os.path.isdir(folder):
        return
    journal.write({"op": "mkdir", "run": run_id, "path": folder})
    os.makedirs(folder, exist_ok=True)
    _fsync_dir(os.path.dirname(folder))


def _do_group(journal: Journal, run_id: str, plan: Plan, start: int, report: Report, *, force_copy: bool) -> None:
    """Steps ``start`` .. ``start + GROUP`` as one group commit: their ``begin`` lines are fsynced together
    before any of them is done, the files are copied/moved, the folders touched are fsynced, then the
    ``done`` lines are fsynced together. A crash anywhere leaves begun-not-done steps, which recover() and
    undo() handle one by one whatever state each is in (see the module docstring)."""
    begun, records = [], []
    claimed: set[str] = set()
    for index in range(start, min(start + GROUP, len(plan.steps))):
        step = plan.steps[index]
        src = step.src
        if not os.path.lexists(src):
            report.problems.append(f"{src}: gone since it was classified; skipped")
            continue
        folder = os.path.join(plan.dst_root, step.folder)
        try:
            _ensure_folder(folder, journal, run_id)
            name = step.name
            if os.path.lexists(os.path.join(folder, name)) or name.lower() in claimed:  # appeared since the plan
                name = free_name(folder, name, claimed)
            claimed.add(name.lower())
            stat = os.stat(src)
        except OSError as exc:
            report.problems.append(f"{src}: {exc.strerror or exc}; left where it is")
            continue
        dst = os.path.join(folder, name)
        step_id = f"{run_id}-{index}"
        records.append({"op": "begin", "run": run_id, "id": step_id, "mode": plan.mode, "src": src, "dst": dst,
                        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        begun.append((step_id, src, dst))
    journal.write_many(records)
    touched: set[str] = set()
    done = []
    for step_id, src, dst in begun:
        try:
            if plan.mode == "copy":
                size, digest = _copy_verified(src, dst, sync_dir=False)
            else:
                size, digest = _move(src, dst, force_copy=force_copy, sync_dirs=False)
                digest = digest or sha256_of(dst)
                touched.add(os.path.dirname(src))
        except OSError as exc:
            # Left as begun: the next run or undo looks at what is on disk and finishes or reverses it.
            report.problems.append(f"{src}: {exc.strerror or exc}; left where it is")
            continue
        touched.add(os.path.dirname(dst))
        done.append({"op": "done", "id": step_id, "size": size, "sha256": digest})
        report.done.append((src, dst))
    for folder in sorted(touched):
        _fsync_dir(folder)
    journal.write_many(done)


def execute(plan: Plan, *, on_progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, force_copy: bool = False) -> Report:
    """Carry out ``plan`` step by step under the journal (first finishing a killed run's half-done step).

    ``force_copy`` makes moves take the cross-file-system path (copy, verify, remove) even on one file system.
    """
    report = Report()
    created = not os.path.exists(plan.dst_root)
    os.makedirs(plan.dst_root, exist_ok=True)
    journal = Journal(plan.dst_root)
    try:
        report.recovered = _recover(journal, report, force_copy=force_copy)
        run_id = uuid.uuid4().hex[:12]
        journal.write({"op": "run", "run": run_id, "version": JOURNAL_VERSION, "mode": plan.mode,
                       "model": plan.model, "min_confidence": plan.min_confidence, "sources": plan.sources,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": len(plan.steps),
                       "created_dst": created})
        total = len(plan.steps)
        if on_progress is not None:
            on_progress(0, total)
        for start in range(0, total, GROUP):
            if should_stop is not None and should_stop():
                report.cancelled = True
                break
            _do_group(journal, run_id, plan, start, report, force_copy=force_copy)
            if on_progress is not None:
                on_progress(min(start + GROUP, total), total)
        journal.write({"op": "end", "run": run_id, "done": len(report.done), "cancelled": report.cancelled})
    finally:
        journal.close()
    return report


def recover(dst_root: str | os.PathLike, *, force_copy: bool = False) -> Report:
    """Finish the half-done step(s) a killed run left in the journal (rolled forward, never lost)."""
    report = Report()
    journal = Journal(dst_root)
    try:
        report.recovered = _recover(journal, report, force_copy=force_copy)
    finally:
        journal.close()
    return report


def _recover(journal: Journal, report: Report, *, force_copy: bool = False) -> int:
    steps, _ = journal_steps(journal.records())
    count = 0
    for step_id, state in steps.items():
        if state.done is not None or state.undone:
            continue
        begin = state.begin
        src, dst, mode = begin["src"], begin["dst"], begin["mode"]
        part = _part_path(dst)
        if os.path.lexists(part):
            os.unlink(part)  # an unfinished copy: never renamed into place, so nothing refers to it
        src_there, dst_there = os.path.lexists(src), os.path.lexists(dst)
        try:
            if dst_there and src_there and mode == "move":
                if sha256_of(src) != sha256_of(dst):
                    report.problems.append(f"{src}: the journal's move to {dst} was interrupted and both now "
                                           "differ; both kept")
                    continue
                os.unlink(src)  # the verified copy was in place; only removing the source was left
                _fsync_dir(os.path.dirname(src))
            elif not dst_there and src_there:
                dst = _redo(mode, src, dst, force_copy)
            elif not dst_there and not src_there:
                report.problems.append(f"{src}: neither it nor {dst} exists (removed by someone else?)")
                continue
            journal.write({"op": "done", "id": step_id, "size": os.stat(dst).st_size, "sha256": sha256_of(dst),
                           "recovered": True})
        except OSError as exc:
            report.problems.append(f"{src}: could not finish the interrupted step ({exc.strerror or exc})")
            continue
        count += 1
        report.done.append((src, dst))
    return count


def _redo(mode: str, src: str, dst: str, force_copy: bool) -> str:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if mode == "copy":
        _copy_verified(src, dst)
    else:
        _move(src, dst, force_copy=force_copy)
    return dst


@dataclass
class UndoReport:
    restored: int = 0
    problems: list[str] = field(default_factory=list)
    journal_removed: bool = False


def undo(dst_root: str | os.PathLike, *, on_progress: Callable[[int, int], None] | None = None) -> UndoReport:
    """Reverse every step in DST's journal, newest first; safe to run again after being killed itself."""
    dst_root = os.path.abspath(dst_root)
    journal_path = Path(dst_root) / JOURNAL_NAME
    if not journal_path.exists():
        raise OrganizeError(f"{dst_root} has no {JOURNAL_NAME}: nothing organised there to undo")
    report = UndoReport()
    journal = Journal(dst_root)
    try:
        records = journal.records()
        created_dst = any(r.get("op") == "run" and r.get("created_dst") for r in records)
        steps, mkdirs = journal_steps(records)
        todo = [(step_id, state) for step_id, state in steps.items() if not state.undone]
        total = len(todo)
        for count, (step_id, state) in enumerate(reversed(todo), 1):
            problem = _undo_step(state)
            if problem:
                report.problems.append(problem)
            else:
                journal.write({"op": "undone", "id": step_id})
                report.restored += 1
            if on_progress is not None:
                on_progress(count, total)
        for record in reversed(mkdirs):
            try:
                os.rmdir(record["path"])  # only if empty: a folder with the user's own files stays
            except OSError:
                pass
    finally:
        journal.close()
    if not report.problems:
        journal_path.unlink()
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(dst_root, LOCK_NAME))
        _fsync_dir(dst_root)
        report.journal_removed = True
        if created_dst:
            try:
                os.rmdir(dst_root)  # organize created it; only if nothing else was put there since
            except OSError:
                pass
    return report


def _undo_step(state: StepState) -> str | None:
    begin = state.begin
    src, dst, mode = begin["src"], begin["dst"], begin["mode"]
    part = _part_path(dst)
    try:
        if os.path.lexists(part):
            os.unlink(part)
        dst_there, src_there = os.path.lexists(dst), os.path.lexists(src)
        if not dst_there:
            if src_there or state.done is None:
                return None  # never happened (killed before the rename), or already put back
            return f"{dst}: missing, so {src} cannot be put back (was it deleted or moved?)"
        expected = state.done["sha256"] if state.done is not None else None
        if mode == "copy" or src_there:
            # The source is (still / again) in place: the destination is a copy to remove, if it is ours.
            reference = expected or (sha256_of(src) if src_there else None)
            if reference is not None and sha256_of(dst) != reference:
                return f"{dst}: changed since it was organised; kept (delete it yourself if you do not need it)"
            os.unlink(dst)
            _fsync_dir(os.path.dirname(dst))
            return None
        if expected is not None and sha256_of(dst) != expected:
            return f"{dst}: changed since it was moved; not moved back to {src}"
        os.makedirs(os.path.dirname(src), exist_ok=True)
        _move(dst, src)
        return None
    except OSError as exc:
        return f"{dst}: could not be undone ({exc.strerror or exc})"
