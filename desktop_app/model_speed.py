"""How fast a model runs on this machine: images per second of onnxruntime inference on a batch of 32
(decoding not included), measured once per model file (at its first use, on the job's worker thread:
about 72 images' worth of inference) and remembered in the settings."""

from __future__ import annotations

import os
import time

import numpy as np

BATCH = 32


def measure(classifier, *, repeats: int = 2) -> float:
    """Best of ``repeats`` timed batches of 32 images at the model's input size (after a small warm-up batch);
    images per second."""
    size = getattr(classifier, "image_size", 32)
    batch = np.random.default_rng(0).integers(0, 256, (BATCH, size, size, 3), dtype=np.uint8)
    classifier.predict(batch[:8])  # warm-up: first-run allocations are not speed
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict(batch)
        best = min(best, time.perf_counter() - start)
    return BATCH / max(best, 1e-9)


def settings_key(model) -> str:
    """Per model file and version: a re-exported model is measured again."""
    try:
        stamp = os.stat(model.onnx_path).st_mtime_ns
    except OSError:
        stamp = 0
    return f"speed/{model.name}/{stamp}"


def describe(images_per_s: float | None) -> str:
    if images_per_s is None:
        return "speed on this machine: measured at the first use"
    return f"{images_per_s:,.0f} images/s on this machine"
