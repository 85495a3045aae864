"""The background job: load the model (if needed), scan the dropped paths, classify in batches.

A plain generator with no Qt in it: desktop_app.job_runner runs it on a superqt worker thread and turns
its tagged messages into signals on the GUI thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Iterator

from cifar10.inference import Classifier, iter_image_files, iter_result_batches
from cifar10.registry import ModelInfo


@dataclass
class Job:
    paths: list[str]                       # files and/or folders as dropped, or already-expanded files
    model: ModelInfo
    provider: str = "auto"
    classifier: Classifier | None = None   # reuse a loaded session when the window has one
    known: frozenset = frozenset()         # normalised paths already in the table: not added twice
    batch_size: int = 128
    stop: threading.Event = field(default_factory=threading.Event)
    job_id: int = 0


def path_key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def run_job(job: Job) -> Iterator[tuple[str, object]]:
    """Yields ("classifier", Classifier), ("files", [paths]), then ("batch", [Result, ...]) per batch."""
    classifier = job.classifier
    if classifier is None or classifier.model.onnx_path != job.model.onnx_path:
        classifier = Classifier(job.model, provider=job.provider)
    yield "classifier", classifier
    files = []
    for path in iter_image_files(job.paths):
        if job.stop.is_set():
            return
        if path_key(path) not in job.known:
            files.append(path)
    yield "files", files
    for batch in iter_result_batches(classifier, files, job.batch_size, should_stop=job.stop.is_set,
                                     keep_images=True):
        yield "batch", batch
        if job.stop.is_set():
            return
