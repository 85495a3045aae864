"""A progress line for long command-line runs: count, files/s and an ETA (both classify engines use it)."""

from __future__ import annotations

import sys
import time
from typing import IO


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:34``, ``1:02:03``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_progress(done: int, total: int, elapsed: float, *, skipped: int = 0) -> str:
    """``1,024/10,000 files  2,150 files/s  ETA 0:04`` (the rate and ETA count this run's files only;
    ``skipped`` files, already done by an earlier run, are counted as done but not in the rate)."""
    rate = (done - skipped) / elapsed if elapsed > 0 else 0.0
    line = f"{done:,}/{total:,} files  {rate:,.0f} files/s"
    if done >= total:
        return line + "  done"
    eta = format_duration((total - done) / rate) if rate > 0 else "?"
    return line + f"  ETA {eta}"


class ProgressLine:
    """Prints :func:`format_progress` to ``stream``: rewritten in place on a terminal (at most 10 times
    a second), one line every ``log_every`` seconds otherwise (logs of cluster jobs)."""

    def __init__(self, total: int, *, skipped: int = 0, stream: IO[str] | None = None, log_every: float = 10.0,
                 enabled: bool = True):
        self.total, self.skipped, self.done = total, skipped, skipped
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled, self.log_every = enabled, log_every
        self.start = time.perf_counter()
        self._last = self.start if not self.tty else 0.0  # logs: the first line after log_every
        self._printed = False

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.perf_counter()
        interval = 0.1 if self.tty else self.log_every
        if now - self._last < interval and done < self.total:
            return
        if not self.tty and done >= self.total and not self._printed:
            return  # a short run in a log: the summary line says it all
        self._last = now
        line = format_progress(done, self.total, now - self.start, skipped=self.skipped)
        if self.tty:
            self.stream.write("\r" + line + "   ")
        else:
            self.stream.write(line + "\n")
        self._printed = True
        self.stream.flush()

    def advance(self, count: int) -> None:
        self.update(self.done + count)

    def close(self) -> None:
        if self.enabled and self.tty and self._printed:
            self.stream.write("\n")
            self.stream.flush()
