"""Every evaluation figure from one set of predictions, with numpy only: the one place metrics are computed.

Training (``training/export.py``, ``training/evaluate.py``), ``cifar10 evaluate`` and the desktop app's
evaluation view all call :func:`classification_metrics`, so the figures cannot disagree: accuracy, the
per-class figures, the confusion matrix and ECE all come from the same ``y_true`` and ``probabilities``
(the study's EfficientNet row once reported accuracy 0.99 with F1 0.25: metrics from mismatched arrays).
No scikit-learn here (the apps' install has none); ``tests/test_metrics.py`` checks every figure against
scikit-learn in the dev install.

Conventions (the same as scikit-learn's with ``zero_division=0``): a class with no predictions has
precision 0, a class with no images has recall 0, and macro averages run over all the model's classes.
"""

from __future__ import annotations

import numpy as np

from cifar10.contract import CLASS_NAMES, NUM_CLASSES


def confusion_matrix(y_true, y_pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """``[true, predicted]`` counts (int64), rows in class order."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    for name, values in (("labels", y_true), ("predictions", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must be class ids 0..{num_classes - 1}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = numerator.astype(np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_figures(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    cm = np.asarray(cm)
    true_positives = np.diag(cm)
    precision = _safe_divide(true_positives, cm.sum(axis=0))
    recall = _safe_divide(true_positives, cm.sum(axis=1))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1)}


def reliability_bins(y_true: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> list[dict]:
    """The reliability diagram behind :func:`expected_calibration_error`: one row per non-empty equal-width
    confidence bin, ``{"low", "high", "n", "confidence", "accuracy"}`` (mean top probability and share of
    correct predictions of the images in it). accuracy > confidence: under-confident there; < : over-."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(probabilities) == 0:
        return []
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(in_bin.sum()),
                         "confidence": float(confidence[in_bin].mean()), "accuracy": float(correct[in_bin].mean())})
    return rows


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins: sum over bins of |accuracy - confidence| * bin share."""
    rows = reliability_bins(y_true, probabilities, bins)
    total = sum(row["n"] for row in rows)
    return float(sum(row["n"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows)) if rows else 0.0


def classification_metrics(y_true, probabilities, *, macro_over: str = "all",
                           class_names: tuple[str, ...] = CLASS_NAMES) -> dict:
    """All figures for labels ``y_true`` [N] and model ``probabilities`` [N, C] (predictions = argmax), for a
    model whose classes are ``class_names`` (CIFAR-10's by default).

    Returns ``n, accuracy, precision_macro, recall_macro, f1_macro, ece, per_class{name: precision,
    recall, f1, support}, confusion_matrix`` (a list of lists, ``[true][predicted]``), ``macro_over``.
    ``macro_over="present"`` averages the macro figures over the classes that have images only (a
    labelled folder of cats and dogs; scikit-learn's ``labels=`` those classes), "all" over all of them.
    """
    num_classes = len(class_names)
    if macro_over not in ("all", "present"):
        raise ValueError("macro_over must be 'all' or 'present'")
    y_true = np.asarray(y_true).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(y_true), num_classes):
        raise ValueError(f"probabilities of shape {probabilities.shape} do not match {len(y_true)} labels "
                         f"and {num_classes} classes")
    y_pred = probabilities.argmax(axis=1) if len(y_true) else np.zeros(0, np.int64)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    figures = per_class_figures(cm)
    n = int(len(y_true))
    averaged = figures["support"] > 0 if macro_over == "present" else np.ones(num_classes, bool)
    if not averaged.any():
        averaged = np.ones(num_classes, bool)
    return {
        "n": n,
        "accuracy": float(np.trace(cm) / n) if n else 0.0,
        "precision_macro": float(figures["precision"][averaged].mean()),
        "recall_macro": float(figures["recall"][averaged].mean()),
        "f1_macro": float(figures["f1"][averaged].mean()),
        "ece": expected_calibration_error(y_true, probabilities),
        "per_class": {
            name: {"precision": float(figures["precision"][i]), "recall": float(figures["recall"][i]),
                   "f1": float(figures["f1"][i]), "support": int(figures["support"][i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
        "macro_over": [name for name, used in zip(class_names, averaged) if used],
    }
