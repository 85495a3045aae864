"""One long task off the GUI thread for the dialogs (evaluate a folder, plan/sort/undo an organize), on a
superqt worker as the classification jobs are. The task gets ``on_progress(done, total)`` and
``should_stop()``; progress, the result and errors come back as signals on the GUI thread."""

from __future__ import annotations

import threading
import time
from typing import Callable

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Signal
from superqt.utils import create_worker


class BackgroundTask(QObject):
    progress = Signal(int, int)   # done, total (emitted from the worker: Qt queues it to the GUI thread)
    succeeded = Signal(object)    # the task's return value
    failed = Signal(str)          # "message" (OSError/ValueError text, or "Type: message")
    finished = Signal()           # always last

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._stop = threading.Event()
        self._worker = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(self, task: Callable, *args, **kwargs) -> None:
        if self._worker is not None:
            raise RuntimeError("a task is already running")
        self._stop.clear()

        def run():
            return task(*args, on_progress=self.progress.emit, should_stop=self._stop.is_set, **kwargs)

        worker = create_worker(run, _start_thread=False, _ignore_errors=True)  # errors go to `failed`
        worker.returned.connect(self.succeeded.emit)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    @property
    def stopping(self) -> bool:
        """Asked to stop (cancel), and not over yet."""
        return self._worker is not None and self._stop.is_set()

    def cancel(self) -> None:
        self._stop.set()

    def _on_error(self, exc: Exception) -> None:
        text = str(exc) if isinstance(exc, (OSError, ValueError, RuntimeError)) and str(exc) else \
            f"{type(exc).__name__}: {exc}"
        self.failed.emit(text)

    def _on_finished(self) -> None:
        self._worker = None
        self.finished.emit()

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until the task is over (tests, scripts); False on timeout."""
        deadline = time.perf_counter() + timeout_s
        while self._worker is not None and time.perf_counter() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QCoreApplication.processEvents()
        return self._worker is None
