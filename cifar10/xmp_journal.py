"""The journal of the XMP sidecars ``cifar10 classify --xmp`` writes, and their undo (``--xmp-undo FOLDER``).

Where
-----
One journal per folder the user named on the command line (a file named on its own counts for the folder it is
in), kept in the hidden folder ``FOLDER/.cifar10-xmp/`` (:data:`STATE_DIR`): ``journal.jsonl``, ``lock`` (the
folder's key, mode 0600) and one backup of each distinct earlier sidecar, named by its sha256. Why there: it is a
place the user named (never their home folder or an app folder they did not choose), the sidecars of every
subfolder scanned are under it, the undo is the folder they classified (``cifar10 classify --xmp-undo photos/``),
and the journal, the backups and the sidecars move, are copied and are deleted together. Folder scans skip hidden
folders, so it is never classified.

Tagging (:class:`Tagging`)
--------------------------
Sidecars are committed in groups of :data:`GROUP`, like ``cifar10 organize``'s steps
(:mod:`cifar10.folder_journal`): for each sidecar the new bytes are made in memory first (merged into the existing
sidecar); then one fsync for the group's ``begin`` lines (sidecar path, whether it existed, the sha256 of its
bytes before and of the bytes about to be written); then the backups of the existing ones (written beside the
journal, fsynced, read back and compared); then each sidecar is written to a temporary file, fsynced, read back
and renamed over the old one (never half a sidecar); then the folders are fsynced and one fsync for the ``done``
lines (the sha256 read back). A sidecar that is a link or a folder, or is not XMP, is left alone (one line says
so); one that changes while it is being tagged is left as the user's program wrote it. A full disk (or a
read-only or failing one) ends the run with one line: the sidecars written until then are journaled, the others
are as they were.

Undo (:func:`undo`)
-------------------
Every journaled sidecar, newest first: if it holds exactly the bytes we wrote, the backup goes back (its sha256
checked, written beside it and renamed over it) or, when we created it, it is deleted; if it already holds its
earlier bytes (an undo killed half-way, a run killed before the rename) there is nothing to do; if it changed
since (the user or their photo manager edited it) or is missing, it is left as it is and listed, and the
journal and backups stay (the earlier version is in ``.cifar10-xmp/<sha256>``). When everything is undone the
journal, the backups and ``.cifar10-xmp/`` are removed. Killed half-way, the same command again ends in the same
state.

The journal is evidence, not orders (:func:`trusted_journal`): every ``run`` line must be bound to this very
folder (its real path, st_dev/st_ino and the key in ``.cifar10-xmp/lock``, :func:`cifar10.folder_journal.
check_binding`), every sidecar must be ``<name>.xmp`` inside it (no ``..``, no link out of it), and a backup is
used only when its sha256 is the one journaled. One line that fails and nothing is done at all.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import shlex
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from cifar10.folder_journal import (Journal, JournalError, StepState, check_binding, folder_binding, fsync_dir,
                                    install_verified, is_plain_path, is_real_dir, is_regular_file, path_in_folders,
                                    read_journal, read_key, remove_part, sha256_of, shown, steps_of)
from cifar10.xmp import XmpError, merged_sidecar, sidecar_path

STATE_DIR = ".cifar10-xmp"
JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = "lock"
VERSION = 1
GROUP = 32  # sidecars per group commit (one fsync for their begin lines, one for their done lines)
# A write that fails with one of these stops the run: the next sidecar would fail the same way.
STOP_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class XmpJournalError(JournalError):
    """The journal may not be acted on, cannot be written, or the disk is full; one line says what to do."""


def undo_command(folder: str) -> str:
    """The command that undoes the tagging of ``folder``, as a shell reads it (spaces and quotes quoted)."""
    return f"cifar10 classify --xmp-undo {shlex.quote(shown(folder))}"


def named_folders(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The folders whose journals a run over ``paths`` keeps: each folder named, and the folder of each file named
    (absolute, in the order given, each once)."""
    out: list[str] = []
    for path in paths:
        path = os.path.abspath(path)
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        if folder not in out:
            out.append(folder)
    return out


def _state_dir(folder: str) -> str:
    return os.path.join(folder, STATE_DIR)


def _journal_path(folder: str) -> str:
    return os.path.join(folder, STATE_DIR, JOURNAL_FILE)


def _lock_path(folder: str) -> str:
    return os.path.join(folder, STATE_DIR, LOCK_FILE)


def _backup_path(folder: str, sha: str) -> str:
    return os.path.join(folder, STATE_DIR, sha)


def _open_journal(folder: str) -> Journal:
    return Journal(_journal_path(folder), _lock_path(folder), error=XmpJournalError,
                   busy=f"another `cifar10 classify --xmp` (or --xmp-undo) is working on {shown(folder)} right now: "
                        "wait for it to finish, then run this again")


def _check_state_dir(folder: str) -> None:
    state = _state_dir(folder)
    if os.path.lexists(state) and not is_real_dir(state):
        raise XmpJournalError(f"{shown(state)} is not a folder (a link?); nothing was changed")


# --- the trust rules -------------------------------------------------------------------------------------------

@dataclass
class TrustedJournal:
    runs: dict[str, dict]
    steps: dict[str, StepState]


def _sidecar_ok(path, folder: str, real: str, realpath) -> bool:
    """``path`` is a ``*.xmp`` file inside ``folder`` (not in ``.cifar10-xmp/``), no link leading out of it."""
    if not is_plain_path(path) or not path.endswith(".xmp") or not path_in_folders(path, [folder], realpath):
        return False
    rel = os.path.relpath(path, folder).split(os.sep)
    return realpath(folder) == real and STATE_DIR not in rel and os.path.basename(path) != ".xmp"


def _sha_ok(value) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def trusted_journal(folder: str | os.PathLike, records: list[dict] | None = None) -> TrustedJournal:
    """The journal of ``folder`` if every line may be acted on, else XmpJournalError (one line), nothing done.

    1. Every ``run`` line is of this version and bound to this very folder (real path, st_dev/st_ino, key).
    2. Every ``begin`` line belongs to such a run, names a ``*.xmp`` file inside its folder (no ``..``, no link
       leading out), says whether it existed, and gives well-formed sha256s (the earlier one when it existed).
    """
    folder = os.path.abspath(folder)
    journal = _journal_path(folder)
    _check_state_dir(folder)
    records = read_journal(journal, XmpJournalError) if records is None else records
    if not records:
        return TrustedJournal({}, {})
    runs = {str(r.get("run")): r for r in records if r.get("op") == "run"}
    steps = steps_of(records)

    def refuse(why: str) -> XmpJournalError:
        return XmpJournalError(f"{shown(journal)}: {why}; nothing was changed")

    if not runs:
        raise refuse("it records no run made in this folder (was it written by hand?)")
    if any(r.get("version") != VERSION for r in runs.values()):
        raise refuse("it was written by another version of cifar10; use that version to undo")
    real = os.path.realpath(folder)
    key = read_key(_lock_path(folder))
    realpath = functools.lru_cache(maxsize=None)(os.path.realpath)
    for run in runs.values():
        check_binding(run, folder, key, prefix="folder", lock_name=f"{STATE_DIR}/{LOCK_FILE}", done="tagged",
                      refuse=refuse)
    for step_id, state in steps.items():
        begin = state.begin
        run = runs.get(str(begin.get("run")))
        if run is None:
            raise refuse(f"step {shown(step_id)} belongs to no run of this folder")
        if not _sidecar_ok(begin.get("sidecar"), run.get("folder"), real, realpath):
            raise refuse(f"step {shown(step_id)} names {shown(str(begin.get('sidecar')))}, which is not a sidecar "
                         "in this folder")
        existed = begin.get("existed")
        if not isinstance(existed, bool) or not _sha_ok(begin.get("new_sha256")) \
                or (existed and not _sha_ok(begin.get("old_sha256"))):
            raise refuse(f"step {shown(step_id)} is not a valid record")
    return TrustedJournal(runs, steps)


# --- tagging ---------------------------------------------------------------------------------------------------

@dataclass
class _Item:
    sidecar: str
    existed: bool
    old: bytes | None
    new: bytes
    old_sha: str | None
    new_sha: str
    mode: int | None
    step_id: str = ""


class _FolderRun:
    """One named folder's part of a tagging run: its journal, held (locked) from open to close."""

    def __init__(self, folder: str, model: str):
        self.folder, self.model = folder, model
        self.run_id = uuid.uuid4().hex[:12]
        self.steps = 0
        self.written = 0
        _check_state_dir(folder)
        trusted_journal(folder)  # refused before even the lock file is made (and checked again under the lock)
        state = _state_dir(folder)
        self.made_state_dir = not os.path.lexists(state)
        try:
            os.makedirs(state, exist_ok=True)
        except OSError as exc:
            raise XmpJournalError(f"cannot create {shown(state)}: {exc.strerror or exc}") from None
        _check_state_dir(folder)
        self.journal = _open_journal(folder)
        try:
            self.trusted = trusted_journal(folder, self.journal.records())
            _remove_parts(folder, self.trusted.steps.values())
        except BaseException:
            self.journal.close()
            raise
        self.started = False

    def _start(self) -> None:
        if self.started:
            return
        key = self.journal.key() if self.trusted.runs else self.journal.new_key()
        self.journal.write({"op": "run", "run": self.run_id, "version": VERSION, "model": self.model,
                            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **folder_binding(self.folder, "folder"),
                            "key": key})
        self.started = True

    def commit(self, items: list[_Item], problems: list[str]) -> None:
        """One group commit (module docstring). Raises XmpJournalError when the disk fails (full)."""
        if not items:
            return
        self._start()
        for item in items:
            item.step_id = f"{self.run_id}-{self.steps}"
            self.steps += 1
        self.journal.write_many([{"op": "begin", "run": self.run_id, "id": item.step_id, "sidecar": item.sidecar,
                                  "existed": item.existed, "old_sha256": item.old_sha, "new_sha256": item.new_sha}
                                 for item in items])
        skipped: set[str] = set()
        written, touched = [], set()
        stop = None
        for item in items:  # every backup is durable before any sidecar is replaced
            try:
                problem = self._backup(item) if item.existed else None
            except OSError as exc:
                if exc.errno in STOP_ERRNOS:
                    stop = XmpJournalError(f"{shown(_backup_path(self.folder, item.old_sha))}: {exc.strerror or exc}")
                    break
                problem = (f"{shown(item.sidecar)}: not written: its earlier version cannot be kept "
                           f"({exc.strerror or exc})")
            if problem:
                problems.append(problem)
                skipped.add(item.step_id)
        fsync_dir(_state_dir(self.folder))
        for item in items if stop is None else []:
            if item.step_id in skipped:
                continue
            try:
                problem = self._write(item)
            except OSError as exc:
                if exc.errno in STOP_ERRNOS:
                    stop = XmpJournalError(f"{shown(item.sidecar)}: {exc.strerror or exc}")
                    break
                problem = f"{shown(item.sidecar)}: {exc.strerror or exc}"
            if problem:
                problems.append(problem)
                skipped.add(item.step_id)
            else:
                touched.add(os.path.dirname(item.sidecar))
                written.append(item)
        for folder in sorted(touched):
            fsync_dir(folder)
        self.written += len(written)
        lines = ([{"op": "done", "id": item.step_id, "sha256": item.new_sha} for item in written]
                 + [{"op": "undone", "id": step_id, "why": "not written"} for step_id in sorted(skipped)])
        try:
            self.journal.write_many(lines)
        except XmpJournalError:
            if stop is None:
                raise
            # the begin lines are enough: undo finds each sidecar as it was, or as it was written
        if stop is not None:
            raise stop

    @staticmethod
    def _write(item: _Item) -> str | None:
        """Replace the sidecar (temporary file, fsync, read back, rename); a sentence if it was left alone."""
        if _current(item.sidecar) != item.old:
            return f"{shown(item.sidecar)}: changed while it was being tagged; left as it is"
        try:
            install_verified([item.new], item.sidecar, replace=item.existed, sync_dir=False, mode=item.mode)
        except FileExistsError:
            return f"{shown(item.sidecar)}: appeared while it was being tagged; left as it is"
        return None

    def _backup(self, item: _Item) -> str | None:
        """Keep the earlier bytes of ``item``'s sidecar as ``.cifar10-xmp/<sha256>`` (verified); a sentence if that
        name holds other bytes (the sidecar is then not written)."""
        path = _backup_path(self.folder, item.old_sha)
        if is_regular_file(path) and sha256_of(path) == item.old_sha:
            return None  # the same earlier version, kept by an earlier run
        if os.path.lexists(path):
            return f"{shown(item.sidecar)}: not written: {shown(path)} holds other bytes than its earlier version"
        install_verified([item.old], path, sync_dir=False)
        return None

    def close(self) -> None:
        try:
            if self.started:
                try:
                    self.journal.write({"op": "end", "run": self.run_id, "written": self.written})
                except XmpJournalError:
                    pass
        finally:
            self.journal.close()
        if not self.started and not self.trusted.runs and self.made_state_dir:
            _remove_state(self.folder, [])  # nothing was tagged here: leave no trace


def _current(path: str) -> bytes | None:
    """The sidecar's bytes now (None: there is none)."""
    if not os.path.lexists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


class Tagging:
    """A ``cifar10 classify --xmp`` run over ``paths``: one journal per named folder (:func:`named_folders`), each
    locked and checked (:func:`trusted_journal`) when the run opens, before anything is classified.

    :meth:`tag` passes results through, writing a sidecar for each classified one (in groups, the last one when the
    results end); :meth:`add` takes one image and :meth:`flush` commits what is left; :meth:`close` ends the run. A sidecar that cannot be written is listed in :attr:`problems` and the
    run goes on; a full disk raises XmpJournalError (one line, naming the undo)."""

    def __init__(self, paths: Iterable[str | os.PathLike], model: str):
        self.folders = named_folders(paths)
        self.problems: list[str] = []
        self.unchanged = 0
        self._runs: dict[str, _FolderRun] = {}
        self._pending: dict[str, list[_Item]] = {}
        try:
            for folder in self.folders:
                self._runs[folder] = _FolderRun(folder, model)
        except BaseException:
            self.close()
            raise
        self.model = model

    @property
    def journaled_folders(self) -> list[str]:
        """The folders whose journal this run wrote to (what ``--xmp-undo`` is given)."""
        return [folder for folder, run in self._runs.items() if run.started]

    @property
    def written(self) -> int:
        return sum(run.written for run in self._runs.values()) + self.unchanged

    def _folder_of(self, path: str) -> str | None:
        for folder in self.folders:
            if path.startswith(folder.rstrip(os.sep) + os.sep):
                return folder
        return None

    def add(self, image: str | os.PathLike, label: str, confidence: float) -> None:
        image = os.path.abspath(image)
        sidecar = str(sidecar_path(image))
        folder = self._folder_of(image)
        if folder is None or not path_in_folders(sidecar, [folder]):
            self.problems.append(f"{shown(sidecar)}: not inside a folder named on the command line; not written")
            return
        try:
            if not os.path.isfile(image):
                raise XmpError(f"{shown(image)}: no such image file")
            if os.path.lexists(sidecar) and not is_regular_file(sidecar):
                raise XmpError(f"{shown(sidecar)}: not a plain file (a link or a folder); left alone")
            old = _current(sidecar)
            new = merged_sidecar(sidecar, old, label, confidence, self.model)
            mode = os.stat(sidecar).st_mode & 0o7777 if old is not None else None
        except (XmpError, OSError) as exc:
            self.problems.append(str(exc) if isinstance(exc, XmpError)
                                 else f"{shown(sidecar)}: {exc.strerror or exc}")
            return
        if new == old:
            self.unchanged += 1  # already tagged so: nothing to write, nothing to undo
            return
        item = _Item(sidecar, old is not None, old, new, _sha(old) if old is not None else None, _sha(new), mode)
        pending = self._pending.setdefault(folder, [])
        pending.append(item)
        if len(pending) >= GROUP:
            self._commit(folder)

    def _commit(self, folder: str) -> None:
        items, self._pending[folder] = self._pending.get(folder, []), []
        try:
            self._runs[folder].commit(items, self.problems)
        except XmpJournalError as exc:
            self._pending.clear()
            raise XmpJournalError(
                f"{exc}; stopped after {self.written:,} sidecars tagged: `{undo_command(folder)}` puts back the "
                "sidecars as they were, or free some space and run the same command again") from None

    def flush(self) -> None:
        for folder in list(self._pending):
            self._commit(folder)

    def tag(self, results) -> Iterator:
        for result in results:
            if not result.error:
                self.add(result.path, result.label, float(result.confidence))
            yield result
        self.flush()

    def close(self) -> None:
        for run in self._runs.values():
            run.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- undo ------------------------------------------------------------------------------------------------------

@dataclass
class UndoReport:
    restored: int = 0                                     # earlier sidecars put back
    removed: int = 0                                      # sidecars we had created, deleted
    unchanged: int = 0                                    # already as they were (never written, or put back)
    problems: list[str] = field(default_factory=list)     # a sentence per sidecar left as it is
    journal_removed: bool = False


def undo(folder: str | os.PathLike, *, on_progress: Callable[[int, int], None] | None = None) -> UndoReport:
    """Put back every sidecar the journal in ``folder`` records, newest first (module docstring); safe to run again
    after being killed itself. A journal that may not be acted on raises XmpJournalError before anything is done."""
    folder = os.path.abspath(folder)
    _check_state_dir(folder)
    if not is_regular_file(_journal_path(folder)):
        raise XmpJournalError(f"{shown(folder)} has no {STATE_DIR}/{JOURNAL_FILE}: no sidecars were tagged there "
                              "(name the folder that was classified)")
    report = UndoReport()
    trusted_journal(folder)  # refused before the lock is taken (and checked again under it)
    journal = _open_journal(folder)
    try:
        trusted = trusted_journal(folder, journal.records())
        todo = [(step_id, state) for step_id, state in trusted.steps.items() if not state.undone][::-1]
        for start in range(0, len(todo), GROUP):
            try:
                _undo_group(folder, journal, todo[start:start + GROUP], report)
            except XmpJournalError as exc:  # a full disk: what was put back stays put back; nothing is lost
                raise XmpJournalError(f"{exc}; stopped after {report.restored + report.removed + report.unchanged:,} "
                                      f"of {len(todo):,} sidecars: free some space and run `{undo_command(folder)}` "
                                      "again") from None
            if on_progress is not None:
                on_progress(min(start + GROUP, len(todo)), len(todo))
    finally:
        journal.close()
    if not report.problems:
        _remove_parts(folder, trusted.steps.values())
        _remove_state(folder, [s.begin.get("old_sha256") for s in trusted.steps.values()])
        report.journal_removed = True
    return report


def _undo_group(folder: str, journal: Journal, group: list[tuple[str, StepState]], report: UndoReport) -> None:
    undone, touched = [], set()
    stop = None
    for step_id, state in group:
        try:
            outcome = _undo_step(folder, state.begin)
        except OSError as exc:
            if exc.errno in STOP_ERRNOS:
                stop = XmpJournalError(f"{shown(state.begin['sidecar'])}: {exc.strerror or exc}")
                break
            outcome = f"{shown(state.begin['sidecar'])}: could not be undone ({exc.strerror or exc})"
        if outcome in ("restored", "removed", "as it was"):
            report.restored += outcome == "restored"
            report.removed += outcome == "removed"
            report.unchanged += outcome == "as it was"
            touched.add(os.path.dirname(state.begin["sidecar"]))
            undone.append({"op": "undone", "id": step_id})
        else:
            report.problems.append(outcome)
    for path in sorted(touched):
        fsync_dir(path)
    journal.write_many(undone)
    if stop is not None:
        raise stop


def _undo_step(folder: str, begin: dict) -> str:
    """"restored", "removed", "as it was", or a sentence saying what was left as it is and why."""
    sidecar, existed = begin["sidecar"], begin["existed"]
    old_sha, new_sha = begin.get("old_sha256"), begin["new_sha256"]
    remove_part(sidecar)  # a killed run's or undo's temporary file (ours: its name derives from the sidecar's)
    backup = f" (its version from before tagging is {shown(_backup_path(folder, old_sha))})" if existed else ""
    if not os.path.lexists(sidecar):
        return "as it was" if not existed else f"{shown(sidecar)}: missing, so it was not put back{backup}"
    if not is_regular_file(sidecar):
        return f"{shown(sidecar)}: left as it is: not a plain file now (a link or a folder)"
    digest = sha256_of(sidecar)
    if existed and digest == old_sha:
        return "as it was"  # put back by an undo that was killed, or never written
    if digest != new_sha:
        return f"{shown(sidecar)}: left as it is: changed since it was tagged{backup}{_nested_hint(folder, sidecar)}"
    if not existed:
        os.unlink(sidecar)
        return "removed"
    path = _backup_path(folder, old_sha)
    data = _current(path) if is_regular_file(path) else None
    if data is None or _sha(data) != old_sha:
        return f"{shown(sidecar)}: left as tagged: its backup {shown(path)} is missing or damaged"
    install_verified([data], sidecar, replace=True, sync_dir=False, mode=os.stat(sidecar).st_mode & 0o7777)
    return "restored"


def _nested_hint(folder: str, sidecar: str) -> str:
    """When a folder between ``folder`` and the sidecar has a journal of its own (``--xmp`` was run on it too, after
    or before this run), the way out of a "changed since": that run's undo first, then this one again (each undo
    puts back only the bytes it wrote, so the two converge on the sidecar from before either run). Only the
    journal's existence is read: it is a hint, never acted on."""
    inner = os.path.dirname(sidecar)
    nested = []
    while inner != folder and inner.startswith(folder.rstrip(os.sep) + os.sep):
        if is_regular_file(_journal_path(inner)):
            nested.append(inner)
        inner = os.path.dirname(inner)
    if not nested:
        return ""
    return (f"; {shown(nested[0])} has an XMP journal of its own: if a run there tagged it after this one, "
            f"`{undo_command(nested[0])}` first, then this undo again")


def _remove_parts(folder: str, steps: Iterable[StepState]) -> None:
    """The temporary files a killed run or undo left beside a journaled sidecar or backup (ours: their names derive
    from the sidecar's or backup's, :func:`cifar10.folder_journal.part_path`)."""
    for step in steps:
        if not step.undone:
            remove_part(step.begin["sidecar"])
        if step.begin.get("existed"):
            remove_part(_backup_path(folder, step.begin["old_sha256"]))


def _remove_state(folder: str, backups: list) -> None:
    """The backups named (sha256s the journal recorded), then the journal, the lock and ``.cifar10-xmp/`` itself
    if nothing else is in it. The journal goes last: an undo killed here finds it and finishes."""
    for sha in set(backups):
        if _sha_ok(sha) and is_regular_file(_backup_path(folder, sha)):
            os.unlink(_backup_path(folder, sha))
    for name in (JOURNAL_FILE, LOCK_FILE):
        path = os.path.join(_state_dir(folder), name)
        if is_regular_file(path):
            os.unlink(path)
    try:
        os.rmdir(_state_dir(folder))
    except OSError:
        pass
    fsync_dir(folder)
