"""Measure a model on labelled images: a folder with one subfolder per class, or the CIFAR-10 test batch.

The core of ``cifar10 evaluate`` and of the desktop app's evaluation view (onnxruntime, Pillow and numpy
only: no TensorFlow, no scikit-learn), so both show the same numbers. Figures come from
:func:`cifar10.metrics.classification_metrics`, the one place metrics are computed.

Labelled folder layout::

    PATH/cat/any/depth/photo.jpg    -> true class "cat"
    PATH/Dog/x.png                  -> "dog" (folder names match the model's class names, or its display
                                       names, case-insensitively: a model trained on Animals-10 knows
                                       both "cane" and "dog")
    PATH/notes.txt, PATH/_unsure/…  -> ignored and listed (not inside a class folder)

Files that cannot be read are listed apart and left out of the figures (a model cannot be right or
wrong about them). Images the model flags as unsure (its open-set threshold, when the model and
:class:`cifar10.inference.Result` offer one: ``result.unsure``) stay in the figures and are also listed apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from cifar10.contract import CLASS_NAMES, IMAGE_SIZE
from cifar10.image_folders import list_class_folders
from cifar10.inference import Classifier, Result, classify_files, iter_image_files
from cifar10.metrics import classification_metrics

TEST_SET_SOURCE = "CIFAR-10 test set"


def is_unsure(result: Result) -> bool:
    """True when the model flagged this image as unsure (open-set threshold), if the model offers that.

    The one hook evaluation and organize use; a Result without an ``unsure`` attribute is never unsure.
    """
    return bool(getattr(result, "unsure", False)) and not result.error


def class_of_folder(name: str, classes=CLASS_NAMES, labels=None) -> int | None:
    """The class id a subfolder name stands for (the model's class or display names, case-insensitive), or None."""
    folded = name.strip().casefold()
    for names in (classes, labels or ()):
        for index, candidate in enumerate(names):
            if candidate.casefold() == folded:
                return index
    return None


@dataclass
class LabelledFile:
    path: str
    true_class: int


def scan_labelled_folder(folder: str | os.PathLike, classes=CLASS_NAMES,
                         labels=None) -> tuple[list[LabelledFile], list[str]]:
    """Files under class subfolders (recursively) with their true class, and the paths that were ignored.

    ``classes``/``labels``: the model's class names and display names (:class:`cifar10.registry.ModelInfo`).

    Class folders are listed as for training (:func:`cifar10.image_folders.list_class_folders`: names in
    Unicode NFC, symlinked class folders followed, hidden folders and OS artefacts such as ``__MACOSX``
    left out); hidden files and OS metadata inside them are skipped as in every folder scan
    (:func:`iter_image_files`). Raises OSError when ``folder`` cannot be listed.
    """
    class_folders, loose, problems = list_class_folders(folder)  # the one labelled-folder listing
    if problems:
        raise OSError(problems[0].message)
    labelled: list[LabelledFile] = []
    ignored: list[str] = []
    for name, path in class_folders:
        class_id = class_of_folder(name, classes, labels)
        if class_id is None:
            ignored.append(path)
            continue
        labelled.extend(LabelledFile(file, class_id) for file in iter_image_files([path]))
    return labelled, ignored + loose


@dataclass
class Evaluation:
    """What one evaluation found: every classified image with its true class, and the figures."""

    model_name: str
    source: str                                          # the folder, or TEST_SET_SOURCE
    results: list[Result] = field(default_factory=list)  # readable images, in scan order
    true_classes: list[int] = field(default_factory=list)  # same order as results
    unreadable: list[tuple[Result, int]] = field(default_factory=list)  # (error result, true class)
    ignored: list[str] = field(default_factory=list)     # paths outside any class folder
    metrics: dict = field(default_factory=dict)
    card_accuracy: float | None = None
    cancelled: bool = False
    classes: tuple[str, ...] = CLASS_NAMES               # the model's labels (true classes index these)

    @property
    def unsure(self) -> list[Result]:
        return [r for r in self.results if is_unsure(r)]

    def cell(self, true_class: int, predicted_class: int) -> list[Result]:
        """The images of ``true_class`` predicted as ``predicted_class``: one confusion-matrix cell."""
        predicted = self.classes[predicted_class]
        return [r for r, t in zip(self.results, self.true_classes) if t == true_class and r.label == predicted]

    def misclassified(self) -> list[tuple[Result, int]]:
        return [(r, t) for r, t in zip(self.results, self.true_classes) if r.label != self.classes[t]]

    def to_dict(self, *, rows: bool = True) -> dict:
        """JSON-ready: the figures, the lists, and (``rows``) one row per image."""
        out = {"model": self.model_name, "source": self.source, "card_test_accuracy": self.card_accuracy,
               **self.metrics,
               "unreadable": [{"path": r.path, "true": self.classes[t], "error": r.error} for r, t in self.unreadable],
               "unsure": [r.path for r in self.unsure], "ignored": list(self.ignored),
               "cancelled": self.cancelled}
        if rows:
            out["rows"] = [{"path": r.path, "true": self.classes[t], "predicted": r.label,
                            "confidence": round(float(r.confidence), 6), "unsure": is_unsure(r)}
                           for r, t in zip(self.results, self.true_classes)]
        return out


def _finish(evaluation: Evaluation) -> Evaluation:
    probabilities = (np.stack([r.probabilities for r in evaluation.results]) if evaluation.results
                     else np.zeros((0, len(evaluation.classes)), np.float32))
    evaluation.metrics = classification_metrics(np.asarray(evaluation.true_classes, dtype=np.int64), probabilities,
                                                macro_over="all" if evaluation.source == TEST_SET_SOURCE else "present",
                                                class_names=evaluation.classes)
    return evaluation


def evaluate_folder(classifier: Classifier, folder: str | os.PathLike, *, batch_size: int = 256,
                    on_progress: Callable[[int, int], None] | None = None,
                    should_stop: Callable[[], bool] | None = None, keep_images: bool = False) -> Evaluation:
    """Classify every file under ``folder``'s class subfolders and compare with the folder names.

    Raises ValueError when no class subfolder holds a file (the message names the expected folders).
    """
    model = classifier.model
    labelled, ignored = scan_labelled_folder(folder, model.class_names, model.labels)
    evaluation = Evaluation(model.name, str(folder), ignored=ignored, card_accuracy=model.test_accuracy,
                            classes=model.labels)
    if not labelled:
        raise ValueError(f"{folder} has no images in class folders: it needs one subfolder per class, named "
                         f"{', '.join(model.labels)} (e.g. {Path(folder) / model.labels[0] / 'photo.jpg'})")
    truth = [item.true_class for item in labelled]
    done = 0
    for result in classify_files(classifier, [item.path for item in labelled], batch_size=batch_size,
                                 on_progress=on_progress, should_stop=should_stop, keep_images=keep_images):
        true_class = truth[done]
        done += 1
        if result.error:
            evaluation.unreadable.append((result, true_class))
        else:
            evaluation.results.append(result)
            evaluation.true_classes.append(true_class)
    evaluation.cancelled = done < len(labelled)
    return _finish(evaluation)


def evaluate_arrays(classifier: Classifier, images: np.ndarray, labels: np.ndarray, *, source: str = TEST_SET_SOURCE,
                    batch_size: int = 1000, on_progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Evaluate on in-memory uint8 images ``[N, S, S, 3]`` at the model's size (the CIFAR-10 test batch)."""
    evaluation = Evaluation(classifier.model.name, source, card_accuracy=classifier.model.test_accuracy,
                            classes=classifier.labels)
    total = len(images)
    for start in range(0, total, batch_size):
        out = classifier.predict_all(images[start:start + batch_size])  # with ood_score: a v2 row needs it
        evaluation.results.extend(classifier.result(f"test_batch[{start + i}]", p, ood_score=float(score),
                                                    unsure=bool(flag))
                                  for i, (p, score, flag) in enumerate(zip(out.probabilities, out.ood_score,
                                                                           out.unsure)))
        if on_progress is not None:
            on_progress(min(start + batch_size, total), total)
    evaluation.true_classes = [int(y) for y in labels]
    return _finish(evaluation)


def evaluate_test_set(classifier: Classifier, data_dir: str | os.PathLike | None = None, *,
                      limit: int | None = None, **kwargs) -> Evaluation:
    """The CIFAR-10 test batch (``--data-dir``, ``$CIFAR10_DIR`` or the download cache), read without TensorFlow."""
    from cifar10.dataset import load_test_set

    model = classifier.model
    if tuple(model.class_names) != CLASS_NAMES or model.image_size != IMAGE_SIZE:
        raise ValueError(f"{model.name} knows {model.knows} at {model.image_size} px, not CIFAR-10's classes: "
                         "evaluate it on a labelled folder instead (--folder PATH, one subfolder per class)")
    test = load_test_set(data_dir, limit=limit)
    return evaluate_arrays(classifier, test.x, test.y, **kwargs)


# --- text report (the CLI; the app shows the same dict in widgets) ---------------------------------------

def format_report(evaluation: Evaluation, *, max_listed: int = 20) -> Iterator[str]:
    m = evaluation.metrics
    card = (f"; the model card says {evaluation.card_accuracy:.4f} on its test set"
            if evaluation.card_accuracy is not None else "")
    yield (f"{evaluation.model_name} on {evaluation.source}: accuracy {m['accuracy']:.4f} on {m['n']} "
           f"{'test images' if evaluation.source == TEST_SET_SOURCE else 'images'}{card}")
    width = max(11, *(len(name) + 1 for name in evaluation.classes))
    over = "" if len(m["macro_over"]) == len(evaluation.classes) else f" (over the {len(m['macro_over'])} classes with images)"
    yield (f"macro precision {m['precision_macro']:.4f}, recall {m['recall_macro']:.4f}, "
           f"F1 {m['f1_macro']:.4f}{over}")
    yield ""
    yield f"{'class':<{width}} {'precision':>9} {'recall':>7} {'images':>7}"
    cm = np.asarray(m["confusion_matrix"])
    for i, (name, row) in enumerate(m["per_class"].items()):
        if not (cm[i].sum() or cm[:, i].sum()):
            continue  # neither in the folder nor predicted: nothing to say
        yield f"{name:<{width}} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['support']:>7d}"
    yield ""
    yield "confusion matrix (rows: true class, columns: predicted)"
    short = [name[:5] for name in evaluation.classes]
    yield " " * width + " ".join(f"{s:>5}" for s in short)
    for name, counts in zip(evaluation.classes, m["confusion_matrix"]):
        yield f"{name:<{width}}" + " ".join(f"{c:>5d}" for c in counts)
    for title, items in (("could not be read (left out of the figures)",
                          [f"{r.path}: {r.error}" for r, _ in evaluation.unreadable]),
                         ("flagged unsure by the model (included above)", [r.path for r in evaluation.unsure]),
                         ("ignored (not inside a class folder)", evaluation.ignored)):
        if items:
            yield ""
            yield f"{len(items)} {title}:"
            yield from (f"  {line}" for line in items[:max_listed])
            if len(items) > max_listed:
                yield f"  … and {len(items) - max_listed} more (--output FILE.json lists them all)"
    if evaluation.cancelled:
        yield ""
        yield "cancelled: the figures cover only the images classified before the cancel"


def write_report(evaluation: Evaluation, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(evaluation.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
