"""The main window: drop files, watch them being classified, inspect one, switch models, export.

Everything it shows lives in one :class:`desktop_app.session.Session` (plain Python, no Qt): the loaded
files, the results per model file version, the current model, the filters, the selection and the running
job. The window only assembles views of it — the model picker (model_picker.py), the results table with its
filters (results_view.py), the preview (preview.py), the first screen (empty_state.py) and the status bar —
which render the session's events and send it the user's intents; the job runner (job_runner.py) writes the
jobs' results into it. window_ui.py lays out the menus, toolbar and status bar.
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMessageBox, QStackedWidget

from cifar10.inference import Result
from cifar10.paths import model_dirs, user_models_dir
from cifar10.registry import ModelInfo
from desktop_app.card_dialog import ModelCardDialog
from desktop_app.empty_state import EmptyState
from desktop_app.file_input import DropTarget, last_dir, open_files_dialog, open_folder_dialog, remember_dir
from desktop_app.job_runner import ClassifyRunner
from desktop_app.model_picker import ModelPicker
from desktop_app.preview import PreviewPanel
from desktop_app.results_view import ResultsView
from desktop_app.session import Session
from desktop_app.training_flow import TrainingFlow
from desktop_app.widgets import message_box
from desktop_app.window_ui import observe_status, setup_ui

APP_NAME = "CIFAR-10 Studio"
SETTINGS_GEOMETRY, SETTINGS_SPLITTER = "geometry", "splitter"
MODEL_CHECK_MS = 2000  # how often the model folders are looked at for re-trained / copied / new model files


class MainWindow(QMainWindow):
    job_finished = Signal()  # after every job (completed, cancelled or failed): tests and scripts wait on it

    def __init__(self, *, settings: QSettings | None = None, model_dirs_: list | None = None,
                 provider: str = "auto", initial_model: str | None = None, batch_size: int = 128):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("cifar10-studio", "desktop-app")
        self.provider, self.batch_size = provider, batch_size
        self.runner = ClassifyRunner(parent=self)
        self.session = session = Session(self.runner, model_dirs=model_dirs_, provider=provider,
                                          batch_size=batch_size)
        self.runner.session = session

        self.resize(1180, 760)
        self.model_combo = ModelPicker(session, self.settings, self)
        session.speed_known = lambda model: self.model_combo.speed(model) is not None
        self.results = ResultsView(session, self)
        self.table, self.results_model, self.proxy = self.results, self.results.results_model, self.results.proxy
        self.class_filter, self.search = self.results.class_filter, self.results.search
        self.results.doubleClicked.connect(lambda index: self.results.actions_.open_selected())
        self.preview = PreviewPanel(self)
        self.empty_state = EmptyState(self)
        self.empty_state.try_samples.connect(lambda folder: self.add_paths([folder]))
        self.results_area = QStackedWidget(self)
        self.results_area.addWidget(self.empty_state)
        self.results_area.addWidget(self.results)
        for signal in (self.results_model.rowsInserted, self.results_model.rowsRemoved, self.results_model.modelReset):
            signal.connect(self._update_empty_state)
        DropTarget(self, self.add_paths)
        self.training = TrainingFlow(self)
        setup_ui(self)  # actions, menus, toolbar, status bar, splitter (window_ui.py)
        from desktop_app.labelling import Labelling
        self.labelling = Labelling(self)  # Labels menu, Add to Class / This Is Actually, Retrain, Check Labels
        for key, restore in ((SETTINGS_GEOMETRY, self.restoreGeometry), (SETTINGS_SPLITTER, self.splitter.restoreState)):
            if self.settings.value(key) is not None:
                restore(self.settings.value(key))

        # The views observe the session.
        session.models_changed.connect(self._on_models_changed)
        session.model_changed.connect(self._on_model_changed)
        session.classifier_changed.connect(self._on_classifier)
        session.selection_changed.connect(self._show_result)
        observe_status(self, session)  # counts, progress, messages (window_ui.py)
        session.job_ended.connect(lambda state: self.job_finished.emit())
        session.job_failed.connect(self._on_job_failed)
        session.note_changed.connect(self.empty_state.set_note)
        self._on_model_changed(None)
        self.reload_models(initial_model)
        self._model_check = QTimer(self)
        self._model_check.timeout.connect(self.check_model_files)
        self._model_check.start(MODEL_CHECK_MS)

    # --- models ----------------------------------------------------------------------------------
    @property
    def models(self) -> list[ModelInfo]:
        return list(self.session.models)

    @property
    def current_model(self) -> ModelInfo | None:
        return self.session.model

    def reload_models(self, prefer: str | None = None) -> None:
        """Rescan the model folders; keep the current model if it is still there (loaded again, and the rows
        re-classified, when its file changed on disk)."""
        self.model_combo.reload(prefer)
        if self.current_model is None:
            where = " or ".join(str(d) for d in (self.session.model_dirs or model_dirs()))
            self.statusBar().showMessage(f"No models found in {where}. Add <name>.onnx + <name>.json, "
                                         "then Models ▸ Reload.")
        elif self.session.model_errors:
            self.statusBar().showMessage(f"{len(self.session.model_errors)} model(s) skipped: see Models ▸ Model "
                                         "Problems", 8000)

    def check_model_files(self) -> bool:
        """A model file added, removed or replaced on disk (re-trained, copied over) is picked up: called every
        MODEL_CHECK_MS and when the window is activated."""
        return self.session.check_model_files()

    def set_model(self, name: str) -> None:
        self.model_combo.set_model(name)

    def _on_models_changed(self) -> None:
        errors = self.session.model_errors
        self.card_action.setEnabled(bool(self.session.models))
        self.problems_action.setEnabled(bool(errors))
        self.problems_action.setText(f"Model Problems ({len(errors)})…" if errors else "Model Problems…")

    def _on_model_changed(self, model: ModelInfo | None) -> None:
        # The app's display name ("CIFAR-10 Studio") is added to the title by the platform: not repeated here.
        self.setWindowTitle(model.name if model is not None else "")
        self.empty_state.set_model(model)
        if model is None:
            self.provider_label.setText("")

    def _on_classifier(self, classifier) -> None:
        self.preview.set_classifier(classifier)
        if self.current_model is not None:
            self.provider_label.setText(f"Provider: {self.provider} (loads with the first image)" if classifier is None
                                        else f"Provider: {classifier.provider.upper()} ({classifier.provider_name})")

    def show_model_card(self) -> ModelCardDialog | None:
        if self.current_model is None:
            return None
        dialog = ModelCardDialog(self.current_model, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal, non-blocking
        return dialog

    def show_model_problems(self) -> None:
        self.model_combo.show_problems()

    # --- loading files ---------------------------------------------------------------------------
    def add_paths(self, paths) -> None:
        """Classify files and/or folders (recursively); the entry point of drop and the Open dialogs."""
        paths = [os.fspath(p) for p in paths if os.fspath(p)]
        if paths:
            remember_dir(self.settings, paths)
            self.session.add_paths(paths)

    def open_files_dialog(self) -> None:
        self.add_paths(open_files_dialog(self, self._last_dir()))

    def open_folder_dialog(self) -> None:
        self.add_paths(open_folder_dialog(self, self._last_dir()))

    def _last_dir(self) -> str:
        return last_dir(self.settings)

    # --- jobs ------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.session.busy or self.runner.busy

    @property
    def last_error(self) -> str:
        return self.session.last_error

    def cancel(self) -> None:
        """Stop the running job after the image being decoded; already classified rows stay."""
        if self.session.busy:
            self.session.cancel()
            self.rate_label.setText("cancelling…")

    def _on_job_failed(self, message: str) -> None:
        message_box(self, QMessageBox.Icon.Critical, "Classification failed", message).open()

    def _update_empty_state(self, *_) -> None:
        self.results_area.setCurrentWidget(self.results if self.results_model.rowCount() else self.empty_state)

    # --- selection, preview, export, clear -------------------------------------------------------
    def select_row(self, row: int) -> None:
        self.results.select_row(row)

    def selected_result(self) -> Result | None:
        return self.results.selected_result()

    def _show_result(self, result: Result | None) -> None:
        self.preview.show_result(result, self.current_model.name if self.current_model else "")

    def export_results(self, path, *, fmt: str | None = None, which: str = "shown") -> int:
        """Write the rows ("shown" as filtered and sorted, or "all") with the model recorded; returns the count."""
        return self.results.export(path, fmt=fmt, which=which)

    def export_dialog(self, fmt: str) -> None:
        self.statusBar().showMessage(self.results.export_dialog(fmt, self._last_dir()), 10000)

    def clear(self) -> None:
        """Forget every file and result, and reset the filters."""
        self.session.clear()
        self.preview.clear()

    # --- dialogs ---------------------------------------------------------------------------------
    def show_evaluation_dialog(self):
        """Models ▸ Evaluate on a Labelled Folder… (evaluation_view.py); returns the dialog."""
        from desktop_app.evaluation_view import EvaluationDialog

        if self.current_model is None:
            return None
        dialog = EvaluationDialog(self.current_model, self.provider, self, start_dir=self._last_dir(),
                                  models=self.models)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_organize_dialog(self):
        """File ▸ Sort into Class Folders… (organize_dialog.py), with the loaded files and folders as sources."""
        from desktop_app.organize_dialog import OrganizeDialog

        if self.current_model is None:
            return None
        dialog = OrganizeDialog(self.current_model, self.provider, self, sources=list(self.session.sources),
                                start_dir=self._last_dir())
        dialog.moved.connect(self.session.follow_moves)  # the rows go with the files the Sort moved
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_train_dialog(self, **options):
        """Models ▸ Train on a Folder… with a live accuracy chart; a saved model is reviewed before use
        (training_flow.py). ``options``: export_dir, runs_dir. Returns the dialog."""
        self.train_dialog = self.training.show_dialog(**options)
        return self.train_dialog

    def show_resume_dialog(self, **options):
        """Models ▸ Resume Training…: pick an unfinished run and continue it (training_flow.py)."""
        return self.training.show_resume(**options)

    def review_trained_model(self, onnx_path: str, epochs: list[dict] | None = None, data_dir: str | None = None):
        """The new model beside the current one, and "Use this model?" (training_flow.py); returns the dialog."""
        self.train_review = self.training.review(onnx_path, epochs, data_dir)
        return self.train_review

    # --- misc ------------------------------------------------------------------------------------
    def _open_user_models(self) -> None:
        user_models_dir().mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(user_models_dir())))

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b><br>Classifies images with exported ONNX models (onnxruntime): CIFAR-10's "
                          "10 classes, or the classes of a model trained on your own folder.<br>Models are read from:<br>"
                          + "<br>".join(str(d) for d in (self.session.model_dirs or model_dirs())))

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Process events until no job runs (scripts and tests); False on timeout."""
        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.perf_counter() + timeout_s
        while self.busy and time.perf_counter() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QCoreApplication.processEvents()
        return not self.busy

    def changeEvent(self, event) -> None:  # noqa: N802
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.check_model_files()  # back from the terminal where a model was re-trained
        super().changeEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.training.close_ok():  # a run in the Train dialog: Stop and Keep Progress, or stay open
            event.ignore()
            return
        if not self.labelling.close_ok():  # pictures being copied into a dataset: Stop and Close, or stay open
            event.ignore()
            return
        self._model_check.stop()
        self.session.cancel()
        ClassifyRunner.wait_all(5000)
        self.settings.setValue(SETTINGS_GEOMETRY, self.saveGeometry())
        self.settings.setValue(SETTINGS_SPLITTER, self.splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
