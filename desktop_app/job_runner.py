"""Runs classification jobs off the GUI thread: :func:`desktop_app.jobs.run_job` (a plain generator, no Qt)
on a superqt generator worker (``superqt.utils.create_worker``, as napari does).

The runner hands the generator's tagged messages, on the GUI thread, to the session
(:meth:`desktop_app.session.Session.on_job_message`, then ``on_job_finished``) and drops any that a cancelled
or replaced job still had queued, so the window never sees a stale batch.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from superqt.utils import GeneratorWorker, WorkerBase, create_worker

from desktop_app.jobs import Job, run_job


class ClassifyRunner(QObject):
    """At most one job at a time; implements :class:`desktop_app.session.Runner`. ``finished`` is always the
    last signal of a job."""

    failed = Signal(str)               # "ExceptionType: message"
    finished = Signal(object)          # the Job (check job.stop.is_set() for cancelled)

    def __init__(self, session=None, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self._job: Job | None = None
        self._worker: GeneratorWorker | None = None
        self._error: str | None = None

    @property
    def job(self) -> Job | None:
        return self._job

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, job: Job) -> None:
        if self._job is not None:
            raise RuntimeError("a job is already running: cancel it and wait for `finished` first")
        self._job, self._error = job, None
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
        if job is self._job and self.session is not None:
            kind, payload = message
            self.session.on_job_message(job, kind, payload)

    def _failed(self, job: Job, exc: Exception) -> None:
        if job is self._job:
            self._error = f"{type(exc).__name__}: {exc}"
            self.failed.emit(self._error)

    def _finished(self, job: Job) -> None:
        if job is self._job:
            self._job, self._worker = None, None
            if self.session is not None:
                self.session.on_job_finished(job, self._error)
            self.finished.emit(job)

    @staticmethod
    def wait_all(msecs: int = 5000) -> None:
        """Stop every running worker and wait for it (window close)."""
        try:
            WorkerBase.await_workers(msecs)
        except RuntimeError:
            pass  # a worker still decoding a huge file: it ends on its own, nothing is written by it
