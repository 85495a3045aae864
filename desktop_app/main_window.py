"""The main window: drop files, watch them being classified, inspect one, switch models, export.

It wires four parts together, each in its own module: the model picker (model_picker.py), the job runner
(job_runner.py, long work on a superqt worker), the results table with its filters (results_view.py) and
the preview (preview.py); window_ui.py lays out the menus, toolbar and status bar. What is left here is
behaviour: loading files (dialogs, drag and drop), starting and finishing jobs, export, settings; the first
screen, removing rows and the Evaluate / Sort dialogs are results_work.py's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMessageBox

from cifar10.inference import Classifier, Result
from cifar10.paths import model_dirs, user_models_dir
from cifar10.registry import ModelInfo
from desktop_app.card_dialog import ModelCardDialog
from desktop_app.file_input import SETTINGS_LAST_DIR, FileInputMixin
from desktop_app.job_runner import ClassifyRunner
from desktop_app.jobs import Job, path_key
from desktop_app.model_picker import ModelPicker
from desktop_app.preview import PreviewPanel
from desktop_app.results_view import ResultsView
from desktop_app.results_work import ResultsWorkMixin
from desktop_app.widgets import message_box
from desktop_app.window_ui import setup_ui, show_progress

APP_NAME = "CIFAR-10 Studio"
SETTINGS_GEOMETRY, SETTINGS_SPLITTER = "geometry", "splitter"


class MainWindow(ResultsWorkMixin, FileInputMixin, QMainWindow):
    job_finished = Signal()  # after every job (completed, cancelled or failed): tests and scripts wait on it

    def __init__(self, *, settings: QSettings | None = None, model_dirs_: list | None = None,
                 provider: str = "auto", initial_model: str | None = None, batch_size: int = 128):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("cifar10-studio", "desktop-app")
        self.provider, self.batch_size = provider, batch_size
        self._classifiers: dict[str, Classifier] = {}
        self._files: list[str] = []        # what is loaded: a model switch classifies exactly these again
        self._file_keys: set[str] = set()
        self._queue: list[str] = []        # dropped while a job ran, or before there was a model
        self._reclassify_pending = self._job_failed = False
        self._in_place = False             # the running job re-classifies rows already in the table
        self._sources: list[str] = []      # files and folders as the user gave them (the Sort dialog's default)
        self._done, self._total, self._t0 = 0, 0, 0.0
        self.last_error = ""

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1180, 760)
        self.model_combo = ModelPicker(self.settings, model_dirs_, self)
        self.model_combo.model_changed.connect(self._on_model_changed)
        self.results = ResultsView(self)
        self.table, self.results_model, self.proxy = self.results, self.results.results_model, self.results.proxy
        self.class_filter, self.search = self.results.class_filter, self.results.search
        self.results.result_selected.connect(self._show_result)
        self.results.doubleClicked.connect(lambda index: self.results.actions_.open_selected())
        self._setup_results_work()  # first screen, row removal (results_work.py)
        self.preview = PreviewPanel(self)
        self.runner = ClassifyRunner(self)
        self.runner.classifier_ready.connect(self._on_classifier)
        self.runner.speed_measured.connect(lambda payload: self.model_combo.set_speed(*payload))
        self.runner.files_found.connect(self._on_files)
        self.runner.batch_ready.connect(self._on_batch)
        self.runner.failed.connect(self._on_job_failed)
        self.runner.finished.connect(self._on_job_done)
        setup_ui(self)  # actions, menus, toolbar, status bar, splitter (window_ui.py)
        for key, restore in ((SETTINGS_GEOMETRY, self.restoreGeometry), (SETTINGS_SPLITTER, self.splitter.restoreState)):
            if self.settings.value(key) is not None:
                restore(self.settings.value(key))
        self.reload_models(initial_model)

    # --- models ----------------------------------------------------------------------------------
    @property
    def models(self) -> list[ModelInfo]:
        return self.model_combo.models

    @property
    def current_model(self) -> ModelInfo | None:
        return self.model_combo.current

    def reload_models(self, prefer: str | None = None) -> None:
        """Rescan the model folders; keep the current model if it is still there."""
        self._classifiers.clear()  # a re-exported model file gets a fresh session
        self.model_combo.reload(prefer)
        errors = self.model_combo.errors
        self.card_action.setEnabled(bool(self.models))
        self.problems_action.setEnabled(bool(errors))
        self.problems_action.setText(f"Model Problems ({len(errors)})…" if errors else "Model Problems…")
        self.empty_state.set_model(self.current_model)
        if self.current_model is None:
            where = " or ".join(str(d) for d in (self.model_combo.model_dirs or model_dirs()))
            self.statusBar().showMessage(f"No models found in {where}. Add <name>.onnx + <name>.json, "
                                         "then Models ▸ Reload.")
            self.provider_label.setText("")
        elif errors:
            self.statusBar().showMessage(f"{len(errors)} model(s) skipped: see Models ▸ Model Problems", 8000)

    def set_model(self, name: str) -> None:
        self.model_combo.set_model(name)

    def _on_model_changed(self, model: ModelInfo) -> None:
        self.setWindowTitle(f"{APP_NAME} — {model.name}")
        self.results.model_info = model  # recorded in exports
        self.empty_state.set_model(model)
        self._set_provider_text(self._classifiers.get(str(model.onnx_path)))
        self.preview.set_classifier(self._classifiers.get(str(model.onnx_path)))
        if self._files or self._queue:
            self._reclassify()

    def _set_provider_text(self, classifier: Classifier | None) -> None:
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
        if not paths:
            return
        first = Path(paths[0])
        self.settings.setValue(SETTINGS_LAST_DIR, str(first if first.is_dir() else first.parent))
        self._sources.extend(p for p in paths if p not in self._sources)
        self.empty_state.set_note("")
        if self.current_model is None or self.runner.busy:
            self._queue.extend(paths)  # classified when the running job ends / when a model appears
            if self.current_model is None:
                self.statusBar().showMessage("No model to classify with: add one to the models folder, then "
                                             "Models ▸ Reload Models")
            return
        self._start_job(paths, known=frozenset(self._file_keys))

    # --- jobs ------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner.busy

    def _start_job(self, paths: list[str], *, known: frozenset) -> None:
        model = self.current_model
        self._job_failed = False
        self._done, self._total, self._t0 = 0, 0, time.perf_counter()
        self.progress.setRange(0, 0)  # busy indicator while scanning / loading the model
        self.rate_label.setText("scanning…")
        show_progress(self, True)
        self.runner.start(Job(paths=list(paths), model=model, provider=self.provider, known=known,
                              classifier=self._classifiers.get(str(model.onnx_path)), batch_size=self.batch_size,
                              measure_speed=self.model_combo.speed(model) is None))

    def _reclassify(self) -> None:
        """Classify everything loaded again (after a model switch) in place: rows, selection and scroll stay."""
        if self.runner.busy:
            self._reclassify_pending = True
            self.runner.cancel()
            return
        paths = self._files + self._queue
        self._queue = []
        if paths and self.current_model is not None:
            self._in_place = True
            self._start_job(paths, known=frozenset())

    def cancel(self) -> None:
        """Stop the running job after the image being decoded; already classified rows stay."""
        if self.runner.busy:
            self.runner.cancel()
            self._queue.clear()
            self.rate_label.setText("cancelling…")

    def _on_classifier(self, classifier: Classifier) -> None:
        self._classifiers[str(classifier.model.onnx_path)] = classifier
        self._set_provider_text(classifier)
        if self.current_model is not None and str(self.current_model.onnx_path) == str(classifier.model.onnx_path):
            self.preview.set_classifier(classifier)

    def _on_files(self, files: list[str]) -> None:
        if not files and not self._in_place:
            self._say_no_images(self.runner.job.paths)
        for path in files:
            key = path_key(path)
            if key not in self._file_keys:
                self._file_keys.add(key)
                self._files.append(path)
        self._total = len(files)
        self.progress.setRange(0, max(1, self._total))
        self.progress.setValue(0)

    def _on_batch(self, batch: list[Result]) -> None:
        if self._in_place:
            batch = self.results_model.replace(batch)  # rows not in the table yet (queued files) are appended
        self.results.append(batch)
        self._done += len(batch)
        self.progress.setValue(self._done)
        rate = self._done / max(time.perf_counter() - self._t0, 1e-6)
        self.rate_label.setText(f"{self._done:,} / {self._total:,} · {rate:,.0f} files/s")
        self._update_counts()

    def _on_job_failed(self, message: str) -> None:
        self._job_failed, self.last_error = True, message
        self.statusBar().showMessage(f"Classification failed: {message}")
        message_box(self, QMessageBox.Icon.Critical, "Classification failed", message).open()

    def _on_job_done(self, job: Job) -> None:
        show_progress(self, False)
        elapsed = time.perf_counter() - self._t0
        in_place, self._in_place = self._in_place, False
        if self._reclassify_pending:
            self._reclassify_pending = False
            self._reclassify()
        elif job.stop.is_set():
            # "Loaded" = what is in the table: a later model switch re-classifies exactly these rows.
            self._files = [r.path for r in self.results_model.results()]
            self._file_keys = {path_key(p) for p in self._files}
            self.statusBar().showMessage(f"Cancelled: {self._done:,} of {self._total:,} files classified" + (
                "; the other rows still show the previous model's answers" if in_place else ""), 10000)
        else:
            if not self._job_failed:
                rate = self._done / max(elapsed, 1e-6)
                self.statusBar().showMessage(f"Classified {self._done:,} files in {elapsed:.1f} s ({rate:,.0f} "
                                             f"files/s) with {job.model.name}", 10000)
            if self._queue and self.current_model is not None:
                queued, self._queue = self._queue, []
                self._start_job(queued, known=frozenset(self._file_keys))
        self.job_finished.emit()

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
        self.cancel()
        self._sources = []
        self._files, self._file_keys, self._queue = [], set(), []
        self.results.clear()
        self.preview.clear()
        self._update_counts()

    # --- misc ------------------------------------------------------------------------------------
    def _open_user_models(self) -> None:
        user_models_dir().mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(user_models_dir())))

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b><br>Classifies images with exported ONNX models (onnxruntime): CIFAR-10's "
                          "10 classes, or the classes of a model trained on your own folder.<br>Models are read from:<br>"
                          + "<br>".join(str(d) for d in (self.model_combo.model_dirs or model_dirs())))

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Process events until no job runs (scripts and tests); False on timeout."""
        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.perf_counter() + timeout_s
        while self.runner.busy and time.perf_counter() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QCoreApplication.processEvents()
        return not self.runner.busy

    def closeEvent(self, event) -> None:  # noqa: N802
        self.runner.cancel()
        ClassifyRunner.wait_all(5000)
        self.settings.setValue(SETTINGS_GEOMETRY, self.saveGeometry())
        self.settings.setValue(SETTINGS_SPLITTER, self.splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
