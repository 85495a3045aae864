"""Datasets for training: CIFAR-10 (the default) or a folder of labelled images, as train/validation/test splits.

* :func:`load_cifar10` reads the official batches with the TensorFlow-free reader in :mod:`cifar10.dataset`.
* :func:`load_folder_dataset` scans a labelled folder (:mod:`cifar10.image_folders`), decodes every image
  once at the model's input size into a memory-mapped cache (:mod:`cifar10.image_cache`: the same
  ``load_image(path, size=S)`` call the apps make), leaves out unreadable files and duplicates (listed in
  ``Dataset.report``), and splits it: stratified by class, with a recorded seed and fractions.
* :func:`load_dataset` picks one of the two (``None`` = CIFAR-10).
* :func:`load_training_data` loads what a run's settings (``training.settings.TrainSettings``) ask for:
  ``cifar10 train`` calls it before training and ``cifar10 export`` again to measure a finished run.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cifar10.contract import CLASS_NAMES, IMAGE_SIZE
from cifar10.dataset import (  # noqa: F401  (re-exported: training code and tests import them from here)
    ARCHIVE_DIR_NAME, CIFAR10_SHA256, CIFAR10_URL, ENV_VAR, TEST_BATCH, TRAIN_BATCHES, DataError, Split,
    check_batches, default_cache_dir, download_archive, load_batch, resolve_data_dir)
from cifar10.image_cache import cache_images, duplicate_groups
from cifar10.image_folders import FLAT, FolderScan, describe_scan, printable, scan_image_folder

VALIDATION_SIZE = 5000  # the last 5,000 training images: early stopping and model selection
CIFAR10_NAME = "CIFAR-10"
DEFAULT_FOLDER_IMAGE_SIZE = 128  # a folder dataset's input size when neither the caller nor the model says
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1

Progress = Callable[[str, int, int], None]  # (stage: "scan" | "cache", done, total)


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits of uint8 RGB images ``[N, S, S, 3]`` with int64 class ids."""

    train: Split
    val: Split
    test: Split
    source: Path
    class_names: tuple[str, ...] = CLASS_NAMES        # folder names, in class-id order (the model's output order)
    display_names: tuple[str, ...] | None = None      # what apps show, from classes.json; None: the class names
    name: str = CIFAR10_NAME                          # the dataset's name in the model card ("CIFAR-10", "my-pets")
    image_size: int = IMAGE_SIZE
    report: dict = field(default_factory=dict)        # folder datasets: how the splits were made, what was left out
    files: dict = field(default_factory=dict)         # folder datasets: {"train"|"validation"|"test": [path per row]}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.display_names or self.class_names

    def describe(self) -> dict:
        """For run.json and the log: sizes, classes, and (folder datasets) the report."""
        out = {
            "source": str(self.source),
            "train": len(self.train),
            "validation": len(self.val),
            "validation_rows": self.report.get("validation_rows") or (
                "the last training images (end of data_batch_5), held out from training"
                if len(self.val) else "none: trained on all training images, fixed schedule"),
            "test": len(self.test),
            "dataset": self.name,
            "image_size": self.image_size,
            "class_names": list(self.class_names),
        }
        if self.display_names:
            out["display_names"] = list(self.display_names)
        if self.report:
            out["report"] = self.report
        return out

    def summary(self) -> str:
        """One line for the log: ``CIFAR-10: 10 classes at 32 px; train 45,000, validation 5,000, test 10,000
        images (…/cifar-10-batches-py)``."""
        return (f"{self.name}: {self.num_classes} classes at {self.image_size} px; train {len(self.train):,}, "
                f"validation {len(self.val):,}, test {len(self.test):,} images ({self.source})")


Cifar10 = Dataset  # the name before datasets from folders; training code and tests still use it


def load_cifar10(data_dir: str | os.PathLike | None = None, *, validation_size: int = VALIDATION_SIZE,
                 limit: int | None = None) -> Dataset:
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
    return Dataset(train=train, val=val, test=test, source=path)


def is_cifar10_dir(path: str | os.PathLike) -> bool:
    """True for a folder holding the official CIFAR-10 python batches."""
    path = Path(path)
    return all((path / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def load_dataset(data: str | os.PathLike | None = None, image_size: int | None = None, *,
                 data_dir: str | os.PathLike | None = None, validation_size: int = VALIDATION_SIZE,
                 limit: int | None = None, **folder_kwargs) -> Dataset:
    """``data=None`` (or a folder of CIFAR-10 batches): CIFAR-10 as :func:`load_cifar10` loads it, from
    ``data_dir``; otherwise the labelled image folder ``data`` (:func:`load_folder_dataset`, with
    ``folder_kwargs``; ``image_size`` defaults to :data:`DEFAULT_FOLDER_IMAGE_SIZE`)."""
    if data is None or is_cifar10_dir(data):
        if image_size not in (None, IMAGE_SIZE):
            raise DataError(f"CIFAR-10's images are {IMAGE_SIZE}x{IMAGE_SIZE}: an image size of {image_size} is "
                            "for datasets from a folder (--data PATH)")
        return load_cifar10(data if data is not None else data_dir, validation_size=validation_size, limit=limit)
    return load_folder_dataset(data, image_size or DEFAULT_FOLDER_IMAGE_SIZE, limit=limit, **folder_kwargs)


def load_folder_dataset(path: str | os.PathLike, image_size: int, *, seed: int = 0,
                        validation_fraction: float = VALIDATION_FRACTION, test_fraction: float = TEST_FRACTION,
                        cache_dir: str | os.PathLike | None = None, progress: Progress | None = None,
                        limit: int | None = None, name: str | None = None,
                        scan: FolderScan | None = None, workers: int | None = None) -> Dataset:
    """A labelled image folder (one subfolder per class, or train/ + val/ + test/) as a :class:`Dataset`.

    Flat layout: a stratified split into train / validation / test with ``seed`` and the two fractions
    (of all usable images). Split layout: the folders' own splits; a missing val/ (or test/) folder is
    split from train/ the same way. ``limit``: at most that many images per class and split folder
    (tests, smoke runs). ``scan``: a :func:`scan_image_folder` result already made for ``path``;
    ``workers``: decode threads (default min(8, CPUs)); ``name``: the dataset's name (default: the folder's).
    Raises :class:`DataError` when the folder cannot be trained on (the message lists why).
    """
    for what, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise DataError(f"{what} must be at least 0 and below 1, not {value}")
    if validation_fraction + test_fraction >= 1:
        raise DataError("validation_fraction + test_fraction must leave images to train on")
    root = Path(path).expanduser()
    scan = scan if scan is not None else scan_image_folder(root)
    if progress is not None:
        progress("scan", scan.total, scan.total)
    if not scan.ok:
        raise DataError(f"cannot train on this folder:\n{describe_scan(scan)}")
    classes = scan.classes
    split_of, class_of, files = [], [], []
    for split, per_class in scan.files.items():
        for class_id, cls in enumerate(classes):
            chosen = per_class.get(cls, [])[:limit] if limit else per_class.get(cls, [])
            files += chosen
            split_of += [split] * len(chosen)
            class_of += [class_id] * len(chosen)
    labels = np.asarray(class_of, dtype=np.int64)
    cached = cache_images(files, image_size, root=root, cache_dir=cache_dir, workers=workers,
                          progress=(lambda done, total: progress("cache", done, total)) if progress else None)

    warnings = [p.message for p in scan.warnings]
    usable = cached.ok.copy()
    skipped = [{"path": printable(p), "reason": reason} for p, reason in cached.errors.items()]
    if skipped:
        warnings.append(f"{len(skipped)} file{'s' * (len(skipped) != 1)} could not be read and "
                        f"{'were' if len(skipped) != 1 else 'was'} skipped: "
                        + "; ".join(f"{os.path.basename(s['path'])} ({s['reason']})" for s in skipped[:5])
                        + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""))
    duplicates = []
    for group in duplicate_groups([d if ok else "" for d, ok in zip(cached.digests, cached.ok)]):
        group_classes = sorted({int(labels[i]) for i in group})
        paths = [printable(files[i]) for i in group]
        if len(group_classes) == 1:
            for i in group[1:]:
                usable[i] = False
            where = ("" if len({split_of[i] for i in group}) == 1
                     else f" (in {', '.join(dict.fromkeys(split_of[i] for i in group))}: kept in {split_of[group[0]]})")
            duplicates.append({"paths": paths, "classes": [classes[group_classes[0]]], "kept": paths[0]})
            warnings.append(f"{len(group)} files with the same bytes in class {classes[group_classes[0]]!r}{where}: "
                            f"kept once ({', '.join(os.path.basename(p) for p in paths)})")
        else:
            for i in group:
                usable[i] = False
            names = [classes[c] for c in group_classes]
            duplicates.append({"paths": paths, "classes": names, "kept": None})
            warnings.append(f"the same image is in different classes ({', '.join(names)}): left out of training "
                            f"({', '.join(paths)})")

    empty = [classes[c] for c in range(len(classes))
             if not np.any(usable & (labels == c) & np.isin(split_of, ["all", "train"]))]
    if empty:
        raise DataError(f"no readable {'training ' if scan.layout != FLAT else ''}image left in class"
                        f"{'es' * (len(empty) != 1)} {', '.join(map(repr, empty))}:\n"
                        + "\n".join(f"  {s['path']}: {s['reason']}" for s in skipped[:20]))

    rng_note: list[str] = []
    index = np.flatnonzero(usable)
    split_array = np.asarray(split_of, dtype=object)
    main = index[np.isin(split_array[index], ["all", "train"])]
    sources = {}
    if "test" in scan.files:
        test_idx = index[split_array[index] == "test"]
        sources["test"] = f"the {scan.split_folders['test']}/ folder"
    else:
        main, test_idx = _split(main, labels, test_fraction, seed, rng_note, "test")
        sources["test"] = (f"a stratified {test_fraction:.0%} of the images, seed {seed}" if scan.layout == FLAT else
                           f"no test/ folder: a stratified {test_fraction:.0%} of train/, seed {seed}")
    if "val" in scan.files:
        val_idx = index[split_array[index] == "val"]
        sources["validation"] = f"the {scan.split_folders['val']}/ folder"
    else:
        fraction = validation_fraction / (1 - test_fraction) if "test" not in scan.files else validation_fraction
        main, val_idx = _split(main, labels, fraction, seed, rng_note, "validation")
        sources["validation"] = (f"a stratified {validation_fraction:.0%} of the images, seed {seed}"
                                 if scan.layout == FLAT else
                                 f"no val/ folder: a stratified {validation_fraction:.0%} of train/, seed {seed}")
    sources["train"] = "the rest of the images" if scan.layout == FLAT else f"the {scan.split_folders['train']}/ folder"
    warnings += rng_note
    if not len(test_idx):
        warnings.append("no test images: the model's test accuracy cannot be measured")

    def take(idx: np.ndarray) -> Split:
        x = np.asarray(cached.images[idx]) if len(idx) else np.zeros((0, image_size, image_size, 3), np.uint8)
        return Split(x, labels[idx])

    main, val_idx, test_idx = (np.sort(i) for i in (main, val_idx, test_idx))
    train, val, test = take(main), take(val_idx), take(test_idx)
    per_class = {cls: {split: int(np.sum(s.y == c)) for split, s in
                       (("train", train), ("validation", val), ("test", test))} for c, cls in enumerate(classes)}
    report = {
        "folder": printable(str(root)),
        "layout": scan.layout,
        "image_size": image_size,
        "seed": seed,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "limit": limit,
        "splits": {"train": {"images": len(train), "from": sources["train"]},
                   "validation": {"images": len(val), "from": sources["validation"]},
                   "test": {"images": len(test), "from": sources["test"]}},
        "validation_rows": sources["validation"],
        "classes": per_class,
        "files": len(files),
        "skipped": skipped,
        "non_images": [printable(p) for p in scan.non_images],
        "duplicates": duplicates,
        "warnings": warnings,
        "cache": {"folder": printable(str(cached.folder)), "decoded": cached.decoded, "reused": cached.reused,
                  "seconds": round(cached.seconds, 3)},
    }
    return Dataset(train=train, val=val, test=test, source=root, class_names=classes,
                   display_names=scan.display_names, name=name or root.resolve().name or str(root),
                   image_size=image_size, report=report,
                   files={split: [files[i] for i in idx] for split, idx in
                          (("train", main), ("validation", val_idx), ("test", test_idx))})


def _split(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int, notes: list[str],
           what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, held out)``: a stratified ``fraction`` of ``index`` (at least one image per class when the
    class counts allow it). Falls back to a plain seeded shuffle when stratifying is impossible."""
    from sklearn.model_selection import train_test_split

    n = len(index)
    if fraction <= 0 or n < 2:
        return index, index[:0]
    y = labels[index]
    classes = len(np.unique(y))
    held = max(1, round(fraction * n))
    if held < classes and n - classes >= classes:
        held = classes  # one per class in each held-out split when there is room for it
    held = min(held, n - 1)
    try:
        rest, out = train_test_split(index, test_size=held, stratify=y, random_state=seed)
    except ValueError as exc:  # e.g. a class with one image
        notes.append(f"the {what} split is not stratified ({exc})")
        rest, out = train_test_split(index, test_size=held, random_state=seed)
    return np.asarray(rest), np.asarray(out)


def load_training_data(settings, data_dir=None, progress=None) -> Dataset:
    """The data a run's ``settings`` (a ``TrainSettings``) ask for: CIFAR-10 (``settings.data`` None, from
    ``data_dir``) or the folder dataset at ``settings.image_size``, split with ``settings.seed``. One summary
    line goes to stderr, with a folder's problems; ``progress`` gets the "cache" and "scan" events."""
    if settings.data is None:
        data = load_cifar10(data_dir, validation_size=settings.validation_size, limit=settings.limit)
        print(f"Data: {data.summary()}", file=sys.stderr)
        return data
    last = {"t": 0.0}

    def cache_progress(stage: str, done: int, total: int):
        now = time.perf_counter()
        if progress is not None and stage == "cache" and (done >= total or now - last["t"] >= 0.5):
            last["t"] = now  # at most 2 events a second, and the last one
            progress({"event": "cache", "done": int(done), "total": int(total)})

    data = load_folder_dataset(settings.data, settings.image_size, seed=settings.seed, progress=cache_progress,
                               limit=settings.limit)
    event = scan_event(data)
    print(f"Data: {data.summary()}", file=sys.stderr)
    for problem in event["problems"]:
        print(f"  warning: {problem}", file=sys.stderr)
    if progress is not None:
        progress(event)
    return data


def scan_event(data: Dataset) -> dict:
    """The "scan" event: images per class (all splits), the problems (warnings: skipped, unreadable, duplicate
    files, few images ...), the skipped files with their reason and the non-image files; the whole report
    is in run.json (``data.report``)."""
    report = json_ready(data.report)
    classes = {name: sum(counts.values()) if isinstance(counts, dict) else counts
               for name, counts in (report.get("classes") or {}).items()}
    return {"event": "scan", "dataset": data.name, "classes": classes,
            "display_names": list(data.display_names) if data.display_names else None,
            "splits": {k: v.get("images") for k, v in (report.get("splits") or {}).items()},
            "problems": report.get("warnings", []), "skipped": report.get("skipped", []),
            "non_images": report.get("non_images", [])}


def json_ready(value):
    """The dataset report as plain JSON values (it may hold dataclasses with ``to_dict``, paths, tuples)."""
    if hasattr(value, "to_dict"):
        return json_ready(value.to_dict())
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
