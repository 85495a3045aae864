"""An exclusive, non-blocking OS lock on a file (fcntl.flock; msvcrt on Windows), released when the process
ends however it ends (kill -9 included). The same idea as :class:`cifar10.organize._DestinationLock`, shared
so that other writers (``cifar10 classify --output``'s journal) can use it.

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
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> "FileLock":
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
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
