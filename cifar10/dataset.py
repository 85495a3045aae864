"""CIFAR-10 in the official python layout: find it, download it (hash-checked), read its batches.

numpy and the standard library only (no TensorFlow): ``cifar10 evaluate`` reads the test batch in the
apps' install, and training (:mod:`training.data`) builds its splits on the same functions.

Where the data comes from, first match wins:
1. ``data_dir`` given by the caller (``--data-dir``),
2. the ``CIFAR10_DIR`` environment variable,
3. the user cache (``~/.cache/cifar10-studio/cifar-10-batches-py``), downloaded there from the
   official URL on first use and checked against its published sha256.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10.errors import UserFacingError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
ARCHIVE_DIR_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
ENV_VAR = "CIFAR10_DIR"


class DataError(UserFacingError, RuntimeError):
    """CIFAR-10 is missing, partial or corrupt; the message says which file and what to do."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 [N, 32, 32, 3], raw RGB
    y: np.ndarray  # int64 [N], class ids

    def __len__(self) -> int:
        return len(self.y)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cifar10-studio"


def resolve_data_dir(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                     url: str = CIFAR10_URL, sha256: str = CIFAR10_SHA256,
                     cache_dir: Path | None = None) -> Path:
    """Return a directory holding the official batches, downloading them if allowed."""
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit:
        path = Path(explicit).expanduser()
        check_batches(path, origin=f"--data-dir / ${ENV_VAR} ({path})")
        return path
    cache_dir = cache_dir or default_cache_dir()
    path = cache_dir / ARCHIVE_DIR_NAME
    if not all((path / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH)):
        if not download:
            raise DataError(f"CIFAR-10 not found in {path}; pass --data-dir or set ${ENV_VAR}.")
        download_archive(url, cache_dir, sha256)
    check_batches(path, origin=f"the cache ({path})")
    return path


def download_archive(url: str, cache_dir: Path, sha256: str) -> Path:
    """Download the archive into cache_dir, verify its sha256, then unpack it there."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / Path(url).name
    if not (archive.is_file() and _sha256(archive) == sha256):
        partial = archive.with_suffix(archive.suffix + ".part")
        print(f"Downloading {url} -> {archive}", file=sys.stderr)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if total:
                        print(f"\r  {done / 1e6:6.1f} / {total / 1e6:.1f} MB", end="", file=sys.stderr)
            print(file=sys.stderr)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DataError(f"Could not download CIFAR-10 from {url}: {exc}. Download it by hand "
                            f"and pass --data-dir, or set ${ENV_VAR}.") from exc
        actual = _sha256(partial)
        if actual != sha256:
            partial.unlink(missing_ok=True)
            raise DataError(f"Downloaded archive from {url} has sha256 {actual}, expected {sha256}; "
                            "it was deleted. Try again, or download it by hand and pass --data-dir.")
        partial.replace(archive)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(cache_dir, filter="data")
    return cache_dir / ARCHIVE_DIR_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_batches(path: Path, origin: str) -> None:
    if not path.is_dir():
        raise DataError(f"CIFAR-10 directory {path} from {origin} does not exist. It must hold the "
                        f"official python batches ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH}).")
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if not (path / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 directory {path} from {origin} is missing {', '.join(missing)}. "
                        f"Unpack the complete {Path(CIFAR10_URL).name} there.")


def load_batch(path: Path) -> Split:
    """Read one official batch file into NHWC uint8 images and int labels."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 batch {path} does not exist.") from None
    except Exception as exc:  # truncated pickle, wrong file, missing key: all mean "corrupt"
        raise DataError(f"CIFAR-10 batch {path} is corrupt or not a CIFAR-10 batch "
                        f"({type(exc).__name__}: {exc}). Delete it and download the data again.") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"CIFAR-10 batch {path} has data of shape {data.shape} and {len(labels)} "
                        "labels; expected (N, 3072) and N labels. Download the data again.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"CIFAR-10 batch {path} has labels outside 0..9.")
    # Each row is 1024 R, then 1024 G, then 1024 B values in row-major order.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Split(np.ascontiguousarray(images), labels)



def load_test_set(data_dir: str | os.PathLike | None = None, *, limit: int | None = None,
                  download: bool = True) -> Split:
    """The 10,000 test images (or the first ``limit``): what every card's test accuracy is measured on."""
    split = load_batch(resolve_data_dir(data_dir, download=download) / TEST_BATCH)
    return Split(split.x[:limit], split.y[:limit]) if limit else split
