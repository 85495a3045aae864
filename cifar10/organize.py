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
  Symbolic links: a copy copies the bytes of the file a link points to; a move leaves links where they are
  (moving a relative link would break it) and lists them (``plan.skipped``).
* Nothing is overwritten: a name already taken in the target folder gets a suffix (``cat (2).jpg``).
* The journal ``DST/.cifar10-organize.jsonl`` gets a line, flushed and fsynced, *before* each step
  (``begin``: source, destination) and after it (``done``: size and sha256 of what was written); a
  folder the run creates is journalled before it is created. Steps are committed in groups of
  :data:`GROUP`: one fsync for the group's ``begin`` lines before any of its files is touched, one for
  its folders and one for its ``done`` lines after (one fsync per line made 10,000 files take minutes).
  Lines are ASCII JSON (``ensure_ascii``), so any file name, UTF-8 or not, round-trips. A line cut off by a
  crash or a full disk is cut away before the next line is appended; a write that fails is undone
  (truncated) and ends the run with an :class:`OrganizeError`.
* A copy is written to a hidden temporary file next to its destination (``.<16 hex>.cifar10-part``, short
  whatever the name's length, derived from it), fsynced, read back and compared (sha256) with the source,
  then renamed into place: a destination name never holds half a file. A move within one file system is
  one ``rename``; across file systems it is that copy, then the source is removed only once the copy is
  verified.
* Killed half-way (kill -9, power cut): running the same command again first finishes the step that was
  under way (:func:`recover`), then goes on; files the journal shows as already copied are not copied
  again. :func:`undo` reverses the journalled steps, newest first, including a half-done one, removes
  the folders the runs created, and (when the whole journal was undone) the journal itself.

Undo never destroys the last copy
---------------------------------
A copy in DST is deleted only while its source still holds the same bytes; a moved file goes back only to a
free source path (or is deleted when that path holds the very same bytes). Otherwise the file stays in DST
and is reported ("kept: ..."), the journal stays, and ``--undo`` can be run again once things are fixed.

The journal is evidence, not orders (:func:`trusted_journal`)
-------------------------------------------------------------
Each ``run`` line records the folders the user named (``sources``), DST's real path and its (st_dev, st_ino),
and DST's key: a random token kept in DST's lock file (:data:`LOCK_NAME`, mode 0600). Before anything is
acted on, every run must match the folder being worked on (a ``cp -r`` copy has another inode, a renamed
folder another path, a journal written elsewhere or by hand knows neither inode nor key), every step must
belong to such a run, its destination must be ``DST/<folder>/<name>`` with no symbolic link on the way, and
its source must lie in one of its run's sources. One failure and nothing at all is done (OrganizeError).
Journals of version 1 (no binding) are not acted on.
"""

from __future__ import annotations

import errno
import functools
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from cifar10 import folder_journal
from cifar10.contract import CLASS_NAMES
from cifar10.evaluation import is_unsure
from cifar10.folder_journal import (StepState, check_binding, folder_binding, is_plain_path, path_in_folders,
                                    sha256_of, shown, steps_of)
from cifar10.folder_journal import copy_verified as _copy_verified
from cifar10.folder_journal import fsync_dir as _fsync_dir
from cifar10.folder_journal import is_regular_file as _is_regular_file
from cifar10.folder_journal import part_path as _part_path  # noqa: F401 (tests derive a step's part name)
from cifar10.inference import Classifier, Result, classify_files, iter_image_files
from cifar10.options import ORGANIZE_MODES

JOURNAL_NAME = ".cifar10-organize.jsonl"
UNSURE_DIR = "_unsure"
# 2: run lines bind the journal to DST (real path, st_dev/st_ino, key) and name the sources; lines are ASCII.
JOURNAL_VERSION = 2
# Held (an OS file lock) while a run or an undo works on DST, so two of them never interleave their steps in
# one journal. The OS drops the lock when its process ends, even by kill -9: a killed run never blocks the next.
# Its content is DST's key (see trusted_journal).
LOCK_NAME = ".cifar10-organize.lock"
MODES = ORGANIZE_MODES
GROUP = 32  # steps per group commit of the journal (one fsync for their begin lines, one for their done lines)
_NAME_MAX = 255  # bytes in one file name (ext4, XFS, APFS, NTFS in UTF-16 units)
# A copy or move that fails with one of these stops the run: the next file would fail the same way.
_STOP_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
SYMLINK_NOT_MOVED = "symbolic link: not moved; move the file it points to"


class OrganizeError(folder_journal.JournalError):
    """The journal or the destination is not usable; the message says what to do. ``report``: when a run
    stopped part-way (a full disk), what it did until then (journalled: undo(run=report.run_id) reverses it)."""

    report: "Report | None" = None


def tree_digest(root: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (hidden ones too), folders as ``"DIR"``: two equal
    digests mean two byte-identical trees (how the tests and the benchmark check that ``--undo`` restored one).
    A symbolic link is ``"LINK -> target"`` (not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            path = os.path.join(dirpath, d)
            out[os.path.relpath(path, root) + ("" if os.path.islink(path) else "/")] = (
                "LINK -> " + os.readlink(path) if os.path.islink(path) else "DIR")
        for f in filenames:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = ("LINK -> " + os.readlink(path) if os.path.islink(path)
                                                else sha256_of(path))
    return out


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


def _fits(name: str) -> bool:
    return len(os.fsencode(name)) <= _NAME_MAX


def free_name(folder: str, name: str, taken: set[str] | None = None) -> str:
    """``name`` if nothing in ``folder`` (on disk or in ``taken``, lower-cased) has it, else ``stem (2).ext``…
    (the stem shortened where the suffix would make the name longer than a file system allows)."""
    taken = taken if taken is not None else set()
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.lower() in taken or os.path.lexists(os.path.join(folder, candidate)):
        n += 1
        short = stem
        while short and not _fits(f"{short} ({n}){ext}"):
            short = short[:-1]
        candidate = f"{short} ({n}){ext}"
    return candidate


# --- the journal ---------------------------------------------------------------------------------------------

class Journal(folder_journal.Journal):
    """Append-only JSON lines in ``DST/.cifar10-organize.jsonl`` (:class:`cifar10.folder_journal.Journal`); every
    line is fsynced before it counts. Holds DST's lock (:data:`LOCK_NAME`) from creation to :meth:`close`."""

    def __init__(self, dst_root: str | os.PathLike):
        super().__init__(Path(dst_root) / JOURNAL_NAME, Path(dst_root) / LOCK_NAME, error=OrganizeError,
                         busy=f"another `cifar10 organize` (or its --undo) is working on {shown(dst_root)} right "
                              "now: wait for it to finish, then run this again")


def read_journal(dst_root: str | os.PathLike) -> list[dict]:
    """Every complete line of DST's journal (a line cut off by a crash is ignored: it was never acted on)."""
    return folder_journal.read_journal(Path(dst_root) / JOURNAL_NAME, OrganizeError)


def journal_steps(records: list[dict]) -> tuple[dict[str, StepState], list[dict]]:
    """Steps by id (in journal order) and the ``mkdir`` records (as written: see :func:`trusted_journal`)."""
    return steps_of(records), [record for record in records if record.get("op") == "mkdir"]


# --- the trust rules -------------------------------------------------------------------------------------------

@dataclass
class TrustedJournal:
    """What :func:`trusted_journal` let through: the runs (by id), their steps and the folders they made."""

    runs: dict[str, dict]
    steps: dict[str, StepState]
    mkdirs: list[dict]


def _dst_path_ok(path, dst_real: str, depth: int, realpath=os.path.realpath) -> bool:
    """``path`` is ``DST/<folder>`` (depth 1) or ``DST/<folder>/<name>`` (depth 2), with no ``..`` and no symbolic
    link between DST and the file (a link there could send an undo anywhere)."""
    if not is_plain_path(path):
        return False
    folder = path if depth == 1 else os.path.dirname(path)
    if os.path.basename(path) in ("", ".", ".."):
        return False
    return (realpath(os.path.dirname(folder)) == dst_real
            and realpath(folder) == os.path.join(dst_real, os.path.basename(folder)))


def trusted_journal(dst_root: str | os.PathLike, records: list[dict] | None = None) -> TrustedJournal:
    """The journal of ``dst_root``, if every line may be acted on; else OrganizeError (one line), nothing done.

    The rules, all of them:

    1. Every ``run`` line is of this version (:data:`JOURNAL_VERSION`); older journals are not bound to their
       folder, so they are never acted on automatically.
    2. Every run was written for this very folder: its recorded real path and (st_dev, st_ino) are DST's now
       (a ``cp -r`` copy has another inode; a renamed folder another path), and its key is the one in DST's
       lock file (a journal written elsewhere or by hand cannot know it).
    3. Every ``begin`` / ``mkdir`` line belongs to such a run (and has its mode).
    4. A step's destination is ``DST/<folder>/<name>``, a folder made is ``DST/<folder>``: no ``..``, no link.
    5. A step's source is a file its run's user named, or lies in a folder they named.
    """
    dst_root = os.path.abspath(dst_root)
    journal = Path(dst_root) / JOURNAL_NAME
    records = read_journal(dst_root) if records is None else records
    runs = {str(r.get("run")): r for r in records if r.get("op") == "run"}
    steps, mkdirs = journal_steps(records)
    if not records:
        return TrustedJournal({}, {}, [])

    def refuse(why: str) -> OrganizeError:
        return OrganizeError(f"{shown(journal)}: {why}; nothing was changed")

    if not runs:
        raise refuse("it records no run made in this folder (was it written by hand?)")
    if any(not isinstance(r.get("version"), int) or r["version"] < 2 for r in runs.values()):
        raise OrganizeError(
            f"{shown(journal)} was written by an older cifar10 (journal version 1), which does not bind it to this "
            f"folder, so it is not acted on; nothing was changed. The sorted files are all still in {shown(dst_root)}: "
            "to undo by hand, each \"begin\" line gives a \"src\" and a \"dst\" (move the dst back to its src, or "
            "delete a copied dst whose src still holds the same file), then delete the journal; to sort more into "
            "this folder, rename the journal first")
    if any(r["version"] > JOURNAL_VERSION for r in runs.values()):
        raise refuse("it was written by a newer cifar10; use that version to go on or undo")
    real = os.path.realpath(dst_root)
    key = folder_journal.read_key(Path(dst_root) / LOCK_NAME)
    realpath = functools.lru_cache(maxsize=None)(os.path.realpath)  # thousands of steps share a few folders
    for run in runs.values():
        check_binding(run, dst_root, key, prefix="dst", lock_name=LOCK_NAME, done="sorted", refuse=refuse)
        if run.get("mode") not in MODES or not isinstance(run.get("sources"), list):
            raise refuse(f"run {run.get('run')} is not a valid record")
    for step_id, state in steps.items():
        begin = state.begin
        run = runs.get(str(begin.get("run")))
        if run is None or begin.get("mode") != run["mode"]:
            raise refuse(f"step {shown(step_id)} belongs to no run of this folder")
        if not _dst_path_ok(begin.get("dst"), real, 2, realpath):
            raise refuse(f"step {shown(step_id)} writes outside this folder ({shown(str(begin.get('dst')))})")
        if not path_in_folders(begin.get("src"), run["sources"], realpath):
            raise refuse(f"step {shown(step_id)} reads {shown(str(begin.get('src')))}, which is not in the sources "
                         "that run was given")
    for record in mkdirs:
        if str(record.get("run")) not in runs or not _dst_path_ok(record.get("path"), real, 1, realpath):
            raise refuse(f"a folder record points outside this folder ({shown(str(record.get('path')))})")
    return TrustedJournal(runs, steps, mkdirs)


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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why): left where it is, not planned
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
    steps = trusted_journal(dst_root).steps if os.path.isdir(dst_root) else {}
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
        if mode == "move" and os.path.islink(path):
            plan.skipped.append((path, SYMLINK_NOT_MOVED))  # moved, a relative link would point nowhere
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
    run_id: str = ""                                               # the journal's id of this run (undo(run=...))

    def counts(self) -> dict[str, int]:
        """Files actually copied/moved per folder (class folders first, _unsure last)."""
        out: dict[str, int] = {}
        for _, dst in self.done:
            folder = os.path.basename(os.path.dirname(dst))
            out[folder] = out.get(folder, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == UNSURE_DIR, kv[0])))


def _ensure_folder(folder: str, journal: Journal, run_id: str) -> None:
    if os.path.isdir(folder):
        return
    journal.write({"op": "mkdir", "run": run_id, "path": folder})
    os.makedirs(folder, exist_ok=True)
    _fsync_dir(os.path.dirname(folder))


def _stop_error(exc: OSError, where: str) -> OrganizeError:
    return OrganizeError(f"{shown(where)}: {exc.strerror or exc}")


def _do_group(journal: Journal, run_id: str, plan: Plan, start: int, report: Report, *, force_copy: bool) -> None:
    """Steps ``start`` .. ``start + GROUP`` as one group commit: their ``begin`` lines are fsynced together
    before any of them is done, the files are copied/moved, the folders touched are fsynced, then the
    ``done`` lines are fsynced together. A crash anywhere leaves begun-not-done steps, which recover() and
    undo() handle one by one whatever state each is in (see the module docstring). A full disk (or a
    read-only or failing one) stops the group after the done lines of what was done: OrganizeError."""
    begun, records = [], []
    claimed: set[str] = set()
    for index in range(start, min(start + GROUP, len(plan.steps))):
        step = plan.steps[index]
        src = step.src
        if not os.path.lexists(src):
            report.problems.append(f"{shown(src)}: gone since it was classified; skipped")
            continue
        if plan.mode == "move" and os.path.islink(src):
            report.problems.append(f"{shown(src)}: {SYMLINK_NOT_MOVED}")
            continue
        folder = os.path.join(plan.dst_root, step.folder)
        try:
            _ensure_folder(folder, journal, run_id)
            name = step.name
            if os.path.lexists(os.path.join(folder, name)) or name.lower() in claimed:  # appeared since the plan
                name = free_name(folder, name, claimed)
            claimed.add(name.lower())
            stat_ = os.stat(src)
        except OSError as exc:
            if exc.errno in _STOP_ERRNOS:
                raise _stop_error(exc, folder) from None
            report.problems.append(f"{shown(src)}: {exc.strerror or exc}; left where it is")
            continue
        dst = os.path.join(folder, name)
        step_id = f"{run_id}-{index}"
        records.append({"op": "begin", "run": run_id, "id": step_id, "mode": plan.mode, "src": src, "dst": dst,
                        "size": stat_.st_size, "mtime_ns": stat_.st_mtime_ns})
        begun.append((step_id, src, dst))
    journal.write_many(records)
    touched: set[str] = set()
    done = []
    stop = None
    for step_id, src, dst in begun:
        try:
            if plan.mode == "copy":
                size, digest = _copy_verified(src, dst, sync_dir=False)
            else:
                size, digest = _move(src, dst, force_copy=force_copy, sync_dirs=False)
                digest = digest or sha256_of(dst)
                touched.add(os.path.dirname(src))
        except OSError as exc:
            if exc.errno in _STOP_ERRNOS:
                stop = _stop_error(exc, os.path.dirname(dst))
                break
            # Left as begun: the next run or undo looks at what is on disk and finishes or reverses it.
            report.problems.append(f"{shown(src)}: {exc.strerror or exc}; left where it is")
            continue
        touched.add(os.path.dirname(dst))
        done.append({"op": "done", "id": step_id, "size": size, "sha256": digest})
        report.done.append((src, dst))
    for folder in sorted(touched):
        _fsync_dir(folder)
    journal.write_many(done)
    if stop is not None:
        raise stop


def execute(plan: Plan, *, on_progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, force_copy: bool = False) -> Report:
    """Carry out ``plan`` step by step under the journal (first finishing a killed run's half-done step).

    ``force_copy`` makes moves take the cross-file-system path (copy, verify, remove) even on one file system.
    Raises OrganizeError (one line) when the journal may not be acted on or the disk fails (full); what was done
    until then is journalled, so it can be undone or the run resumed.
    """
    report = Report()
    created = not os.path.exists(plan.dst_root)
    try:
        os.makedirs(plan.dst_root, exist_ok=True)
    except OSError as exc:
        raise OrganizeError(f"cannot create {shown(plan.dst_root)}: {exc.strerror or exc}") from None
    trusted_journal(plan.dst_root)  # refused before even the lock file is made (and checked again under the lock)
    journal = Journal(plan.dst_root)
    verb = "copied" if plan.mode == "copy" else "moved"
    total = len(plan.steps)
    try:
        trusted = trusted_journal(plan.dst_root, journal.records())
        try:
            report.recovered = _recover(journal, trusted, report, force_copy=force_copy)
            run_id = report.run_id = uuid.uuid4().hex[:12]
            key = journal.key() if trusted.runs else journal.new_key()
            journal.write({"op": "run", "run": run_id, "version": JOURNAL_VERSION, "mode": plan.mode,
                           "model": plan.model, "min_confidence": plan.min_confidence, "sources": plan.sources,
                           **folder_binding(plan.dst_root, "dst"), "key": key,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": total, "created_dst": created})
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
        except (OrganizeError, OSError) as exc:
            why = str(exc) if isinstance(exc, OrganizeError) else f"{exc.strerror or exc}"
            error = OrganizeError(f"{why}; stopped after {len(report.done)} of {total} files {verb}: "
                                  f"`cifar10 organize --undo {shown(plan.dst_root)}` puts them back, or free some "
                                  "space and run the same command again to go on")
            error.report = report
            raise error from None
    finally:
        journal.close()
    return report


def recover(dst_root: str | os.PathLike, *, force_copy: bool = False) -> Report:
    """Finish the half-done step(s) a killed run left in the journal (rolled forward, never lost)."""
    report = Report()
    journal = Journal(dst_root)
    try:
        trusted = trusted_journal(dst_root, journal.records())
        report.recovered = _recover(journal, trusted, report, force_copy=force_copy)
    finally:
        journal.close()
    return report


def _remove_part(state: StepState) -> None:
    """The temporary file of a step that was begun but not done: its name derives from the journalled
    destination, and it was never renamed into place, so nothing refers to it."""
    if state.done is None:
        folder_journal.remove_part(state.begin["dst"])


def _recover(journal: Journal, trusted: TrustedJournal, report: Report, *, force_copy: bool = False) -> int:
    count = 0
    for step_id, state in trusted.steps.items():
        if state.done is not None or state.undone:
            continue
        begin = state.begin
        src, dst, mode = begin["src"], begin["dst"], begin["mode"]
        try:
            _remove_part(state)
            src_there, dst_there = os.path.lexists(src), os.path.lexists(dst)
            if dst_there and not _is_regular_file(dst):
                report.problems.append(f"{shown(dst)}: not the file the interrupted step wrote; left alone")
                continue
            if dst_there and src_there and mode == "move":
                if sha256_of(src) != sha256_of(dst):
                    report.problems.append(f"{shown(src)}: the journal's move to {shown(dst)} was interrupted and "
                                           "both now differ; both kept")
                    continue
                os.unlink(src)  # the verified copy was in place; only removing the source was left
                _fsync_dir(os.path.dirname(src))
            elif not dst_there and src_there:
                dst = _redo(mode, src, dst, force_copy)
            elif not dst_there and not src_there:
                report.problems.append(f"{shown(src)}: neither it nor {shown(dst)} exists (removed by someone else?)")
                continue
            journal.write({"op": "done", "id": step_id, "size": os.stat(dst).st_size, "sha256": sha256_of(dst),
                           "recovered": True})
        except OSError as exc:
            if exc.errno in _STOP_ERRNOS:
                raise _stop_error(exc, os.path.dirname(dst)) from None
            report.problems.append(f"{shown(src)}: could not finish the interrupted step ({exc.strerror or exc})")
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
    moved_back: list[tuple[str, str]] = field(default_factory=list)  # (dst, src) of the moves undone: a window
                                                                     # showing the files follows them back


def undo(dst_root: str | os.PathLike, *, on_progress: Callable[[int, int], None] | None = None,
         run: str | None = None) -> UndoReport:
    """Reverse every step in DST's journal, newest first; safe to run again after being killed itself.
    ``run``: only that run's steps (``Report.run_id``: the app's labelling undoes its last action); the journal
    is removed only once every step of every run is undone.

    A step that cannot be undone without losing a file (the original is gone, or its path holds another
    file now) is left as it is and reported; the journal then stays, for another --undo once that is fixed.
    A journal that may not be acted on (:func:`trusted_journal`) raises OrganizeError before anything is done.
    """
    dst_root = os.path.abspath(dst_root)
    journal_path = Path(dst_root) / JOURNAL_NAME
    if not journal_path.exists():
        raise OrganizeError(f"{shown(dst_root)} has no {JOURNAL_NAME}: nothing organised there to undo")
    report = UndoReport()
    trusted_journal(dst_root)  # refused before even the lock file is made (and checked again under the lock)
    journal = Journal(dst_root)
    try:
        trusted = trusted_journal(dst_root, journal.records())
        created_dst = any(r.get("created_dst") for r in trusted.runs.values())
        todo = [(step_id, state) for step_id, state in trusted.steps.items() if not state.undone
                and (run is None or state.begin.get("run") == run)]
        total = len(todo)
        for count, (step_id, state) in enumerate(reversed(todo), 1):
            try:
                problem = _undo_step(state)
            except OSError as exc:
                if exc.errno in _STOP_ERRNOS:
                    raise _stop_error(exc, state.begin["dst"]) from None
                problem = f"{shown(state.begin['dst'])}: could not be undone ({exc.strerror or exc})"
            if problem:
                report.problems.append(problem)
            else:
                journal.write({"op": "undone", "id": step_id})
                report.restored += 1
                if state.begin["mode"] == "move":
                    report.moved_back.append((state.begin["dst"], state.begin["src"]))
            if on_progress is not None:
                on_progress(count, total)
        for record in reversed(trusted.mkdirs):
            try:
                os.rmdir(record["path"])  # only if empty: a folder with the user's own files stays
            except OSError:
                pass
        left = [s for s in trusted.steps.values() if not s.undone and run is not None
                and s.begin.get("run") != run]
    finally:
        journal.close()
    if not report.problems and not left:
        journal_path.unlink()
        try:
            os.unlink(os.path.join(dst_root, LOCK_NAME))
        except OSError:
            pass
        _fsync_dir(dst_root)
        report.journal_removed = True
        if created_dst:
            try:
                os.rmdir(dst_root)  # organize created it; only if nothing else was put there since
            except OSError:
                pass
    return report


def _undo_step(state: StepState) -> str | None:
    """Reverse one step if no file can be lost by it; else a sentence saying what was kept and why.

    copy: the copy in DST is deleted only while the source holds the same bytes.
    move: the file goes back only to a free source path; if that path holds the same bytes (an interrupted
    cross-file-system move), the DST file is the spare and is deleted; if it holds another file, both stay.
    """
    begin = state.begin
    src, dst, mode = begin["src"], begin["dst"], begin["mode"]
    _remove_part(state)
    dst_there, src_there = os.path.lexists(dst), os.path.lexists(src)
    if not dst_there:
        if mode == "copy" or src_there or state.done is None:
            return None  # nothing of ours left: never happened (killed before the rename), or already put back
        return f"{shown(dst)}: missing, so {shown(src)} cannot be put back (was it deleted or moved?)"
    if not _is_regular_file(dst):
        return f"{shown(dst)}: kept: not the file organize wrote (a folder or a link is there now)"
    digest = sha256_of(dst)
    if state.done is not None and digest != state.done.get("sha256"):
        return f"{shown(dst)}: kept: changed since it was organised (delete it yourself if you do not need it)"
    if src_there:
        # copy: the source may be a link (its target was copied), but never one to this very file
        usable = _is_regular_file(src) or (mode == "copy" and os.path.isfile(src))
        if not usable or os.path.samefile(src, dst) or sha256_of(src) != digest:
            return f"{shown(dst)}: kept: {shown(src)} now holds another file"
        os.unlink(dst)  # the source holds these very bytes: the DST file is a spare
        _fsync_dir(os.path.dirname(dst))
        return None
    if mode == "copy":
        return f"{shown(dst)}: kept: the original is gone ({shown(src)})"
    os.makedirs(os.path.dirname(src), exist_ok=True)
    folder_journal.remove_part(src)  # left by an undo killed while copying this file back across file systems
    _move(dst, src)
    return None
