"""After Train on a Folder: the new model beside the one in use, and the question "Use this model?" (issue 24),
instead of switching silently. Renders a :class:`desktop_app.guardrails.TrainingReview`: the test accuracy
against chance and against the current model, the warnings, the per-class recall, the most confused pair of
classes (with a picture of each from the training folder) and the validation curve. :class:`AccuracyChart` is
that curve, also drawn live in the Train dialog while it trains."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget)

from cifar10.preprocess import IMAGE_SUFFIXES, ImageError, load_preview
from desktop_app.guardrails import TrainingReview
from desktop_app.widgets import ProbabilityBars, ScaledImageLabel, array_to_qimage

TRAIN_COLOUR, VAL_COLOUR = QColor(120, 120, 120), QColor(38, 120, 200)
LEGEND = (("training", TRAIN_COLOUR), ("validation", VAL_COLOUR))


class AccuracyChart(QWidget):
    """Training (grey) and validation (blue) accuracy per epoch, on a fixed 0-100 % scale."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.points: list[tuple[int, float | None, float | None]] = []
        self.epochs = 0  # planned epochs (the x axis), when known
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Accuracy per epoch: grey on the training pictures, blue on the validation pictures it "
                        "does not learn from. Blue far below grey: overfitting.")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(360, 120)

    def clear(self) -> None:
        self.points, self.epochs = [], 0
        self.update()

    def add_epoch(self, event: dict) -> None:
        """One "epoch" event of `cifar10 train --progress json`."""
        def number(key):
            value = event.get(key)
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        if isinstance(event.get("epoch"), int):
            self.points.append((event["epoch"], number("accuracy"), number("val_accuracy")))
            self.epochs = max(self.epochs, int(event.get("epochs") or 0), event["epoch"])
            self.update()

    def set_curve(self, points) -> None:
        self.points = list(points)
        self.epochs = max((p[0] for p in self.points), default=0)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.PlaceholderText)
        metrics = self.fontMetrics()
        left, bottom = metrics.horizontalAdvance("100%") + 8, metrics.height() + 4
        plot = QRectF(left, 6, max(10, self.width() - left - 10), max(10, self.height() - bottom - 10))
        painter.setPen(QPen(text, 1))
        for share in (0.0, 0.5, 1.0):
            y = plot.bottom() - share * plot.height()
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.drawText(QRectF(0, y - metrics.height() / 2, left - 4, metrics.height()),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), f"{share:.0%}")
        if not self.points:
            painter.drawText(plot, int(Qt.AlignmentFlag.AlignCenter), "accuracy per epoch appears here")
            return
        last = max(1, self.epochs)
        painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), metrics.height()),
                         int(Qt.AlignmentFlag.AlignRight), f"epoch {self.points[-1][0]} of {last}")
        # The legend, under the plot on the left: a short line of each colour and its name.
        x, y = plot.left(), plot.bottom() + 2 + metrics.height() / 2
        for name, colour in LEGEND:
            painter.setPen(QPen(colour, 2))
            painter.drawLine(QPointF(x, y), QPointF(x + 14, y))
            painter.setPen(QPen(text, 1))
            painter.drawText(QPointF(x + 18, plot.bottom() + 2 + metrics.ascent()), name)
            x += 18 + metrics.horizontalAdvance(name) + 12

        def x_of(epoch: int) -> float:
            return plot.left() + (epoch - 1) / max(1, last - 1) * plot.width() if last > 1 else plot.center().x()

        for index, colour in ((1, TRAIN_COLOUR), (2, VAL_COLOUR)):
            values = [(x_of(p[0]), plot.bottom() - p[index] * plot.height()) for p in self.points if p[index] is not None]
            if not values:
                continue
            painter.setPen(QPen(colour, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            path = QPainterPath(QPointF(*values[0]))
            for point in values[1:]:
                path.lineTo(QPointF(*point))
            painter.drawPath(path)
            painter.setBrush(colour)
            for point in values:
                painter.drawEllipse(QPointF(*point), 2.5, 2.5)


def example_picture(data_dir: str | None, class_name: str) -> np.ndarray | None:
    """The first picture of ``class_name`` in the training folder (``<dir>/<class>/`` or ``<dir>/train/<class>/``)."""
    if not data_dir:
        return None
    for folder in (Path(data_dir) / class_name, Path(data_dir) / "train" / class_name):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    try:
                        return load_preview(str(path), 96)
                    except (ImageError, OSError):
                        continue
    return None


class TrainReviewDialog(QDialog):
    """accept(): use the new model; reject(): keep the current one."""

    def __init__(self, review: TrainingReview, parent: QWidget | None = None, *, data_dir: str | None = None,
                 in_use: bool = False):
        super().__init__(parent)
        self.review = review
        self.setWindowTitle(f"Use {review.name}?" if not in_use else f"{review.name} is trained")
        layout = QVBoxLayout(self)
        title = QLabel(f"<h3>{escape(review.name)}</h3>{escape(review.comparison())}", self)
        title.setWordWrap(True)
        layout.addWidget(title)
        self.comparison = title
        self.warnings = QLabel("<br>".join(f"⚠ {escape(w)}" for w in review.warnings), self)
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #a35200;")
        self.warnings.setVisible(bool(review.warnings))
        layout.addWidget(self.warnings)

        row = QHBoxLayout()
        recall_box = QVBoxLayout()
        recall_box.addWidget(QLabel("<b>Right per class</b> (recall on the test pictures)", self))
        self.recall = ProbabilityBars(self)
        if review.recall:
            names = tuple(review.recall)
            self.recall.set_probabilities(np.array([review.recall[n] for n in names], np.float32), labels=names)
        else:
            self.recall.set_probabilities(None, "The card has no per-class figures")
        recall_box.addWidget(self.recall)
        recall_box.addStretch(1)
        row.addLayout(recall_box, 1)
        side = QVBoxLayout()
        side.addWidget(QLabel("<b>Accuracy while it trained</b>", self))
        self.chart = AccuracyChart(self)
        self.chart.set_curve(review.curve)
        side.addWidget(self.chart)
        self.confused = QLabel(self)
        self.confused.setWordWrap(True)
        side.addWidget(self.confused)
        holder = QWidget(self)
        pictures = QHBoxLayout(holder)
        pictures.setContentsMargins(0, 0, 0, 0)
        self.pictures = []
        if review.confused is not None:
            true, predicted, count = review.confused
            self.confused.setText(f"<b>Most often mixed up:</b> {count:,} test picture{'s' if count != 1 else ''} of "
                                  f"<b>{escape(true)}</b> taken for <b>{escape(predicted)}</b>")
            for name in (true, predicted):
                picture = example_picture(data_dir, name)
                label = ScaledImageLabel(holder, smooth=True, minimum=72)
                label.setFixedSize(96, 96)
                label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
                label.set_image(array_to_qimage(picture) if picture is not None else None, name)
                label.setToolTip(f"a {name} picture from the training folder")
                self.pictures.append(label)
                column = QVBoxLayout()
                column.addWidget(label)
                caption = QLabel(name, holder)
                caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
                column.addWidget(caption)
                pictures.addLayout(column)
            pictures.addStretch(1)
        else:
            self.confused.setText("No two classes were mixed up on the test pictures.")
        side.addWidget(holder)
        side.addStretch(1)
        row.addLayout(side, 1)
        layout.addLayout(row, 1)

        buttons = QDialogButtonBox(self)
        if in_use:
            self.use_button = buttons.addButton("OK", QDialogButtonBox.ButtonRole.AcceptRole)
            self.keep_button = None
        else:
            self.use_button = buttons.addButton("Use this model", QDialogButtonBox.ButtonRole.AcceptRole)
            keep = f"Keep {review.current_name}" if review.current_name else "Keep the current model"
            self.keep_button = buttons.addButton(keep, QDialogButtonBox.ButtonRole.RejectRole)
            (self.use_button if review.recommended else self.keep_button).setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 460)
