"""CIFAR-10 train/validation/test splits for training, on the TensorFlow-free reader in :mod:`cifar10.dataset`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10.dataset import (  # noqa: F401  (re-exported: training code and tests import them from here)
    ARCHIVE_DIR_NAME, CIFAR10_SHA256, CIFAR10_URL, ENV_VAR, TEST_BATCH, TRAIN_BATCHES, DataError, Split,
    check_batches, default_cache_dir, download_archive, load_batch, resolve_data_dir)

VALIDATION_SIZE = 5000  # the last 5,000 training images: early stopping and model selection


@dataclass(frozen=True)
class Cifar10:
    train: Split
    val: Split
    test: Split
    source: Path

    def describe(self) -> dict:
        return {
            "source": str(self.source),
            "train": len(self.train),
            "validation": len(self.val),
            "validation_rows": ("the last training images (end of data_batch_5), held out from training"
                                if len(self.val) else "none: trained on all training images, fixed schedule"),
            "test": len(self.test),
        }


def load_cifar10(data_dir: str | os.PathLike | None = None, *, validation_size: int = VALIDATION_SIZE,
                 limit: int | None = None) -> Cifar10:
    """Train/validation/test splits. ``limit`` keeps the first N of each split (tests, smoke runs)."""
    path = resolve_data_dir(data_dir)
    batches = [load_batch(path / name) for name in TRAIN_BATCHES]
    x = np.concatenate([b.x for b in batches])
    y = np.concatenate([b.y for b in batches])
    cut = len(y) - validation_size
    if cut <= 0:
        raise DataError(f"{path} holds {len(y)} training images: too few to hold out {validation_size} "
                        "for validation.")
    train, val = Split(x[:cut], y[:cut]), Split(x[cut:], y[cut:])
    test = load_batch(path / TEST_BATCH)
    if limit:
        train, val, test = (Split(s.x[:limit], s.y[:limit]) for s in (train, val, test))
    return Cifar10(train=train, val=val, test=test, source=path)
