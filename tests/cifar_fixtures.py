"""Tiny CIFAR-10 datasets in the official python layout, written by the tests themselves."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from training.data import ARCHIVE_DIR_NAME, TEST_BATCH, TRAIN_BATCHES

SHARED_CIFAR = Path(os.environ.get("CIFAR10_DIR") or Path(__file__).resolve().parents[2] / "shared/data/cifar-10-batches-py")


def make_batch(n: int, seed: int) -> dict:
    """Images whose mean colour depends on the label, so even a tiny model can learn something."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 64, (n, 3, 32, 32)) + (labels * 19)[:, None, None, None]
    return {b"batch_label": b"synthetic", b"labels": labels.tolist(),
            b"data": images.astype(np.uint8).reshape(n, 3072),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def write_dataset(directory: Path, per_batch: int = 40) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        with open(directory / name, "wb") as f:
            pickle.dump(make_batch(per_batch, seed), f, protocol=2)
    return directory


def make_archive(path: Path, per_batch: int = 10) -> bytes:
    """A cifar-10-python.tar.gz look-alike holding a tiny dataset; returns its bytes."""
    staging = path.parent / "staging"
    write_dataset(staging / ARCHIVE_DIR_NAME, per_batch)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(staging / ARCHIVE_DIR_NAME, arcname=ARCHIVE_DIR_NAME)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


class StopAfter:
    """A Keras callback that interrupts fit after ``epoch`` epochs, as Ctrl+C would (the checkpoint is written)."""

    def __new__(cls, epoch: int):
        import keras

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, index, logs=None):
                if index + 1 == epoch:
                    raise KeyboardInterrupt

        return Stop()
