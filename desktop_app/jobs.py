"""The background job: load the model (if needed), scan the dropped paths, classify in batches.

A plain generator with no Qt in it: desktop_app.job_runner runs it on a superqt worker thread and turns
its tagged messages into signals on the GUI thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from cifar10.inference import Classifier, Result, iter_image_files, iter_result_batches
from cifar10.preprocess import IMAGE_SUFFIXES
from cifar10.registry import ModelInfo

# Each row keeps its model input for the table's thumbnail and the preview. Inputs larger than this (photo
# models: 128 px and more, 48 KB+ a row) are kept as a THUMB x THUMB thumbnail instead (3 KB, as a CIFAR-10
# row), so 20,000 photos do not hold a gigabyte; the preview decodes the full model input of the row it shows.
KEEP_INPUT_UP_TO = 64
THUMB = 32


@dataclass
class Job:
    paths: list[str]                       # files and/or folders as dropped, or already-expanded files
    model: ModelInfo
    provider: str = "auto"
    classifier: Classifier | None = None   # reuse a loaded session when the window has one
    known: dict = field(default_factory=dict)  # path_key -> file_stamp() of a row already made: read again only
                                           # if the file changed since (replaced, edited, deleted)
    batch_size: int = 128
    measure_speed: bool = False            # also time the model on this machine (model_speed.py)
    stop: threading.Event = field(default_factory=threading.Event)
    job_id: int = 0


def path_key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def file_stamp(path: str) -> tuple | None:
    """What tells one version of a file from another: (mtime, size, inode); None when it cannot be stat()ed (gone).
    Taken before the file is read, so a change while it is read shows as a change the next time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def is_image_name(path: str) -> bool:
    """Whether the file's extension is one of the image formats the apps read. The window loads only those: a
    folder's notes.txt or .pdf is skipped and counted ("2 other files skipped"), not an error row. (A file with
    an image extension that cannot be decoded still gets an error row: that one is worth telling.)"""
    return os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES


def run_job(job: Job) -> Iterator[tuple[str, object]]:
    """Yields ("classifier", Classifier), ("speed", (ModelInfo, images/s)) if asked, ("files", ([image paths],
    [skipped non-image paths], {image path: file_stamp})), then ("batch", [Result, ...]) per batch. A file in
    ``job.known`` is left out while its stamp is the one recorded there."""
    classifier = job.classifier
    if classifier is None or classifier.model.onnx_path != job.model.onnx_path:
        classifier = Classifier(job.model, provider=job.provider)
    yield "classifier", classifier
    if job.measure_speed:
        from desktop_app.model_speed import measure

        yield "speed", (job.model, measure(classifier))
    files, skipped, stamps = [], [], {}
    unknown = object()
    for path in iter_image_files(job.paths):
        if job.stop.is_set():
            return
        if not is_image_name(path):
            if path_key(path) not in job.known:
                skipped.append(path)
            continue
        stamp = file_stamp(path)
        if job.known.get(path_key(path), unknown) != stamp:
            files.append(path)
            stamps[path] = stamp
    yield "files", (files, skipped, stamps)
    for batch in iter_result_batches(classifier, files, job.batch_size, should_stop=job.stop.is_set,
                                     keep_images=True):
        if classifier.image_size > KEEP_INPUT_UP_TO:
            shrink_inputs(batch)
        yield "batch", batch
        if job.stop.is_set():
            return


def shrink_inputs(batch: list[Result], size: int = THUMB) -> None:
    """Replace each kept model input by a ``size`` x ``size`` thumbnail (area average: no aliasing)."""
    from PIL import Image

    for result in batch:
        if result.image is not None and max(result.image.shape[:2]) > size:
            thumb = Image.fromarray(result.image).resize((size, size), Image.Resampling.BOX)
            result.image = np.asarray(thumb, dtype=np.uint8)
