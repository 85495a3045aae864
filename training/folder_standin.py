"""TEMPORARY stand-in for helper i11-data's training.data.load_folder_dataset / load_dataset (HELPERS.md
interface), so that training can be written and tested before that branch lands. Deleted on merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10 import contract
from cifar10.dataset import DataError, Split
from cifar10.image_folders import scan_image_folder
from cifar10.preprocess import ImageError, load_image


@dataclass(frozen=True)
class Dataset:
    train: Split
    val: Split
    test: Split
    source: Path
    class_names: tuple
    display_names: tuple | None
    name: str
    image_size: int
    report: dict

    def describe(self) -> dict:
        return {"source": str(self.source), "dataset": self.name, "train": len(self.train),
                "validation": len(self.val), "test": len(self.test), "image_size": self.image_size}


def load_folder_dataset(path, image_size, *, seed=0, validation_fraction=0.1, test_fraction=0.1, cache_dir=None,
                        progress=None, limit=None) -> Dataset:
    scan = scan_image_folder(path)
    if not scan.ok:
        raise DataError("; ".join(p.message for p in scan.errors))
    report = scan.to_dict()
    failed = []
    splits = {}
    total = sum(len(v) for per in scan.files.values() for v in per.values())
    done = 0
    for split, per_class in scan.files.items():
        xs, ys = [], []
        for k, c in enumerate(scan.classes):
            for f in per_class.get(c, []):
                try:
                    xs.append(load_image(f, size=image_size))
                    ys.append(k)
                except ImageError as exc:
                    failed.append({"path": f, "reason": str(exc)})
                done += 1
                if progress:
                    progress("cache", done, total)
        splits[split] = Split(np.stack(xs) if xs else np.zeros((0, image_size, image_size, 3), np.uint8),
                              np.array(ys, np.int64))
    if failed:
        report["problems"].append({"severity": "warning", "message": f"{len(failed)} unreadable files skipped",
                                   "paths": [f["path"] for f in failed]})
    report["unreadable"] = failed
    rng = np.random.default_rng(seed)
    base = splits.get("all") or splits["train"]
    order = rng.permutation(len(base))
    n_val = max(1, int(len(order) * validation_fraction))
    if "all" in splits:
        n_test = max(1, int(len(order) * test_fraction))
        test = Split(base.x[order[:n_test]], base.y[order[:n_test]])
        order = order[n_test:]
    else:
        test = splits.get("test")
    val = splits.get("val") or Split(base.x[order[:n_val]], base.y[order[:n_val]])
    if "val" not in splits:
        order = order[n_val:]
    train = Split(base.x[order], base.y[order])
    if limit:
        train, val, test = (Split(s.x[:limit], s.y[:limit]) for s in (train, val, test))
    return Dataset(train, val, test, Path(path), scan.classes, scan.display_names, Path(path).name, image_size, report)


def load_cifar10(data_dir=None, **kw) -> Dataset:
    from training.data import load_cifar10
    c = load_cifar10(data_dir, **kw)
    return _Cifar(c.train, c.val, c.test, c.source, contract.CLASS_NAMES, None, "CIFAR-10", 32, {}, c)


@dataclass(frozen=True)
class _Cifar(Dataset):
    inner: object = None

    def describe(self) -> dict:
        return self.inner.describe()
