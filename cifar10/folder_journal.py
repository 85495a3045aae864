"""Append-only, fsynced JSON-lines journals bound to the folder they live in, and the durable file helpers around
them: what ``cifar10 organize`` (:mod:`cifar10.organize`) and ``cifar10 classify --xmp`` (:mod:`cifar10.xmp_journal`)
keep so that what they did survives kill -9 and a full disk and can be undone, and so that a journal found on disk
is never taken as orders.

* :class:`Journal`: lines are ASCII JSON (``ensure_ascii``: any file name, UTF-8 or not, round-trips), written in
  group commits (one fsync for several lines); a line cut off by a crash or a full disk is cut away before the next
  one is appended, and a write that fails is truncated away and raises the journal's error (one line).
* :class:`FolderLock`: an OS lock (released when its process dies, kill -9 included) whose file holds the folder's
  random key; the journal's ``run`` lines name the key, the folder's real path and its (st_dev, st_ino)
  (:func:`folder_binding`), and :func:`check_binding` refuses a run written for any other folder, a copy of it, or
  by hand. Neither the lock nor the journal is opened through a symbolic link (a planted link could send a write
  anywhere).
* :func:`install_verified`: bytes go to a hidden temporary file beside their destination (named after it, so an
  undo or the next run finds the one a killed run left), fsynced, read back and compared (sha256), then renamed
  into place: a name never holds half a file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from cifar10.filelock import FileLock, LockBusy

PART_SUFFIX = ".cifar10-part"
CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class JournalError(RuntimeError):
    """A journal that may not be acted on, or cannot be written; the message (one line) says what to do."""


def shown(path: str | os.PathLike) -> str:
    """``path`` as text any terminal or label can show: bytes that are not UTF-8 (a name like b'caf\\xe9.png',
    held by Python as lone surrogates) appear as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


# --- small durable file-system helpers -------------------------------------------------------------------

def fsync_dir(path: str | os.PathLike) -> None:
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
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_regular_file(path: str | os.PathLike) -> bool:
    """A regular file itself, not a link to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_real_dir(path: str | os.PathLike) -> bool:
    """A folder itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def part_path(dst: str) -> str:
    """The temporary name a file bound for ``dst`` is written under: short (31 bytes) whatever the length of
    ``dst``'s name, hidden, and derived from it, so recover/undo find the one that belongs to a journalled step."""
    head, tail = os.path.split(dst)
    return os.path.join(head, f".{hashlib.sha1(os.fsencode(tail)).hexdigest()[:16]}{PART_SUFFIX}")


def remove_part(dst: str) -> None:
    """The temporary file of ``dst`` a killed run left (:func:`part_path`): never renamed into place, so nothing
    refers to it."""
    part = part_path(dst)
    if is_regular_file(part):
        os.unlink(part)


def install_verified(chunks: Iterable[bytes], dst: str, *, replace: bool = False, sync_dir: bool = True,
                     like: str | None = None, mode: int | None = None) -> tuple[int, str]:
    """Write ``chunks`` to a temporary file beside ``dst``, fsync, re-read and compare, rename to ``dst``.

    ``replace=False`` never overwrites (FileExistsError if ``dst`` appeared meanwhile); ``replace=True`` renames
    over it atomically. ``like``: a file whose times and mode the result gets (shutil.copystat); ``mode``:
    permission bits. Returns (size, sha256)."""
    part = part_path(dst)
    digest = hashlib.sha256()
    size = 0
    try:
        with open(part, "xb") as fout:
            for chunk in chunks:
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        try:
            if like is not None:
                shutil.copystat(like, part)  # keep the modification time (photo tools sort by it)
            if mode is not None:
                os.chmod(part, mode)
        except OSError:
            pass
        if sha256_of(part) != digest.hexdigest():
            raise OSError(f"{shown(dst)} does not read back identical; nothing was changed")
        if not replace and os.path.lexists(dst):
            raise FileExistsError(dst)
        os.replace(part, dst)
    except BaseException:
        try:
            os.unlink(part)
        except OSError:
            pass
        raise
    if sync_dir:
        fsync_dir(os.path.dirname(dst))
    return size, digest.hexdigest()


def copy_verified(src: str, dst: str, *, sync_dir: bool = True) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` through :func:`install_verified`; never overwrites. Returns (size, sha256)."""
    with open(src, "rb") as fin:
        return install_verified(iter(lambda: fin.read(CHUNK), b""), dst, sync_dir=sync_dir, like=src)


# --- the journal ---------------------------------------------------------------------------------------------

class FolderLock:
    """An exclusive, non-blocking lock on ``lock_path`` (:class:`cifar10.filelock.FileLock`, mode 0600, never
    through a symbolic link). The file's content is the folder's key (:meth:`key`, :meth:`new_key`)."""

    def __init__(self, lock_path: str | os.PathLike, *, busy: str, error: type[Exception] = JournalError):
        self.path = Path(lock_path)
        self.error = error
        self._lock = FileLock(self.path, mode=0o600, follow_symlinks=False)
        try:
            self._lock.acquire()
        except LockBusy:
            raise error(busy) from None
        except OSError as exc:
            raise error(f"cannot create {shown(self.path)}: {exc.strerror or exc}") from None
        self._fd = self._lock.fd

    def key(self) -> str:
        os.lseek(self._fd, 0, os.SEEK_SET)
        return os.read(self._fd, 256).decode("ascii", "replace").strip()

    def new_key(self) -> str:
        """A fresh random key, written (fsynced) before any journal line names it."""
        key = secrets.token_hex(16)
        try:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, key.encode("ascii"))
            os.fsync(self._fd)
        except OSError as exc:
            raise self.error(f"cannot write {shown(self.path)}: {exc.strerror or exc}") from None
        return key

    def release(self) -> None:
        self._lock.release()


def read_key(lock_path: str | os.PathLike) -> str:
    try:
        fd = os.open(lock_path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0))
    except OSError:
        return ""
    try:
        return os.read(fd, 256).decode("ascii", "replace").strip()
    except OSError:
        return ""
    finally:
        os.close(fd)


class Journal:
    """Append-only JSON lines in ``path``; every line is fsynced before it counts. Holds the folder's lock
    (``lock_path``, :class:`FolderLock`) from creation to :meth:`close`; ``busy`` is the one line said when another
    process holds it. Errors are raised as ``error`` (one line)."""

    def __init__(self, path: str | os.PathLike, lock_path: str | os.PathLike, *, busy: str,
                 error: type[Exception] = JournalError):
        self.path = Path(path)
        self.error = error
        self._fd = None
        self._lock = FolderLock(lock_path, busy=busy, error=error)

    def write(self, record: dict) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict]) -> None:
        """Append the records and fsync once (a group commit): all of them count, or (crash) a prefix.

        A write or fsync that fails (a full disk) is cut away again and raises the journal's error: no torn line is
        left for the next run to append to."""
        if not records:
            return
        data = "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in records).encode("ascii")
        try:
            if self._fd is None:
                new = not os.path.lexists(self.path)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | _NOFOLLOW
                                   | getattr(os, "O_BINARY", 0), 0o644)
                cut_torn_line(self._fd)
                if new:
                    fsync_dir(self.path.parent)
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise self.error(f"cannot write the journal {shown(self.path)}: {exc.strerror or exc}") from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, size)
                os.fsync(self._fd)
            except OSError:
                pass  # a torn line that is left is cut away before the next write (and ignored when read)
            raise self.error(f"cannot write the journal {shown(self.path)}: {exc.strerror or exc}") from None

    def key(self) -> str:
        return self._lock.key()

    def new_key(self) -> str:
        return self._lock.new_key()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lock.release()

    def records(self) -> list[dict]:
        return read_journal(self.path, self.error)


def cut_torn_line(fd: int) -> None:
    """Truncate the journal back to its last complete line: a line cut off (crash, full disk) was never acted
    on (begin lines are fsynced before their step), and the next line must not be glued to it."""

    def read_at(offset: int, count: int) -> bytes:
        os.lseek(fd, offset, os.SEEK_SET)  # appends still go to the end (O_APPEND)
        return os.read(fd, count)

    size = os.fstat(fd).st_size
    if size == 0 or read_at(size - 1, 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - 65536)
        cut = read_at(start, end - start).rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def read_journal(path: str | os.PathLike, error: type[Exception] = JournalError) -> list[dict]:
    """Every complete line of the journal at ``path`` (a line cut off by a crash is ignored: it was never acted
    on). A line that is not a JSON object raises ``error``; a journal that is a symbolic link is refused."""
    path = Path(path)
    if not os.path.lexists(path):
        return []
    if not is_regular_file(path):
        raise error(f"{shown(path)} is not a plain file (a link?); nothing was changed")
    records = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # the last line was being written when the process died
            try:
                record = json.loads(line.decode("utf-8", "surrogateescape"))
                if not isinstance(record, dict):
                    raise ValueError
            except ValueError:
                raise error(f"{shown(path)}: line {len(records) + 1} is not a journal record; "
                            "the journal was edited or damaged, so nothing was changed") from None
            records.append(record)
    return records


@dataclass
class StepState:
    """One journalled step with what is known about it: begun, done, undone."""

    begin: dict
    done: dict | None = None
    undone: bool = False


def steps_of(records: list[dict]) -> dict[str, StepState]:
    """The ``begin`` records by id (in journal order), each with its ``done`` and ``undone`` records."""
    steps: dict[str, StepState] = {}
    for record in records:
        op, step_id = record.get("op"), str(record.get("id"))
        if op == "begin":
            steps[step_id] = StepState(record)
        elif op == "done" and step_id in steps:
            steps[step_id].done = record
        elif op == "undone" and step_id in steps:
            steps[step_id].undone = True
    return steps


# --- the trust rules -------------------------------------------------------------------------------------------

def folder_identity(folder: str) -> tuple[str, int, int]:
    st = os.stat(folder)
    return os.path.realpath(folder), st.st_dev, st.st_ino


def folder_binding(folder: str, prefix: str) -> dict:
    """What a ``run`` line records of the folder its journal is bound to: ``{prefix, prefix_real, prefix_dev,
    prefix_ino}``."""
    real, dev, ino = folder_identity(folder)
    return {prefix: folder, f"{prefix}_real": real, f"{prefix}_dev": dev, f"{prefix}_ino": ino}


def check_binding(run: dict, folder: str, key: str, *, prefix: str, lock_name: str, done: str,
                  refuse: Callable[[str], Exception]) -> None:
    """Raise ``refuse(why)`` unless ``run`` was written for this very ``folder``: its recorded real path and
    (st_dev, st_ino) are the folder's now (a ``cp -r`` copy has another inode, a renamed folder another path), and
    its key is ``key``, the one in the folder's lock file (a journal written elsewhere or by hand cannot know it).
    ``done``: what the runs did to the folder ("sorted", "tagged"), for the messages."""
    real, dev, ino = folder_identity(folder)
    recorded = (run.get(f"{prefix}_dev"), run.get(f"{prefix}_ino"))
    if run.get(f"{prefix}_real") != real:
        if recorded == (dev, ino):
            raise refuse(f"this folder was moved or renamed since it was {done} (it was "
                         f"{shown(str(run.get(f'{prefix}_real')))}): move it back there to undo or go on")
        raise refuse(f"it was written for another folder ({shown(str(run.get(f'{prefix}_real')))}): this folder is "
                     "a copy of it, or the journal was put here; delete the journal to use this as a plain folder")
    if recorded != (dev, ino):
        raise refuse("it was written for another folder that was at this path (this one is a copy, or was "
                     "restored from a backup); delete the journal to use this as a plain folder")
    if not key or not hmac.compare_digest(os.fsencode(str(run.get("key", ""))), os.fsencode(key)):
        raise refuse(f"it does not match this folder's key in {lock_name} (the journal was copied or edited, "
                     "or the lock file was deleted)")


def is_plain_path(path) -> bool:
    return isinstance(path, str) and os.path.isabs(path) and os.path.normpath(path) == path and "\0" not in path


def path_in_folders(path, folders: list, realpath=os.path.realpath) -> bool:
    """``path`` is one of ``folders`` (files or folders the user named), or lies in one of them (also after
    following links: a folder replaced by a link to elsewhere does not count)."""
    if not is_plain_path(path):
        return False
    for root in folders:
        if not is_plain_path(root):
            continue
        if path == root:
            return True
        if path.startswith(root.rstrip(os.sep) + os.sep):
            real_root = realpath(root)
            real_parent = realpath(os.path.dirname(path))
            try:
                if os.path.commonpath([real_root, real_parent]) == real_root:
                    return True
            except ValueError:  # another drive
                continue
    return False
