"""The main window's part for working with results (a mixin for MainWindow): the first screen (what the
model knows, Try the sample images, "no images found"), the counts, forgetting rows taken out of the list, and the
Evaluate on a Labelled Folder…, Sort into Class Folders… and Train on a Folder… dialogs (their own modules)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStackedWidget

from cifar10.inference import Result
from desktop_app.empty_state import EmptyState
from desktop_app.jobs import path_key


class ResultsWorkMixin:
    def _setup_results_work(self) -> None:
        """Needs ``results`` and ``results_model``; makes ``empty_state`` and ``results_area`` (the splitter's
        left side: the first screen while the table is empty, then the table)."""
        self.results.actions_.removed.connect(self._on_rows_removed)
        self.empty_state = EmptyState(self)
        self.empty_state.try_samples.connect(lambda folder: self.add_paths([folder]))
        self.results_area = QStackedWidget(self)
        self.results_area.addWidget(self.empty_state)
        self.results_area.addWidget(self.results)
        for signal in (self.results_model.rowsInserted, self.results_model.rowsRemoved, self.results_model.modelReset):
            signal.connect(self._update_empty_state)

    def _update_empty_state(self, *_) -> None:
        self.results_area.setCurrentWidget(self.results if self.results_model.rowCount() else self.empty_state)

    def _say_no_images(self, paths: list[str]) -> None:
        where = ", ".join(os.path.basename(p.rstrip("/\\")) or p for p in paths[:3])
        self.empty_state.set_note(f"No images found in {where}" if where else "No images found")
        self.statusBar().showMessage(f"No images found in {where}", 10000)

    def _update_counts(self) -> None:
        """The status bar's "N files · U unsure · E could not be read"."""
        total, errors = self.results_model.rowCount(), self.results_model.error_count()
        unsure = self.results_model.unsure_count()
        text = f"{total:,} files"
        if unsure:
            text += f" · {unsure:,} unsure"
        if errors:
            text += f" · {errors:,} could not be read"
        self.counts_label.setText(text)

    def _on_rows_removed(self, removed: list[Result]) -> None:
        """Rows taken out of the list (Delete, Remove from List): forget those files (they stay on disk), so
        a model switch does not bring them back."""
        keys = {path_key(r.path) for r in removed}
        self._files = [p for p in self._files if path_key(p) not in keys]
        self._file_keys -= keys
        self._update_counts()

    def show_evaluation_dialog(self):
        """Models ▸ Evaluate on a Labelled Folder… (evaluation_view.py); returns the dialog."""
        from desktop_app.evaluation_view import EvaluationDialog

        if self.current_model is None:
            return None
        dialog = EvaluationDialog(self.current_model, self.provider, self, start_dir=self._last_dir())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_organize_dialog(self):
        """File ▸ Sort into Class Folders… (organize_dialog.py), with the loaded files and folders as sources."""
        from desktop_app.organize_dialog import OrganizeDialog

        if self.current_model is None:
            return None
        dialog = OrganizeDialog(self.current_model, self.provider, self, sources=list(self._sources),
                                start_dir=self._last_dir())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_train_dialog(self, **options):
        """Models ▸ Train on a Folder… (train_dialog.py; ``options``: export_dir, runs_dir); when a model is
        saved, the models are rescanned and the new one is selected. Returns the dialog."""
        from desktop_app.train_dialog import TrainDialog

        dialog = TrainDialog(self, start_dir=self._last_dir(), **options)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.model_exported.connect(self._on_model_trained)
        self.train_dialog = dialog
        dialog.show()
        return dialog

    def _on_model_trained(self, onnx_path: str) -> None:
        """Rescan the model folders and select the new model (by name when it is in one of them, as every
        model the window finds; else by its path, as `--model PATH`)."""
        from cifar10.paths import model_dirs

        path = Path(onnx_path)
        folders = {Path(d).resolve() for d in (self.model_combo.model_dirs or model_dirs())}
        self.reload_models(path.stem if path.parent.resolve() in folders else str(path))
        current = self.current_model
        if (current is None or current.onnx_path.resolve() != path.resolve()) and self.model_combo.findData(path.stem) >= 0:
            self.set_model(path.stem)  # a model given with --model PATH stays the reload's preference
