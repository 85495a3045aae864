"""An exclusive, non-blocking OS lock on a file (fcntl.flock; msvcrt on Windows), released when the process
ends however it ends (kill -9 included): what ``cifar10 organize`` holds on its DST and ``cifar10 classify --output``
on its journal, so two runs never interleave their steps in one journal.

The lock file may be deleted by its holder when it is done (a folder cleaned up after a run). A waiter that
opened the old file before it was deleted could then lock a file nobody else sees; :class:`FileLock`
therefore checks, once it holds the lock, that the path still names the file it locked, and tries again.
"""

from __future__ import annotations

import os
from pathlib import Path


class LockBusy(OSError):
    """Another process holds the lock."""


class FileLock:
    def __init__(self, path: str | os.PathLike, *, mode: int = 0o644, follow_symlinks: bool = True):
        """``follow_symlinks=False``: a symbolic link at ``path`` is refused (OSError), never opened: a link
        planted there could otherwise make the holder write its state into any file."""
        self.path = Path(path)
        self.mode = mode
        self._flags = 0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0)
        self._fd: int | None = None

    def acquire(self) -> "FileLock":
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
                         | self._flags,
                         self.mode)
            try:
                _lock(fd)
            except OSError:
                os.close(fd)
                raise LockBusy(f"{self.path} is locked by another process") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return self
            os.close(fd)  # its holder deleted it as we opened it: lock the new one
        raise LockBusy(f"{self.path} keeps being replaced")

    def release(self, *, delete: bool = False) -> None:
        """Unlock (``delete``: remove the lock file first, while still holding it)."""
        if self._fd is None:
            return
        if delete:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        os.close(self._fd)  # closing the descriptor releases the lock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def fd(self) -> int:
        """The locked file's descriptor (its holder may keep a little state in the file)."""
        if self._fd is None:
            raise ValueError(f"{self.path} is not locked")
        return self._fd

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(fd: int) -> None:
    if os.name == "nt":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
