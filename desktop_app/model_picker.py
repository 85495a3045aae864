"""The model picker: finds the exported models (cifar10.registry), lists them in a combo box, remembers
the last one, and says which model files were skipped and why."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QComboBox, QMessageBox, QWidget

from cifar10.registry import ModelError, ModelInfo, best_model, discover_models, find_model
from desktop_app.model_speed import describe, settings_key
from desktop_app.widgets import message_box

SETTINGS_MODEL = "model"


class ModelPicker(QComboBox):
    """``model_changed`` fires when the user (or :meth:`reload`) picks another model file."""

    model_changed = Signal(object)  # ModelInfo

    def __init__(self, settings: QSettings, model_dirs: list | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.model_dirs = model_dirs  # None: cifar10.paths.model_dirs()
        self._models: list[ModelInfo] = []
        self.errors: list[str] = []
        self._extra_path: str | None = None  # a --model .onnx outside the model folders
        self._current: ModelInfo | None = None
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setMinimumContentsLength(28)
        self.currentIndexChanged.connect(self._on_index_changed)

    @property
    def models(self) -> list[ModelInfo]:
        return list(self._models)

    @property
    def current(self) -> ModelInfo | None:
        return self._current

    def reload(self, prefer: str | None = None) -> None:
        """Rescan the model folders; keep the current model if it is still there. ``prefer``: a model name
        or a path to an .onnx file (which may lie outside the model folders)."""
        self._models, self.errors = discover_models(self.model_dirs)
        wanted = prefer or (self._current.name if self._current else None) or self.settings.value(SETTINGS_MODEL)
        if prefer and not any(m.name == prefer for m in self._models):
            self._extra_path = prefer
        extra = self._add_extra() if self._extra_path else None
        chosen = ((extra if prefer else None) or next((m for m in self._models if m.name == wanted), None)
                  or best_model(self._models))
        self.blockSignals(True)
        self.clear()
        for model in self._models:
            self.addItem(self.item_text(model), model.name)
            self.setItemData(self.count() - 1, self.tooltip(model), Qt.ItemDataRole.ToolTipRole)
        if not self._models:
            self.addItem("No models found")
        self.setEnabled(bool(self._models))
        if chosen is not None:
            self.setCurrentIndex(self._models.index(chosen))
        self.blockSignals(False)
        if chosen is None:
            self._current = None
        elif self._current is None or chosen.onnx_path != self._current.onnx_path:
            self._select(chosen)

    def speed(self, model: ModelInfo) -> float | None:
        """Images/s measured on this machine for this model file, or None if not measured yet."""
        value = self.settings.value(settings_key(model))
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

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
        for index, known in enumerate(self._models):
            if known.onnx_path == model.onnx_path:
                self.setItemText(index, self.item_text(known))
                self.setItemData(index, self.tooltip(known), Qt.ItemDataRole.ToolTipRole)
                if known is self._current:
                    self.setToolTip(self.tooltip(known))

    def _add_extra(self) -> ModelInfo | None:
        try:
            extra = find_model(self._extra_path, self._models)
        except ModelError as exc:
            self.errors.append(str(exc))
            self._extra_path = None
            return None
        same = next((m for m in self._models if m.onnx_path.resolve() == extra.onnx_path.resolve()), None)
        if same is not None:
            return same
        self._models.insert(0, extra)
        return extra

    def set_model(self, name: str) -> None:
        """Select a model by name, as the user would in the combo box."""
        index = self.findData(name)
        if index < 0:
            raise KeyError(f"no model named {name!r}")
        self.setCurrentIndex(index)

    def _on_index_changed(self, index: int) -> None:
        if 0 <= index < len(self._models) and self._models[index] is not self._current:
            self._select(self._models[index])

    def _select(self, model: ModelInfo) -> None:
        self._current = model
        self.settings.setValue(SETTINGS_MODEL, model.name)
        self.setToolTip(self.tooltip(model))
        self.model_changed.emit(model)

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
