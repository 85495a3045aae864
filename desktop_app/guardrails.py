"""What to tell the user about a model just trained, before it replaces the one in use (issue 24). Plain
Python (no Qt): the window's review dialog (train_review.py) renders a :class:`TrainingReview`.

It compares the new model with chance and with the current model, lists the per-class recall and the most
confused pair of classes from the new card's test metrics, keeps the validation curve from the training's
epoch events, and warns when the figures should not be trusted:

* at chance level: the test accuracy is within 5 points of 1 / number of classes;
* overfitting: in the last epoch the validation accuracy lags the training accuracy by more than 20 points;
* a small test split: fewer than 10 test images per class (the accuracy is then a rough guess);
* a calibration that made the probabilities less reliable (ECE higher after than before).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cifar10.registry import ModelInfo

CHANCE_MARGIN = 0.05       # accuracy <= chance + this: "no better than guessing"
OVERFIT_GAP = 0.20         # training - validation accuracy above this in the last epoch
MIN_TEST_PER_CLASS = 10


@dataclass
class TrainingReview:
    name: str
    classes: tuple[str, ...]
    test_accuracy: float | None
    chance: float
    test_images: int | None
    current_name: str | None = None
    current_accuracy: float | None = None      # the model in use, when it knows the same classes
    recall: dict[str, float] = field(default_factory=dict)
    confused: tuple[str, str, int] | None = None  # (true class, predicted as, count) most often mixed up
    curve: list[tuple[int, float | None, float | None]] = field(default_factory=list)  # epoch, train, validation
    warnings: list[str] = field(default_factory=list)

    @property
    def recommended(self) -> bool:
        """Whether "Use this model" is the default answer: no warning, and not worse than the current model."""
        worse = (self.current_accuracy is not None and self.test_accuracy is not None
                 and self.test_accuracy < self.current_accuracy)
        return not self.warnings and not worse

    def comparison(self) -> str:
        """``66.7 % on its 30 test pictures — chance is 33.3 % (3 classes); pets_v1 scored 70.0 %``."""
        if self.test_accuracy is None:
            return "No test accuracy: the card has none."
        text = f"{self.test_accuracy:.1%} right on its {self.test_images:,} held-out test pictures" \
            if self.test_images else f"{self.test_accuracy:.1%} test accuracy"
        text += f" — guessing would give {self.chance:.1%} ({len(self.classes)} classes)"
        if self.current_name and self.current_accuracy is not None:
            verdict = "better than" if self.test_accuracy > self.current_accuracy else (
                "the same as" if self.test_accuracy == self.current_accuracy else "worse than")
            text += f"; {verdict} {self.current_name} ({self.current_accuracy:.1%})"
        return text


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def review_training(model: ModelInfo, epochs: list[dict] | None = None, current: ModelInfo | None = None) -> TrainingReview:
    """``model``: the new model (its card has the test metrics); ``epochs``: the training's "epoch" events
    (accuracy, val_accuracy); ``current``: the model in use (compared when it knows the same classes)."""
    card = model.card or {}
    classes = tuple(model.labels)
    metrics = card.get("test_metrics") if isinstance(card.get("test_metrics"), dict) else {}
    accuracy = _number(card.get("test_accuracy"))
    if accuracy is None:
        accuracy = _number(metrics.get("accuracy"))
    n = metrics.get("n") if isinstance(metrics.get("n"), int) else None
    review = TrainingReview(name=model.name, classes=classes, test_accuracy=accuracy,
                            chance=1.0 / max(1, len(classes)), test_images=n)
    if current is not None and current.onnx_path != model.onnx_path and tuple(current.labels) == classes:
        review.current_name, review.current_accuracy = current.name, current.test_accuracy
    per_class = metrics.get("per_class") if isinstance(metrics.get("per_class"), dict) else {}
    review.recall = {name: float(v["recall"]) for name, v in per_class.items()
                     if isinstance(v, dict) and _number(v.get("recall")) is not None}
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, list) and len(matrix) == len(classes):
        best = None
        for t, row in enumerate(matrix):
            for p, count in enumerate(row if isinstance(row, list) else []):
                if t != p and isinstance(count, int) and count > 0 and (best is None or count > best[2]):
                    best = (classes[t], classes[p], count)
        review.confused = best
    for event in epochs or []:
        if event.get("event", "epoch") == "epoch" and isinstance(event.get("epoch"), int):
            review.curve.append((event["epoch"], _number(event.get("accuracy")), _number(event.get("val_accuracy"))))

    # Warnings: the figures that should stop a user from switching blindly.
    if accuracy is not None and accuracy <= review.chance + CHANCE_MARGIN:
        review.warnings.append(f"At chance level: {accuracy:.1%} is about what guessing gives with {len(classes)} "
                               f"classes ({review.chance:.1%}). The model has not learned to tell them apart yet: "
                               "train longer, or give it more pictures per class.")
    if review.curve:
        _, train, val = review.curve[-1]
        if train is not None and val is not None and train - val > OVERFIT_GAP:
            review.warnings.append(f"Overfitting: {train:.0%} right on the training pictures but {val:.0%} on the "
                                   "validation pictures it did not learn from. It memorised its examples: more "
                                   "pictures (or fewer epochs) would help.")
    if n is not None and classes and n / len(classes) < MIN_TEST_PER_CLASS:
        review.warnings.append(f"Few test pictures: {n:,} for {len(classes)} classes (fewer than "
                               f"{MIN_TEST_PER_CLASS} per class), so the test accuracy is a rough guess.")
    calibration = card.get("calibration") if isinstance(card.get("calibration"), dict) else {}
    before, after = _number(calibration.get("ece_before")), _number(calibration.get("ece_after"))
    if before is not None and after is not None and after > before:
        review.warnings.append(calibration_note(before, after))
    return review


def calibration_note(before: float, after: float) -> str:
    return (f"Calibration made the percentages less reliable here (expected calibration error {before:.3f} before, "
            f"{after:.3f} after): read them as rough.")
