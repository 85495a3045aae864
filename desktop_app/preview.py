"""The preview panel: the selected image large, the 32x32 the model saw, and the probability bars."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from cifar10.inference import Result
from cifar10.preprocess import ImageError, load_preview
from desktop_app.widgets import ProbabilityBars, ScaledImageLabel, array_to_qimage

PREVIEW_SIZE = 768  # longest side of the decoded preview, in pixels


class PreviewPanel(QFrame):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.image = ScaledImageLabel(self, smooth=True, minimum=160)
        self.image.setText("No image selected")
        self.model_input = ScaledImageLabel(self, smooth=False, minimum=64)
        self.model_input.setFixedSize(96, 96)
        self.model_input.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.model_input.setFrameShape(QFrame.Shape.StyledPanel)
        self.model_input.setToolTip("What the model sees: the 32×32 image after preprocessing")
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bars = ProbabilityBars(self)
        caption = QLabel("Model input (32×32):", self)
        caption.setStyleSheet("color: palette(placeholder-text);")

        row = QHBoxLayout()
        row.addWidget(self.model_input)
        side = QVBoxLayout()
        side.addWidget(caption)
        side.addWidget(self.title)
        side.addStretch(1)
        row.addLayout(side, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 3)
        layout.addLayout(row)
        layout.addWidget(self.bars, 2)

    def show_result(self, result: Result | None, model_name: str = "") -> None:
        """Show one classified file (None: clear)."""
        if result is None:
            self.clear()
            return
        name = os.path.basename(result.path)
        try:
            self.image.set_image(array_to_qimage(load_preview(result.path, PREVIEW_SIZE)))
        except ImageError as exc:
            self.image.set_image(None, f"Cannot show this file:\n{exc.reason}")
        self.model_input.set_image(array_to_qimage(result.image) if result.image is not None else None)
        if result.error:
            self.title.setText(f"<b>{name}</b><br><span style='color:#b22'>{result.error}</span>")
            self.bars.set_probabilities(None, "No prediction: the file could not be read")
        else:
            self.title.setText(f"<b>{name}</b><br>{result.label} · {result.confidence:.1%}"
                               + (f"<br><small>{model_name}</small>" if model_name else ""))
            self.bars.set_probabilities(result.probabilities)

    def clear(self) -> None:
        self.image.set_image(None, "No image selected")
        self.model_input.set_image(None)
        self.title.setText("")
        self.bars.set_probabilities(None, "Select a row to see its class probabilities")
