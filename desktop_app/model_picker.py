"""The model picker: a combo box over the session's models (the session finds them: cifar10.registry),
remembers the last one, and says which model files were skipped and why."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QComboBox, QMessageBox, QStyle, QStyleOptionComboBox, QStylePainter, QWidget

from cifar10.registry import ModelInfo
from desktop_app.model_speed import describe, settings_key
from desktop_app.session import Session
from desktop_app.widgets import message_box

SETTINGS_MODEL = "model"


class ModelPicker(QComboBox):
    """A view of the session's models: lists them (accuracy from the card, speed measured here), shows the
    current one and sends the user's choice to the session. ``model_changed`` fires when the session's model
    changes (another model, or the same name with a new file)."""

    model_changed = Signal(object)  # ModelInfo

    def __init__(self, session: Session, settings: QSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.settings = settings
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(30)  # the closed box shows "name — 94.6 %": the whole line is in the list
        self.view().setTextElideMode(Qt.TextElideMode.ElideNone)
        self.currentIndexChanged.connect(self._on_index_changed)
        session.models_changed.connect(self._fill)
        session.model_changed.connect(self._on_session_model)
        session.speed_measured.connect(self.set_speed)

    @property
    def models(self) -> list[ModelInfo]:
        return list(self.session.models)

    @property
    def current(self) -> ModelInfo | None:
        return self.session.model

    @property
    def errors(self) -> list[str]:
        return self.session.model_errors

    @property
    def model_dirs(self):
        return self.session.model_dirs

    def reload(self, prefer: str | None = None) -> None:
        """Rescan the model folders (the session does); the remembered model is the default."""
        self.session.reload_models(prefer, remembered=self.settings.value(SETTINGS_MODEL))

    def _fill(self) -> None:
        models = self.session.models
        self.blockSignals(True)
        self.clear()
        for model in models:
            self.addItem(self.item_text(model), model.name)
            self.setItemData(self.count() - 1, self.tooltip(model), Qt.ItemDataRole.ToolTipRole)
        if not models:
            self.addItem("No models found")
        self.setEnabled(bool(models))
        self._show_current()
        self.blockSignals(False)
        popup = max((self.fontMetrics().horizontalAdvance(self.itemText(i)) for i in range(self.count())), default=0)
        self.view().setMinimumWidth(popup + 48)  # the open list shows whole names

    def _show_current(self) -> None:
        current = self.session.model
        index = next((i for i, m in enumerate(self.session.models) if m is current), -1)
        if current is not None and index < 0:
            index = self.findData(current.name)
        if index >= 0:
            was = self.blockSignals(True)
            self.setCurrentIndex(index)
            self.blockSignals(was)
        self.setToolTip(self.tooltip(current) if current is not None else "")

    def _on_session_model(self, model: ModelInfo | None) -> None:
        self._show_current()
        if model is not None:
            self.settings.setValue(SETTINGS_MODEL, model.name)
            self.model_changed.emit(model)

    def speed(self, model: ModelInfo) -> float | None:
        """Images/s measured on this machine for this model file, or None if not measured yet."""
        value = self.settings.value(settings_key(model))
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @staticmethod
    def short_text(model: ModelInfo) -> str:
        """What the closed box shows: ``fast_cnn — 94.6 %`` (the list and the tooltip say the rest)."""
        accuracy = model.test_accuracy
        return model.name + (f" — {accuracy:.1%}" if accuracy is not None else "")

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        model = self.session.model
        if model is not None:
            field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                                QStyle.SubControl.SC_ComboBoxEditField, self)
            option.currentText = self.fontMetrics().elidedText(self.short_text(model), Qt.TextElideMode.ElideMiddle,
                                                               max(20, field.width() - 4))
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def item_text(self, model: ModelInfo) -> str:
        """``fast_cnn — 94.6% test accuracy · 2,100 images/s here``: accuracy from the card, speed measured on
        this machine (after the model's first use)."""
        speed = self.speed(model)
        return model.label + (f" · {speed:,.0f} images/s here" if speed is not None else "")

    def tooltip(self, model: ModelInfo) -> str:
        """What the model knows (dataset, classes, input size), its summary and its speed here."""
        more = model.num_classes - 12
        classes = ", ".join(model.labels[:12]) + (f", … ({more} more)" if more > 0 else "")
        return (f"{model.name}: {model.knows} ({classes}); pictures shrunk to {model.image_size}×{model.image_size} px\n"
                + (f"{model.summary}\n" if model.summary else "") + describe(self.speed(model)))

    def set_speed(self, model: ModelInfo, images_per_s: float) -> None:
        self.settings.setValue(settings_key(model), float(images_per_s))
        for index, known in enumerate(self.session.models):
            if known.onnx_path == model.onnx_path:
                self.setItemText(index, self.item_text(known))
                self.setItemData(index, self.tooltip(known), Qt.ItemDataRole.ToolTipRole)
                if known is self.session.model:
                    self.setToolTip(self.tooltip(known))

    def set_model(self, name: str) -> None:
        """Select a model by name, as the user would in the combo box."""
        index = self.findData(name)
        if index < 0:
            raise KeyError(f"no model named {name!r}")
        self.setCurrentIndex(index)

    def _on_index_changed(self, index: int) -> None:
        models = self.session.models
        if 0 <= index < len(models) and models[index] is not self.session.model:
            self.session.set_model(models[index])

    def show_problems(self) -> QMessageBox:
        """Which model files were skipped at the last reload, and why."""
        text = "\n\n".join(self.errors) or "All models found honour the ONNX contract."
        box = message_box(self.window(), QMessageBox.Icon.Warning if self.errors else QMessageBox.Icon.Information,
                          "Model problems", "These model files were skipped:" if self.errors else text)
        if self.errors:
            box.setDetailedText(text)
            box.setInformativeText(text[:600])
        box.open()
        return box
