"""What the window shows before any image is loaded: what the model recognises (its own classes), how to
start, and a button that loads the bundled sample images (one CIFAR-10 picture per class) so a first-time user
sees the app work at once."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from cifar10 import contract
from cifar10.contract import CLASS_NAMES
from cifar10.paths import project_root

LISTED = 30  # a model with more classes lists the first LISTED and says how many more


def samples_dir() -> Path:
    return project_root() / "resources" / "samples"


class EmptyState(QWidget):
    try_samples = Signal(str)  # the samples folder

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("<h2>Drop pictures or folders here</h2>", self)
        self.classes = QLabel(self)
        self.classes.setWordWrap(True)
        self.classes.setTextFormat(Qt.TextFormat.RichText)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b22;")
        self.how = QLabel("or use File ▸ Open Files… / Open Folder… — folders are searched inside too.", self)
        self.how.setStyleSheet("color: palette(placeholder-text);")
        self.samples_button = QPushButton("Try the sample images", self)
        self.samples_button.setToolTip(f"Classify the {len(CLASS_NAMES)} pictures in {samples_dir()}")
        self.samples_button.clicked.connect(lambda: self.try_samples.emit(str(samples_dir())))
        self.samples_button.setEnabled(samples_dir().is_dir())
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for widget in (self.title, self.classes, self.how, self.note):
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(widget)
        layout.addSpacing(12)
        layout.addWidget(self.samples_button, 0, Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(2)
        self.set_model(None)

    def set_model(self, model) -> None:
        """List the classes ``model`` (a ModelInfo, or None) knows."""
        if model is None:
            self.classes.setText("No model yet: put a <i>name</i>.onnx + <i>name</i>.json pair in the models folder, "
                                 "then Models ▸ Reload Models.")
            self.samples_button.setEnabled(False)
            return
        self.samples_button.setEnabled(samples_dir().is_dir())
        labels = tuple(model.labels)
        cifar = labels == CLASS_NAMES
        self.samples_button.setToolTip(f"Classify the {len(CLASS_NAMES)} pictures in {samples_dir()}" if cifar else
                                       f"Classify the {len(CLASS_NAMES)} CIFAR-10 example pictures in "
                                       f"{samples_dir()} (this model knows other classes: {model.knows})")
        if contract.open_set_threshold(model.card) is not None:
            other = ("A picture of anything else is usually marked <i>unsure: may be none of these</i> "
                     "(not always: check the percentages).")
        else:
            other = "A picture of anything else still gets the closest of these names, usually with a low confidence."
        listed = ", ".join(escape(name) for name in labels[:LISTED])
        if len(labels) > LISTED:
            listed += f" and {len(labels) - LISTED} more"
        source = "" if cifar else f" (learned from <i>{escape(model.dataset)}</i>, pictures at {model.image_size}×" \
                                  f"{model.image_size} pixels)"
        self.classes.setText(f"<b>{escape(model.name)}</b> tells these {len(labels)} kinds of picture apart{source}:"
                             f"<br><b>{listed}</b>.<br>" + other)

    def set_note(self, text: str) -> None:
        self.note.setText(text)
