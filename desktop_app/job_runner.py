"""Runs classification jobs off the GUI thread: :func:`desktop_app.jobs.run_job` (a plain generator, no Qt)
on a superqt generator worker (``superqt.utils.create_worker``, as napari does).

The runner turns the generator's tagged messages into signals on the GUI thread and drops any that a
cancelled or replaced job still had queued, so the window never sees a stale batch.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from superqt.utils import GeneratorWorker, WorkerBase, create_worker

from desktop_app.jobs import Job, run_job


class ClassifyRunner(QObject):
    """At most one job at a time. Signals carry the job's payloads; ``finished`` is always the last one."""

    classifier_ready = Signal(object)  # the Classifier the job loaded (the window caches it)
    speed_measured = Signal(object)    # (ModelInfo, images per second on this machine)
    files_found = Signal(object)       # list[str]: the files the job will classify
    batch_ready = Signal(object)       # list[Result]: one classified batch, in input order
    failed = Signal(str)               # "ExceptionType: message"
    finished = Signal(object)          # the Job (check job.stop.is_set() for cancelled)

    _SIGNAL_OF = {"classifier": "classifier_ready", "speed": "speed_measured", "files": "files_found",
                  "batch": "batch_ready"}

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._job: Job | None = None
        self._worker: GeneratorWorker | None = None

    @property
    def job(self) -> Job | None:
        return self._job

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, job: Job) -> None:
        if self._job is not None:
            raise RuntimeError("a job is already running: cancel it and wait for `finished` first")
        self._job = job
        worker = create_worker(run_job, job, _start_thread=False, _ignore_errors=True)  # errors: `failed`
        # Each connection remembers its job: messages of an older job are dropped in _deliver.
        worker.yielded.connect(lambda message, job=job: self._deliver(job, message))
        worker.errored.connect(lambda exc, job=job: self._failed(job, exc))
        worker.finished.connect(lambda job=job: self._finished(job))
        self._worker = worker
        worker.start()

    def cancel(self) -> None:
        """Ask the job to stop after the batch being decoded; ``finished`` follows."""
        if self._job is not None:
            self._job.stop.set()
            if self._worker is not None:
                self._worker.quit()

    def _deliver(self, job: Job, message: tuple[str, object]) -> None:
        if job is self._job:
            kind, payload = message
            getattr(self, self._SIGNAL_OF[kind]).emit(payload)

    def _failed(self, job: Job, exc: Exception) -> None:
        if job is self._job:
            self.failed.emit(f"{type(exc).__name__}: {exc}")

    def _finished(self, job: Job) -> None:
        if job is self._job:
            self._job, self._worker = None, None
            self.finished.emit(job)

    @staticmethod
    def wait_all(msecs: int = 5000) -> None:
        """Stop every running worker and wait for it (window close)."""
        try:
            WorkerBase.await_workers(msecs)
        except RuntimeError:
            pass  # a worker still decoding a huge file: it ends on its own, nothing is written by it
