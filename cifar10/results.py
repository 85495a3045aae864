"""The result of classifying one image, and its one serialisation: used by the CLI, the desktop app,
the web apps and the self-test alike.

``Result.path`` is the file's path, or an upload's display name in the web apps. A file that could not
be classified has ``error`` set and no label or probabilities; the batch it was in goes on.
``Result.classes`` are the model's class names as apps show them (:attr:`cifar10.registry.ModelInfo.labels`;
CIFAR-10's by default): the rows have one probability column per class, named by the class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cifar10 import contract
from cifar10.contract import CLASS_NAMES


NONFINITE_ERROR = "the model returned NaN/inf"  # the error of a row whose model outputs are not finite


@dataclass
class Result:
    path: str                                  # file path, or an upload's display name
    label: str = ""                            # predicted class name; "" on error
    confidence: float = float("nan")           # probability of ``label``; nan on error
    probabilities: np.ndarray | None = None    # [C] in ``classes`` order; None on error
    error: str = ""                            # "" when it worked
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # the model input, if kept
    ood_score: float = float("nan")            # contract v2: larger = less like the classes; nan for v1 models
    unsure: bool = False                       # ood_score above the model's threshold: "may be none of these"
    classes: tuple[str, ...] = field(default=CLASS_NAMES, repr=False)  # the model's class names (labels)

    @property
    def ok(self) -> bool:
        return not self.error

    def top_k(self, k: int | None = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable ``(class, probability)`` pairs, best first (``k=None``: all of them)."""
        if self.probabilities is None:
            return []
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    @property
    def display_label(self) -> str:
        """The label as apps show it: the class, or the unsure text when the open-set flag is raised."""
        if not self.ok:
            return ""
        return contract.unsure_text(len(self.classes)) if self.unsure else self.label

    @classmethod
    def from_probabilities(cls, path: str, probabilities: np.ndarray, image: np.ndarray | None = None, *,
                           ood_score: float = float("nan"), unsure: bool = False,
                           classes: tuple[str, ...] = CLASS_NAMES) -> "Result":
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.shape != (len(classes),):
            raise ValueError(f"{len(probabilities)} probabilities for {len(classes)} classes")
        if not np.isfinite(probabilities).all():  # NaN/inf is no answer, never a confident one
            return cls(path, error=NONFINITE_ERROR, classes=tuple(classes))
        best = int(np.argmax(probabilities))
        return cls(path, classes[best], float(probabilities[best]), probabilities, "", image,
                   float(ood_score), bool(unsure), tuple(classes))


# ``unsure`` is true when the model's open-set flag is raised ("may be none of the 10 classes"; ``label`` still
# holds the most likely class); ``ood_score`` is the score behind it (larger = less like the training images;
# empty for a contract-v1 model, whose ``unsure`` is always false). Both are empty for a file that failed.
# Then one probability column per class of the model (its labels, in output order).
BASE_COLUMNS = ("path", "label", "confidence", "error", "unsure", "ood_score")
# Results files also record which model made the rows and when (cifar10.results_io.export_metadata): the CSV
# repeats these before the class columns on every row, the JSON file holds them once, around its rows.
META_COLUMNS = ("model", "model_test_accuracy", "date")
assert set(BASE_COLUMNS + META_COLUMNS + ("top_k",)) == set(contract.RESERVED_CLASS_NAMES)


def columns(classes: tuple[str, ...] = CLASS_NAMES) -> tuple[str, ...]:
    """A row's keys for a model with these classes: :data:`BASE_COLUMNS`, then one column per class."""
    return (*BASE_COLUMNS, *classes)


def file_columns(classes: tuple[str, ...] = CLASS_NAMES) -> tuple[str, ...]:
    """A results file's columns: the row's, with :data:`META_COLUMNS` before the class columns."""
    return (*BASE_COLUMNS, *META_COLUMNS, *classes)


COLUMNS = columns()  # a CIFAR-10 model's rows
FILE_COLUMNS = file_columns()


def result_row(result: Result, *, top_k: int = 0) -> dict:
    """The row for one result (CSV columns = JSON keys = ``columns(result.classes)``): floats rounded to 6 decimals,
    None where the file failed; with ``top_k`` > 0 also ``top_k``: the k best ``[class, probability]`` pairs."""
    probs = result.probabilities
    ok = probs is not None and not result.error
    confidence = result.confidence if ok and not math.isnan(result.confidence) else None
    row = {"path": str(result.path), "label": result.label if ok else "",
           "confidence": round(float(confidence), 6) if confidence is not None else None,
           "error": result.error,
           "unsure": bool(result.unsure) if ok else None,
           "ood_score": round(float(result.ood_score), 6) if ok and math.isfinite(result.ood_score) else None}
    for i, name in enumerate(result.classes):
        row[name] = round(float(probs[i]), 6) if ok else None
    if top_k:
        row["top_k"] = [[label, round(p, 6)] for label, p in result.top_k(top_k)]
    return row
