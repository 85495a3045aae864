"""Small custom widgets: the probability bar chart (QPainter), a scaled image label, the table with its empty-state hint."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QTableView, QWidget

from cifar10.contract import CLASS_NAMES

ALL_BARS_UP_TO = 12  # a model with more classes shows its TOP_BARS most likely ones and one "other" bar
TOP_BARS = 10


def message_box(parent: QWidget, icon: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
    """A window-modal box that deletes itself when closed: call ``.open()`` (never blocks the event loop)."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box


def ask(parent: QWidget, name: str, title: str, text: str, detail: str,
        buttons: list[tuple[str, QMessageBox.ButtonRole]], *, default: str, escape: str) -> str:
    """A question with named buttons, answered before it returns (``exec``): the text of the button clicked
    (``escape``'s when the box is closed otherwise). ``name`` is the box's objectName (tests answer it)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    box.setObjectName(name)
    box.setInformativeText(detail)
    made = {label: box.addButton(label, role) for label, role in buttons}
    box.setDefaultButton(made[default])
    box.setEscapeButton(made[escape])
    box.exec()
    clicked = box.clickedButton()
    box.deleteLater()
    return next((label for label, button in made.items() if button is clicked), escape)


def array_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 [H, W, 3] -> QImage (owning a copy of the pixels)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def bar_rows(probs: np.ndarray, labels) -> list[tuple[str, float]]:
    """The bars to draw: every class in the model's order when it has at most :data:`ALL_BARS_UP_TO` (so two
    models are easy to compare); else the :data:`TOP_BARS` most likely, best first, and ``other (N classes)``
    holding the rest's sum."""
    labels = tuple(labels)
    if len(labels) != len(probs):
        raise ValueError(f"{len(probs)} probabilities for {len(labels)} class names")
    if len(labels) <= ALL_BARS_UP_TO:
        return [(name, float(p)) for name, p in zip(labels, probs)]
    order = np.argsort(-probs, kind="stable")
    rows = [(labels[i], float(probs[i])) for i in order[:TOP_BARS]]
    rest = order[TOP_BARS:]
    return rows + [(f"other ({len(rest)} classes)", float(np.sum(probs[rest])))]


class ProbabilityBars(QWidget):
    """A horizontal bar per class (see :func:`bar_rows`); the top class is drawn in the highlight colour.
    ``set_probabilities(None)`` shows a placeholder text."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._probs: np.ndarray | None = None
        self._rows: list[tuple[str, float]] = []
        self._placeholder = "Select a row to see its class probabilities"
        self.setMinimumSize(260, 10 * 18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_probabilities(self, probs: np.ndarray | None, placeholder: str | None = None, *,
                          labels=CLASS_NAMES) -> None:
        """``labels``: the model's class names in output order (``Result.classes``)."""
        self._probs = None if probs is None else np.asarray(probs, dtype=np.float32)
        self._rows = [] if self._probs is None else bar_rows(self._probs, labels)
        if placeholder is not None:
            self._placeholder = placeholder
        self.setMinimumHeight(max(4, len(self._rows) or 10) * 18)
        self.updateGeometry()
        self.update()

    def probabilities(self) -> np.ndarray | None:
        return self._probs

    def rows(self) -> list[tuple[str, float]]:
        """The bars on show: (name, probability), top to bottom."""
        return list(self._rows)

    def sizeHint(self) -> QSize:
        return QSize(320, max(4, len(self._rows) or 10) * 24)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.WindowText)
        if self._probs is None:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        rows = self._rows
        metrics = painter.fontMetrics()
        label_w = min(max(metrics.horizontalAdvance(name) for name, _ in rows) + 10, int(self.width() * 0.45))
        value_w = metrics.horizontalAdvance("100.0%") + 8
        row_h = min(self.height() / len(rows), 34.0)  # a few classes: bars stay together at the top
        bar_h = max(4.0, min(row_h * 0.62, 22.0))
        bar_x = label_w
        bar_w = max(10.0, self.width() - label_w - value_w)
        top = 0 if len(self._probs) > ALL_BARS_UP_TO else int(np.argmax(self._probs))  # never the "other" bar
        accent = palette.color(QPalette.ColorRole.Highlight)
        other = QColor(accent)
        other.setAlpha(110)
        track = palette.color(QPalette.ColorRole.Mid)
        track.setAlpha(45)
        bold = QFont(painter.font())
        bold.setBold(True)
        for i, (name, p) in enumerate(rows):
            p = float(np.clip(p, 0.0, 1.0))
            y = i * row_h
            painter.setFont(bold if i == top else self.font())
            painter.setPen(text_color)
            shown = painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, label_w - 6)
            painter.drawText(QRectF(0, y, label_w - 6, row_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, shown)
            bar_y = y + (row_h - bar_h) / 2
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(QRectF(bar_x, bar_y, bar_w, bar_h), 3, 3)
            if bar_w * p >= 1.0:
                painter.setBrush(accent if i == top else other)
                painter.drawRoundedRect(QRectF(bar_x, bar_y, bar_w * p, bar_h), 3, 3)
            painter.setPen(text_color)
            painter.drawText(QRectF(bar_x + bar_w + 4, y, value_w, row_h),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{p:.1%}")
        painter.end()


class ScaledImageLabel(QLabel):
    """A QLabel that keeps its pixmap scaled to fit (aspect kept), smooth or pixelated."""

    def __init__(self, parent: QWidget | None = None, *, smooth: bool = True, minimum: int = 64):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._smooth = smooth
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, image: QImage | None, text: str = "") -> None:
        self._pixmap = QPixmap.fromImage(image) if image is not None and not image.isNull() else None
        if self._pixmap is None:
            super().setPixmap(QPixmap())
            self.setText(text)
        else:
            self.setText("")
            self._rescale()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self.width() < 2 or self.height() < 2:
            return
        # Tiny images (CIFAR's 32x32) are blown up pixelated: smoothing would show a blur that is not in the file.
        tiny = max(self._pixmap.width(), self._pixmap.height()) < 160
        smooth = self._smooth and not (tiny and self.width() > self._pixmap.width())
        mode = Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        super().setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, mode))


class ResultsTableView(QTableView):
    """The results table; while it is empty it shows a "drop images here" hint."""

    hint = "Drop images or folders here\n(or File ▸ Open Files… / Open Folder…)"

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.25)
            painter.setFont(font)
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.hint)
            painter.end()
