"""Decode a folder dataset's images once, at the model's input size, into a memory-mapped array on disk.

Each file is decoded by :func:`cifar10.preprocess.load_image` with ``size=S`` -- the very call the apps make
on the same file, so what a model learns from is byte-identical to what the apps feed it -- and written to
row ``i`` of a ``uint8 [N, S, S, 3]`` ``.npy`` file opened with ``np.lib.format.open_memmap``. A 26,000-photo
dataset is never held as full-size images: a thread pool (Pillow releases the GIL while decoding) keeps
only a few files in flight, and the rows go straight to the file.

Cache folder: ``<cache_dir>/<folder name>-<S>px-<hash of the resolved folder path and S>/`` with
``manifest.json`` (every file's path, size, mtime, outcome and content hash) and ``images-<token>.npy``.
The default ``cache_dir`` is the user cache (``~/.cache/cifar10-studio/datasets`` on Linux).

* **Reuse.** When every file's (path, size, mtime) matches the manifest, nothing is decoded. When some
  changed (or were added), only those are decoded; the unchanged rows are copied from the old array.
* **Crash safety.** The array is written under a temporary name, then renamed to a fresh unique name, then
  the manifest is replaced atomically (``os.replace``): the manifest is the commit, so a build killed at
  any point leaves either the previous complete cache or none, never a half-written one that is reused.
* **One builder at a time.** An OS file lock (fcntl / msvcrt) on the cache folder: a second process
  waits, then reuses what the first built.
* **Bad files.** Unreadable or corrupt files are recorded with their reason (their row stays zeros,
  ``ok[i]`` is False); the build goes on.
* **Duplicates.** Every file's content hash (BLAKE2b) is recorded; :func:`duplicate_groups` finds files
  with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cifar10.errors import UserFacingError
from cifar10.preprocess import ImageError, load_image

CACHE_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
Progress = Callable[[int, int], None]


class CacheError(UserFacingError):
    """The cache could not be written (disk full, no permission): the message says where and why."""


def default_cache_dir() -> Path:
    """``~/.cache/cifar10-studio/datasets`` (``$XDG_CACHE_HOME`` honoured): next to the CIFAR-10 download."""
    from cifar10.dataset import default_cache_dir as studio_cache

    return studio_cache() / "datasets"


@dataclass
class CachedImages:
    """Decoded images: ``images[i]`` is ``files[i]`` as ``load_image(files[i], size=size)`` returns it."""

    images: np.ndarray                 # uint8 [N, S, S, 3], read-only memmap; zeros where ok[i] is False
    files: list[str]
    ok: np.ndarray                     # bool [N]
    errors: dict[str, str]             # path -> why it could not be decoded
    digests: list[str]                 # BLAKE2b of each file's bytes ("" when it could not be read)
    size: int
    folder: Path | None                # the cache folder (None for an empty file list)
    decoded: int = 0                   # files decoded by this call (0: everything came from the cache)
    reused: int = 0                    # rows taken from an earlier build
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.files)

    @property
    def failed(self) -> list[tuple[str, str]]:
        return list(self.errors.items())


@dataclass
class _Entry:
    path: str
    size: int = -1
    mtime_ns: int = -1
    ok: bool = False
    error: str = ""
    digest: str = ""

    def key(self) -> tuple:
        return self.path, self.size, self.mtime_ns

    def row(self) -> list:
        return [self.path, self.size, self.mtime_ns, self.ok, self.error, self.digest]


@dataclass
class _Build:
    entries: list[_Entry] = field(default_factory=list)
    decoded: int = 0
    reused: int = 0


def cache_folder(root: str | os.PathLike, size: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder of dataset folder ``root`` at input size ``size``."""
    resolved = str(Path(root).expanduser().resolve())
    digest = hashlib.blake2b(f"{CACHE_VERSION}\0{resolved}\0{size}".encode("utf-8", "surrogateescape"),
                             digest_size=8).hexdigest()
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in (Path(resolved).name or "root"))[:40]
    return Path(cache_dir or default_cache_dir()) / f"{stem}-{size}px-{digest}"


def cache_images(files: Sequence[str], size: int, *, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                 progress: Progress | None = None, workers: int | None = None) -> CachedImages:
    """Decode ``files`` at ``size`` x ``size`` into the cache of dataset folder ``root`` (or reuse it).

    ``progress(done, total)`` is called from this thread as files are done (throttled, always with the
    first and the last count). Raises :class:`CacheError` when the cache cannot be written.
    """
    started = time.perf_counter()
    files = [os.fspath(f) for f in files]
    if not files:
        if progress is not None:
            progress(0, 0)
        return CachedImages(np.zeros((0, size, size, 3), np.uint8), [], np.zeros(0, bool), {}, [], size, None,
                            seconds=time.perf_counter() - started)
    folder = cache_folder(root, size, cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = _Lock(folder / LOCK)
    except OSError as exc:
        raise CacheError(f"cannot create the image cache {folder}: {exc.strerror or exc}") from None
    try:
        current = [_stat(path) for path in files]
        old = _read_manifest(folder, size)
        if old is not None and [e.key() for e in old[1]] == [e.key() for e in current]:
            images_file, entries = old
            if progress is not None:
                progress(len(files), len(files))
            build = _Build(entries, 0, len(entries))
        else:
            _remove_leftovers(folder)
            images_file, build = _build(folder, current, size, old, progress, workers)
        images = np.load(folder / images_file, mmap_mode="r")
    except OSError as exc:
        raise CacheError(f"cannot write the image cache in {folder}: {exc.strerror or exc}") from None
    finally:
        lock.release()
    entries = build.entries
    return CachedImages(images=images, files=files, ok=np.array([e.ok for e in entries], bool),
                        errors={e.path: e.error for e in entries if not e.ok},
                        digests=[e.digest for e in entries], size=size, folder=folder,
                        decoded=build.decoded, reused=build.reused, seconds=time.perf_counter() - started)


def duplicate_groups(digests: Sequence[str]) -> list[list[int]]:
    """Indices of files with the same bytes (same digest), each group sorted, groups in first-index order."""
    by_digest: dict[str, list[int]] = {}
    for i, digest in enumerate(digests):
        if digest:
            by_digest.setdefault(digest, []).append(i)
    return [group for group in by_digest.values() if len(group) > 1]


def decode_file(path: str, size: int) -> tuple[np.ndarray | None, str, str]:
    """``(image or None, error reason, content digest)`` for one file; never raises."""
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    except OSError as exc:
        return None, f"cannot read the file ({exc.strerror or exc})", ""
    try:
        return load_image(path, size=size), "", digest
    except ImageError as exc:
        return None, exc.reason, digest
    except Exception as exc:  # one odd file must never end a 26,000-file build
        return None, f"unexpected error decoding: {type(exc).__name__}: {exc}", digest


# --- internals --------------------------------------------------------------------------------------------

def _stat(path: str) -> _Entry:
    try:
        st = os.stat(path)
        return _Entry(path, st.st_size, st.st_mtime_ns)
    except OSError:
        return _Entry(path)


def _read_manifest(folder: Path, size: int) -> tuple[str, list[_Entry]] | None:
    """The committed build (images file name, entries), or None when there is none or it is unusable."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("version") != CACHE_VERSION or manifest.get("size") != size:
            return None
        entries = [_Entry(*row) for row in manifest["files"]]
        images_file = str(manifest["images"])
        array = np.load(folder / images_file, mmap_mode="r")
        if array.shape != (len(entries), size, size, 3) or array.dtype != np.uint8:
            return None
        return images_file, entries
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of killed builds (we hold the lock: no other build is running)."""
    for path in folder.glob("*.tmp*"):
        try:
            path.unlink()
        except OSError:
            pass


def _build(folder: Path, current: list[_Entry], size: int, old: tuple[str, list[_Entry]] | None,
           progress: Progress | None, workers: int | None) -> tuple[str, _Build]:
    total = len(current)
    previous: dict[tuple, tuple[int, _Entry]] = {}
    old_images = None
    if old is not None:
        old_images = np.load(folder / old[0], mmap_mode="r")
        previous = {e.key(): (i, e) for i, e in enumerate(old[1]) if e.size >= 0}
    token = secrets.token_hex(6)
    tmp = folder / f"images-{token}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(total, size, size, 3))
    build = _Build()
    todo: list[int] = []
    for i, entry in enumerate(current):
        hit = previous.get(entry.key())
        if hit is not None:
            j, before = hit
            if before.ok:
                out[i] = old_images[j]
            build.entries.append(before)
            build.reused += 1
        else:
            build.entries.append(entry)
            todo.append(i)
    del old_images
    reporter = _Reporter(progress, total)
    reporter(build.reused)
    workers = workers or min(8, os.cpu_count() or 2)
    done = build.reused
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cifar10-cache") as pool:
        pending: deque = deque()
        queue = iter(todo)
        for i in queue:  # keep a few files per worker in flight: memory stays flat
            pending.append((i, pool.submit(decode_file, current[i].path, size)))
            if len(pending) >= workers * 4:
                done = _take(pending.popleft(), out, build, done, reporter)
        while pending:
            done = _take(pending.popleft(), out, build, done, reporter)
    reporter(done, final=True)
    out.flush()
    del out
    final = f"images-{token}.npy"
    os.replace(tmp, folder / final)
    manifest = {"version": CACHE_VERSION, "size": size, "images": final, "created": time.time(),
                "files": [e.row() for e in build.entries]}
    tmp_manifest = folder / f"{MANIFEST}.tmp"
    tmp_manifest.write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(tmp_manifest, folder / MANIFEST)  # the commit point
    for path in folder.glob("images-*.npy"):
        if path.name != final:
            try:
                path.unlink()
            except OSError:  # Windows: still mapped by a live CachedImages; removed by a later build
                pass
    return final, build


def _take(item, out: np.ndarray, build: _Build, done: int, reporter) -> int:
    i, future = item
    image, error, digest = future.result()
    entry = build.entries[i]
    entry.digest, entry.error, entry.ok = digest, error, image is not None
    if image is not None:
        out[i] = image
    build.decoded += 1
    reporter(done + 1)
    return done + 1


class _Reporter:
    def __init__(self, progress: Progress | None, total: int, interval: float = 0.1):
        self.progress, self.total, self.interval = progress, total, interval
        self.last = -1.0
        self.last_done = -1

    def __call__(self, done: int, final: bool = False) -> None:
        if self.progress is None or done == self.last_done:
            return
        now = time.monotonic()
        if final or self.last < 0 or now - self.last >= self.interval or done == self.total:
            self.progress(done, self.total)
            self.last, self.last_done = now, done


class _Lock:
    """Blocking exclusive lock on a file (fcntl.flock; msvcrt on Windows); a killed holder leaves none."""

    def __init__(self, path: Path):
        self._file = open(path, "a+b")
        if os.name == "nt":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(self._file.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s: keep waiting
                    continue
        else:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
