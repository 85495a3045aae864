"""The preview panel: the selected image large (optionally with the heatmap of where the model looked), the
picture the model saw (at its input size: 32x32 for the CIFAR-10 models), the label (or the "unsure" state) and the probability bars on a fixed 0-100 % scale."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from cifar10 import heatmap
from cifar10.inference import Classifier, Result
from cifar10.preprocess import ImageError, load_image, load_preview
from desktop_app.jobs import file_stamp
from desktop_app.widgets import ProbabilityBars, ScaledImageLabel, array_to_qimage

PREVIEW_SIZE = 768  # longest side of the decoded preview, in pixels
UNSURE_STYLE = "color:#b06e00"


def _compute_heatmap(classifier: Classifier, result: Result) -> heatmap.Heatmap:
    size = classifier.image_size
    image = result.image
    if image is None or image.shape[:2] != (size, size):  # no kept input, or another model's
        image = load_image(result.path, size)
    return heatmap.explain(classifier, image)


class PreviewPanel(QFrame):
    heatmap_ready = Signal(object)  # the Heatmap shown (tests and scripts wait on it)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._classifier: Classifier | None = None
        self._result: Result | None = None
        self._picture: np.ndarray | None = None  # the decoded preview, RGB
        self._picture_stamp = None  # the file version it was decoded from (jobs.file_stamp)
        self._heat: heatmap.Heatmap | None = None
        self._worker = None
        self._request = 0
        self.image = ScaledImageLabel(self, smooth=True, minimum=160)
        self.image.setText("No image selected")
        self.model_input = ScaledImageLabel(self, smooth=False, minimum=64)
        self.model_input.setFixedSize(96, 96)
        self.model_input.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.model_input.setFrameShape(QFrame.Shape.StyledPanel)
        self.model_input.setToolTip("What the model sees: the picture after preprocessing, at the model's input "
                                    "size")
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.heatmap_toggle = QCheckBox("Show where the model looked", self)
        self.heatmap_toggle.setToolTip("Heatmap of the evidence for the most likely class: class activation map "
                                       "when the model has one (one pass), else occlusion sensitivity (50 passes, "
                                       "computed in the background)")
        self.heatmap_toggle.toggled.connect(self._refresh_heatmap)
        self.heatmap_note = QLabel(self)
        self.heatmap_note.setStyleSheet("color: palette(placeholder-text);")
        self.bars = ProbabilityBars(self)
        self.caption = caption = QLabel("Model input:", self)
        caption.setStyleSheet("color: palette(placeholder-text);")

        row = QHBoxLayout()
        row.addWidget(self.model_input)
        side = QVBoxLayout()
        side.addWidget(caption)
        side.addWidget(self.title)
        side.addStretch(1)
        row.addLayout(side, 1)
        toggle_row = QHBoxLayout()
        toggle_row.addWidget(self.heatmap_toggle)
        toggle_row.addWidget(self.heatmap_note, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 3)
        layout.addLayout(toggle_row)
        layout.addLayout(row)
        layout.addWidget(self.bars, 2)

    def set_classifier(self, classifier: Classifier | None) -> None:
        """The model the heatmap is computed with (the window's current one)."""
        if classifier is not self._classifier:
            self._classifier = classifier
            self._heat = None
            self._refresh_heatmap()

    def show_result(self, result: Result | None, model_name: str = "") -> None:
        """Show one classified file (None: clear)."""
        if result is None:
            self.clear()
            return
        stamp = file_stamp(result.path)
        same_file = (self._result is not None and self._result.path == result.path and self._picture is not None
                     and stamp == self._picture_stamp)
        self._result, self._heat = result, None
        name = os.path.basename(result.path)
        if not same_file:  # a new answer for the row on show (a model switch) does not decode the file again,
            self._picture, self._picture_stamp = None, stamp  # unless it changed on disk meanwhile
            try:
                self._picture = load_preview(result.path, PREVIEW_SIZE)
            except ImageError as exc:
                self.image.set_image(None, f"Cannot show this file:\n{exc.reason}")
        model_input = self._model_input(result)
        self.model_input.set_image(array_to_qimage(model_input) if model_input is not None else None)
        if model_input is not None:
            height, width = model_input.shape[:2]
            self.caption.setText(f"Model input ({width}×{height}):")
        small = f"<br><small>{model_name}</small>" if model_name else ""
        if result.error:
            self.title.setText(f"<b>{name}</b><br><span style='color:#b22'>{result.error}</span>")
            self.bars.set_probabilities(None, "No prediction: the file could not be read")
        elif result.unsure:
            self.title.setText(f"<b>{name}</b><br><span style='{UNSURE_STYLE}'><b>{result.display_label}</b></span>"
                               f"<br>most like {result.label} · {result.confidence:.1%}{small}")
            self.bars.set_probabilities(result.probabilities, labels=result.classes)
        else:
            self.title.setText(f"<b>{name}</b><br>{result.label} · {result.confidence:.1%}{small}")
            self.bars.set_probabilities(result.probabilities, labels=result.classes)
        self._refresh_heatmap()

    def _model_input(self, result: Result):
        """The picture the model saw: the row's kept input, or (a photo model's row keeps only a thumbnail:
        desktop_app.jobs) the file decoded again at the model's input size."""
        size = self._classifier.image_size if self._classifier is not None else None
        image = result.image
        if result.error or size is None or (image is not None and image.shape[0] == size) or \
                tuple(self._classifier.labels) != tuple(result.classes):
            return image
        try:
            return load_image(result.path, size)
        except (ImageError, OSError):
            return image

    def clear(self) -> None:
        self._result, self._heat, self._picture = None, None, None
        self._request += 1
        self.image.set_image(None, "No image selected")
        self.model_input.set_image(None)
        self.title.setText("")
        self.heatmap_note.setText("")
        self.bars.set_probabilities(None, "Select a row to see its class probabilities")

    # --- heatmap ---------------------------------------------------------------------------------
    def heatmap(self) -> heatmap.Heatmap | None:
        """The heatmap on show (None when the toggle is off or it is still being computed)."""
        return self._heat if self.heatmap_toggle.isChecked() else None

    def _show_picture(self) -> None:
        if self._picture is None:
            return
        picture = self._picture
        if self.heatmap_toggle.isChecked() and self._heat is not None:
            picture = heatmap.overlay(picture, self._heat.heat)
        self.image.set_image(array_to_qimage(picture))

    def _refresh_heatmap(self) -> None:
        self._request += 1
        result = self._result
        if not self.heatmap_toggle.isChecked() or result is None or result.error:
            self.heatmap_note.setText("")
            self._show_picture()
            return
        if self._classifier is None:
            self.heatmap_note.setText("(the model loads with the first classification)")
            self._show_picture()
            return
        if self._heat is not None:
            self._show_picture()
            return
        self._show_picture()
        self.heatmap_note.setText("computing…")
        request, classifier = self._request, self._classifier
        from superqt.utils import create_worker

        worker = create_worker(_compute_heatmap, classifier, result, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda heat, r=request: self._on_heatmap(r, heat))
        worker.errored.connect(lambda exc, r=request: self._on_heatmap_failed(r, exc))
        self._worker = worker
        worker.start()

    def _on_heatmap(self, request: int, heat: heatmap.Heatmap) -> None:
        if request != self._request:
            return  # the selection or the model changed meanwhile
        self._heat = heat
        how = "class activation map" if heat.method == "cam" else "occlusion sensitivity"
        self.heatmap_note.setText(f"{heat.class_name}: {how}")
        self._show_picture()
        self.heatmap_ready.emit(heat)

    def _on_heatmap_failed(self, request: int, exc: Exception) -> None:
        if request == self._request:
            self.heatmap_note.setText(f"no heatmap: {exc}")
