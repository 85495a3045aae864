"""Find pictures that are probably in the wrong class folder (``cifar10 label-issues``, Models > Check Labels).

1. Every labelled picture of the folder (all splits) is decoded through the decode cache and its frozen
   backbone features come from the instant model's :class:`training.linear_probe.FeatureCache`.
2. Out-of-fold probabilities: a linear head fitted on k-1 folds predicts the k-th (stratified k-fold), so
   no picture's own label is used to judge it.
3. Confident learning selects the suspects: cleanlab's ``find_label_issues`` (pruning by the estimated
   noise rates of the confident joint), ranked by self-confidence (the out-of-fold probability of the given
   label: lowest first).

Each suspect gets a suggested class: the most probable class other than its given one, with that class's
out-of-fold probability as ``confidence``.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10.image_cache import cache_images
from cifar10.image_folders import describe_scan, scan_image_folder

COLUMNS = ("path", "given_label", "suggested_label", "confidence")
DEFAULT_MODEL = "efficientnet_lite0_linear"


@dataclass
class LabelIssue:
    path: str
    given_label: str
    suggested_label: str
    confidence: float  # out-of-fold probability of the suggested class
    given_confidence: float  # out-of-fold probability of the given class

    def row(self) -> list:
        return [self.path, self.given_label, self.suggested_label, f"{self.confidence:.4f}"]


def labelled_pictures(folder: str | os.PathLike) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """Every picture in a class folder (train, val and test splits alike), its class id and the class names."""
    from cifar10.errors import UserFacingError

    scan = scan_image_folder(folder)
    if not scan.ok:
        raise UserFacingError(f"cannot check the labels of this folder:\n{describe_scan(scan)}")
    files, labels = [], []
    for per_class in scan.files.values():
        for class_id, name in enumerate(scan.classes):
            for path in per_class.get(name, []):
                files.append(path)
                labels.append(class_id)
    return files, np.asarray(labels, np.int64), tuple(scan.classes)


def find_issues(folder: str | os.PathLike, *, model_name: str = DEFAULT_MODEL, image_size: int | None = None,
                folds: int = 5, seed: int = 0, cache_dir=None, feature_dir=None, log=print,
                progress=None) -> list[LabelIssue]:
    """The suspects of ``folder``, most suspicious first. ``progress``: gets ``{"event": "cache" | "features",
    "done": n, "total": N}`` while the pictures are decoded and their features computed (those not cached)."""
    def report(stage: str):
        if progress is not None:
            return lambda done, total: progress({"event": stage, "done": int(done), "total": int(total)})

    import keras
    from cleanlab.filter import find_label_issues

    from training import models
    from training.linear_probe import FeatureCache, backbone_identity, out_of_fold_probabilities

    started = time.perf_counter()
    files, labels, classes = labelled_pictures(folder)
    spec = models.get_spec(model_name)
    size = int(image_size or spec.defaults.image_size)
    cached = cache_images(files, size, root=folder, cache_dir=cache_dir, progress=report("cache"))
    keep = np.flatnonzero(cached.ok)
    files = [files[i] for i in keep]
    labels = labels[keep]
    keras.utils.set_random_seed(seed)
    kwargs = {"num_classes": len(classes)}
    if models.build_accepts(model_name, "image_size"):
        kwargs["image_size"] = size
    model = models.create_model(model_name, **kwargs)
    if not any(layer.name == "avg_pool" for layer in model.layers):
        from cifar10.errors import UserFacingError
        raise UserFacingError(f"{model_name} is not a linear model on cached features (try {DEFAULT_MODEL})")
    cache = FeatureCache(backbone_identity(model), feature_dir)
    features = cache.features(model, np.asarray(cached.images[keep]), progress=report("features"))
    log(f"Features: {cache.computed} computed, {cache.reused} from the cache ({time.perf_counter() - started:.1f} s)")
    probs = out_of_fold_probabilities(features, labels, len(classes), folds=folds, seed=seed)
    if len(np.unique(labels)) < 2:
        return []
    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    issues = []
    for i in ranked:
        others = probs[i].copy()
        others[labels[i]] = -1
        suggested = int(others.argmax())
        issues.append(LabelIssue(files[i], classes[labels[i]], classes[suggested], float(probs[i, suggested]),
                                 float(probs[i, labels[i]])))
    log(f"{len(issues)} suspect{'s' * (len(issues) != 1)} among {len(files)} pictures "
        f"({time.perf_counter() - started:.1f} s)")
    return issues


def write_csv(issues: list[LabelIssue], path: str | os.PathLike | None) -> None:
    """The CSV (``path,given_label,suggested_label,confidence``), written atomically; None/"-": stdout."""
    if path in (None, "-"):
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(issue.row() for issue in issues)
        return
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(issue.row() for issue in issues)
    os.replace(partial, path)


def read_csv(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(row, confidence=float(row["confidence"])) for row in csv.DictReader(f)]
