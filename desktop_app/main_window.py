"""The main window: drop files, watch them being classified, inspect one, switch models, export."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSettings, QSize, Qt, QThread, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QMainWindow, QMessageBox, QProgressBar, QPushButton, QSplitter,
                               QStyle, QToolBar, QWidget)

from cifar10.contract import CLASS_NAMES
from cifar10.inference import Classifier, Result
from cifar10.paths import model_dirs, user_models_dir
from cifar10.preprocess import IMAGE_SUFFIXES, ImageError, load_preview
from cifar10.registry import ModelError, ModelInfo, best_model, discover_models, find_model
from cifar10.results_io import write_results
from desktop_app.card_dialog import ModelCardDialog
from desktop_app.jobs import Job, path_key, run_job
from desktop_app.results_model import (COL_CLASS, COL_CONFIDENCE, COL_FILE, COL_THUMB, ERRORS_ONLY,
                                       RESULT_ROLE, THUMB_SIZE, ResultsFilterProxy, ResultsModel)
from desktop_app.widgets import PreviewPanel, ResultsTableView, array_to_qimage

APP_NAME = "CIFAR-10 Studio"
SETTINGS_LAST_DIR = "last_dir"
SETTINGS_MODEL = "model"
SETTINGS_GEOMETRY = "geometry"
SETTINGS_SPLITTER = "splitter"


class JobThread(QThread):
    """Runs one :class:`Job` (see jobs.py); every message carries the job id so stale ones can be dropped."""

    message = Signal(int, str, object)   # job id, kind ("classifier" | "files" | "batch"), payload
    failed = Signal(int, str)            # job id, error text
    done = Signal(int)                   # job id; always last

    def __init__(self, job: Job, parent=None):
        super().__init__(parent)
        self.job = job

    def run(self) -> None:
        try:
            for kind, payload in run_job(self.job):
                self.message.emit(self.job.job_id, kind, payload)
        except Exception as exc:  # reported in the window, never a crash
            self.failed.emit(self.job.job_id, f"{type(exc).__name__}: {exc}")
        finally:
            self.done.emit(self.job.job_id)


class MainWindow(QMainWindow):
    job_finished = Signal()  # after every job (completed, cancelled or failed): tests and scripts wait on it

    def __init__(self, *, settings: QSettings | None = None, model_dirs_: list | None = None,
                 provider: str = "auto", initial_model: str | None = None, batch_size: int = 128):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("cifar10-studio", "desktop-app")
        self.provider = provider
        self.batch_size = batch_size
        self._model_dirs = model_dirs_
        self._models: list[ModelInfo] = []
        self._model_errors: list[str] = []
        self._extra_model_path: str | None = None  # a --model .onnx outside the model folders
        self._model: ModelInfo | None = None
        self._classifiers: dict[str, Classifier] = {}
        self._files: list[str] = []
        self._file_keys: set[str] = set()
        self._queue: list[str] = []
        self._job: Job | None = None
        self._threads: list[JobThread] = []
        self._job_counter = 0
        self._reclassify_pending = False
        self._job_failed = False
        self._done = self._total = 0
        self._t0 = 0.0
        self.last_error = ""

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1180, 760)
        self._build_results()
        self._build_actions()
        self._build_toolbar()
        self._build_statusbar()
        self._build_central()
        self._restore_settings()
        self.reload_models(initial_model)

    # --- construction ----------------------------------------------------------------------------
    def _build_results(self) -> None:
        self.results_model = ResultsModel(self)
        self.proxy = ResultsFilterProxy(self)
        self.proxy.setSourceModel(self.results_model)
        self.table = ResultsTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until a header is clicked
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        vertical = self.table.verticalHeader()
        vertical.setVisible(False)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row measuring: 10,000 rows stay fast
        vertical.setDefaultSectionSize(THUMB_SIZE + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((COL_THUMB, THUMB_SIZE + 16), (COL_FILE, 240), (COL_CLASS, 100), (COL_CONFIDENCE, 90)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.doubleClicked.connect(self._open_externally)

    def _build_actions(self) -> None:
        style = self.style()
        self.open_files_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton),
                                         "Open Files…", self, shortcut=QKeySequence.StandardKey.Open,
                                         triggered=self.open_files_dialog)
        self.open_folder_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon),
                                          "Open Folder…", self, shortcut="Ctrl+Shift+O",
                                          triggered=self.open_folder_dialog)
        self.export_csv_action = QAction("Export CSV…", self, shortcut="Ctrl+E",
                                         triggered=lambda: self.export_dialog("csv"))
        self.export_json_action = QAction("Export JSON…", self, triggered=lambda: self.export_dialog("json"))
        self.clear_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_DialogResetButton), "Clear", self,
                                    triggered=self.clear)
        self.quit_action = QAction("Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        self.card_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView),
                                   "Model Details…", self, shortcut="Ctrl+I", triggered=self.show_model_card)
        self.reload_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload), "Reload Models",
                                     self, shortcut=QKeySequence.StandardKey.Refresh,
                                     triggered=lambda: self.reload_models())
        self.models_folder_action = QAction("Open User Models Folder", self, triggered=self._open_user_models)
        self.problems_action = QAction("Model Problems…", self, triggered=self.show_model_problems)
        self.about_action = QAction("About", self, triggered=self._about)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for action in (self.open_files_action, self.open_folder_action, None, self.export_csv_action,
                       self.export_json_action, None, self.clear_action, None, self.quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        model_menu = menu.addMenu("&Models")
        for action in (self.card_action, self.reload_action, self.models_folder_action, self.problems_action):
            model_menu.addAction(action)
        menu.addMenu("&Help").addAction(self.about_action)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", self)
        bar.setObjectName("main_toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(bar)
        bar.addAction(self.open_files_action)
        bar.addAction(self.open_folder_action)
        bar.addAction(self.clear_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Model: "))
        self.model_combo = QComboBox(self)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.setMinimumContentsLength(28)
        self.model_combo.currentIndexChanged.connect(self._on_model_index_changed)
        bar.addWidget(self.model_combo)
        bar.addAction(self.card_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Show: "))
        self.class_filter = QComboBox(self)
        self.class_filter.addItem("All classes", None)
        for name in CLASS_NAMES:
            self.class_filter.addItem(name, name)
        self.class_filter.addItem("Errors only", ERRORS_ONLY)
        self.class_filter.currentIndexChanged.connect(
            lambda: self.proxy.set_class_filter(self.class_filter.currentData()))
        bar.addWidget(self.class_filter)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter by file name")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(200)
        self.search.textChanged.connect(self.proxy.set_text_filter)
        bar.addWidget(self.search)
        bar.addSeparator()
        bar.addAction(self.export_csv_action)

    def _build_statusbar(self) -> None:
        status = self.statusBar()
        self.counts_label = QLabel("")
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m")
        self.rate_label = QLabel("")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.provider_label = QLabel("")
        self.provider_label.setToolTip("onnxruntime execution provider in use")
        status.addWidget(self.counts_label)
        for widget in (self.progress, self.rate_label, self.cancel_button, self.provider_label):
            status.addPermanentWidget(widget)
        self._show_progress(False)

    def _build_central(self) -> None:
        self.preview = PreviewPanel(self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([700, 460])
        holder = QWidget(self)
        layout = QHBoxLayout(holder)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        self.setCentralWidget(holder)

    def _restore_settings(self) -> None:
        geometry = self.settings.value(SETTINGS_GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter = self.settings.value(SETTINGS_SPLITTER)
        if splitter is not None:
            self.splitter.restoreState(splitter)

    # --- models ----------------------------------------------------------------------------------
    @property
    def models(self) -> list[ModelInfo]:
        return list(self._models)

    @property
    def current_model(self) -> ModelInfo | None:
        return self._model

    def reload_models(self, prefer: str | None = None) -> None:
        """Rescan the model folders; keep the current model if it is still there."""
        self._models, self._model_errors = discover_models(self._model_dirs)
        self._classifiers.clear()  # a re-exported model file gets a fresh session
        wanted = prefer or (self._model.name if self._model else None) or self.settings.value(SETTINGS_MODEL)
        extra = None
        if prefer and not any(m.name == prefer for m in self._models):
            self._extra_model_path = prefer  # --model may be a path to an .onnx outside the model folders
        if self._extra_model_path:
            try:
                extra = find_model(self._extra_model_path, self._models)
                same = next((m for m in self._models if m.onnx_path.resolve() == extra.onnx_path.resolve()), None)
                if same is None:
                    self._models.insert(0, extra)
                else:
                    extra = same
            except ModelError as exc:
                self._model_errors.append(str(exc))
                self._extra_model_path = None
        chosen = ((extra if prefer else None) or next((m for m in self._models if m.name == wanted), None)
                  or best_model(self._models))
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for model in self._models:
            self.model_combo.addItem(model.label, model.name)
            self.model_combo.setItemData(self.model_combo.count() - 1, model.summary or model.name,
                                         Qt.ItemDataRole.ToolTipRole)
        if not self._models:
            self.model_combo.addItem("No models found")
        self.model_combo.setEnabled(bool(self._models))
        self.card_action.setEnabled(bool(self._models))
        self.problems_action.setEnabled(bool(self._model_errors))
        self.problems_action.setText(f"Model Problems ({len(self._model_errors)})…" if self._model_errors
                                     else "Model Problems…")
        if chosen is not None:
            self.model_combo.setCurrentIndex(self._models.index(chosen))
        self.model_combo.blockSignals(False)
        if chosen is None:
            self._model = None
            where = " or ".join(str(d) for d in (self._model_dirs or model_dirs()))
            self.statusBar().showMessage(f"No models found in {where}. Add <name>.onnx + <name>.json, "
                                         "then Models ▸ Reload.")
            self.provider_label.setText("")
            return
        if self._model is None or chosen.onnx_path != self._model.onnx_path:
            self._switch_to(chosen)
        elif self._model_errors:
            self.statusBar().showMessage(f"{len(self._model_errors)} model(s) skipped: see Models ▸ Model Problems",
                                         8000)

    def set_model(self, name: str) -> None:
        """Select a model by name (as the combo does)."""
        index = self.model_combo.findData(name)
        if index < 0:
            raise KeyError(f"no model named {name!r}")
        self.model_combo.setCurrentIndex(index)

    def _on_model_index_changed(self, index: int) -> None:
        if 0 <= index < len(self._models) and self._models[index] is not self._model:
            self._switch_to(self._models[index])

    def _switch_to(self, model: ModelInfo) -> None:
        self._model = model
        self.settings.setValue(SETTINGS_MODEL, model.name)
        self.model_combo.setToolTip(model.summary)
        self.setWindowTitle(f"{APP_NAME} — {model.name}")
        classifier = self._classifiers.get(str(model.onnx_path))
        self.provider_label.setText(self._provider_text(classifier))
        if self._files or self._queue:
            self._reclassify()

    def _provider_text(self, classifier: Classifier | None) -> str:
        if classifier is None:
            return f"Provider: {self.provider} (loads with the first image)"
        return f"Provider: {classifier.provider.upper()} ({classifier.provider_name})"

    def show_model_card(self) -> ModelCardDialog | None:
        if self._model is None:
            return None
        dialog = ModelCardDialog(self._model, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal, non-blocking
        return dialog

    def show_model_problems(self) -> None:
        text = "\n\n".join(self._model_errors) or "All models found honour the ONNX contract."
        box = QMessageBox(QMessageBox.Icon.Warning if self._model_errors else QMessageBox.Icon.Information,
                          "Model problems", "These model files were skipped:" if self._model_errors else text,
                          QMessageBox.StandardButton.Ok, self)
        if self._model_errors:
            box.setDetailedText(text)
            box.setInformativeText(text[:600])
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # --- loading files ---------------------------------------------------------------------------
    def add_paths(self, paths) -> None:
        """Classify files and/or folders (recursively); the entry point of drop and the Open dialogs."""
        paths = [os.fspath(p) for p in paths if os.fspath(p)]
        if not paths:
            return
        first = Path(paths[0])
        self.settings.setValue(SETTINGS_LAST_DIR, str(first if first.is_dir() else first.parent))
        if self._model is None:
            self._queue.extend(paths)
            self.statusBar().showMessage("No model to classify with: add one to the models folder, then Models ▸ "
                                         "Reload Models")
            return
        if self._job is not None:
            self._queue.extend(paths)  # classified when the running job ends
            return
        self._start_job(paths, known=frozenset(self._file_keys))

    def open_files_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self._last_dir(),
                                                f"Images ({patterns});;All files (*)")
        self.add_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self._last_dir())
        if folder:
            self.add_paths([folder])

    def _last_dir(self) -> str:
        return str(self.settings.value(SETTINGS_LAST_DIR) or Path.home())

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    # --- jobs ------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._job is not None

    def _start_job(self, paths: list[str], *, known: frozenset) -> None:
        assert self._model is not None and self._job is None
        self._job_counter += 1
        job = Job(paths=list(paths), model=self._model, provider=self.provider, known=known,
                  classifier=self._classifiers.get(str(self._model.onnx_path)), batch_size=self.batch_size,
                  job_id=self._job_counter)
        self._job = job
        self._job_failed = False
        self._done, self._total, self._t0 = 0, 0, time.perf_counter()
        self.progress.setRange(0, 0)  # busy indicator while scanning / loading the model
        self.rate_label.setText("scanning…")
        self._show_progress(True)
        self._threads = [t for t in self._threads if not t.isFinished()]
        thread = JobThread(job, self)
        thread.message.connect(self._on_job_message)
        thread.failed.connect(self._on_job_failed)
        thread.done.connect(self._on_job_done)
        self._threads.append(thread)
        thread.start()

    def _reclassify(self) -> None:
        """Classify everything loaded again (after a model switch)."""
        if self._job is not None:
            self._reclassify_pending = True
            self._job.stop.set()
            return
        paths = self._files + self._queue
        self._files, self._file_keys, self._queue = [], set(), []
        self.results_model.clear()
        self.preview.clear()
        self._update_counts()
        if paths and self._model is not None:
            self._start_job(paths, known=frozenset())

    def cancel(self) -> None:
        """Stop the running job after the image being decoded; already classified rows stay."""
        if self._job is not None:
            self._job.stop.set()
            self._queue.clear()
            self.rate_label.setText("cancelling…")

    def _on_job_message(self, job_id: int, kind: str, payload) -> None:
        if self._job is None or job_id != self._job.job_id:
            return  # a message from a cancelled job that was still queued
        if kind == "classifier":
            classifier: Classifier = payload
            self._classifiers[str(classifier.model.onnx_path)] = classifier
            self.provider_label.setText(self._provider_text(classifier))
        elif kind == "files":
            files: list[str] = payload
            for path in files:
                key = path_key(path)
                if key not in self._file_keys:
                    self._file_keys.add(key)
                    self._files.append(path)
            self._total = len(files)
            self.progress.setRange(0, max(1, self._total))
            self.progress.setValue(0)
        elif kind == "batch":
            batch: list[Result] = payload
            had_rows = self.results_model.rowCount() > 0
            self.results_model.append(batch)
            self._done += len(batch)
            self.progress.setValue(self._done)
            rate = self._done / max(time.perf_counter() - self._t0, 1e-6)
            self.rate_label.setText(f"{self._done:,} / {self._total:,} · {rate:,.0f} files/s")
            self._update_counts()
            if not had_rows and self.proxy.rowCount() > 0 and not self.table.currentIndex().isValid():
                self.select_row(0)

    def _on_job_failed(self, job_id: int, message: str) -> None:
        if self._job is None or job_id != self._job.job_id:
            return
        self._job_failed = True
        self.last_error = message
        self.statusBar().showMessage(f"Classification failed: {message}")
        box = QMessageBox(QMessageBox.Icon.Critical, "Classification failed", message, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _on_job_done(self, job_id: int) -> None:
        if self._job is None or job_id != self._job.job_id:
            return
        job, self._job = self._job, None
        self._show_progress(False)
        elapsed = time.perf_counter() - self._t0
        if self._reclassify_pending:
            self._reclassify_pending = False
            self._reclassify()
            self.job_finished.emit()
            return
        if job.stop.is_set():
            # "Loaded" = what is in the table: a later model switch re-classifies exactly these rows.
            self._files = [r.path for r in self.results_model.results()]
            self._file_keys = {path_key(p) for p in self._files}
            self.statusBar().showMessage(f"Cancelled: {self._done:,} of {self._total:,} files classified", 10000)
        elif not self._job_failed:
            rate = self._done / max(elapsed, 1e-6)
            self.statusBar().showMessage(f"Classified {self._done:,} files in {elapsed:.1f} s "
                                         f"({rate:,.0f} files/s) with {job.model.name}", 10000)
        if self._queue and self._model is not None and not job.stop.is_set():
            queued, self._queue = self._queue, []
            self._start_job(queued, known=frozenset(self._file_keys))
        self.job_finished.emit()

    def _show_progress(self, visible: bool) -> None:
        for widget in (self.progress, self.rate_label, self.cancel_button):
            widget.setVisible(visible)

    def _update_counts(self) -> None:
        total = self.results_model.rowCount()
        errors = self.results_model.error_count()
        self.counts_label.setText(f"{total:,} files · {errors:,} could not be read" if errors else f"{total:,} files")

    # --- selection and preview -------------------------------------------------------------------
    def select_row(self, row: int) -> None:
        index = self.proxy.index(row, COL_FILE)
        if index.isValid():
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(index)

    def selected_result(self) -> Result | None:
        index = self.table.currentIndex()
        return self.proxy.data(index, RESULT_ROLE) if index.isValid() else None

    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        result: Result | None = self.proxy.data(current, RESULT_ROLE) if current.isValid() else None
        if result is None:
            self.preview.clear()
            return
        self._show_result(result)

    def _show_result(self, result: Result) -> None:
        name = os.path.basename(result.path)
        try:
            preview = load_preview(result.path, 768)
            self.preview.image.set_image(array_to_qimage(preview))
        except ImageError as exc:
            self.preview.image.set_image(None, f"Cannot show this file:\n{exc.reason}")
        self.preview.model_input.set_image(array_to_qimage(result.image) if result.image is not None else None)
        if result.error:
            self.preview.title.setText(f"<b>{name}</b><br><span style='color:#b22'>{result.error}</span>")
            self.preview.bars.set_probabilities(None, "No prediction: the file could not be read")
        else:
            self.preview.title.setText(f"<b>{name}</b><br>{result.label} · {result.confidence:.1%}"
                                       + (f"<br><small>{self._model.name}</small>" if self._model else ""))
            self.preview.bars.set_probabilities(result.probabilities)

    def _open_externally(self, index: QModelIndex) -> None:
        result = self.proxy.data(index, RESULT_ROLE)
        if result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(result.path))

    # --- export, clear ---------------------------------------------------------------------------
    def export_results(self, path, *, fmt: str | None = None) -> int:
        """Write the rows as shown (filter and sort applied) with the CLI's writer; returns the row count."""
        return write_results(self.proxy.visible_results(), path, fmt=fmt)

    def export_dialog(self, fmt: str) -> None:
        if self.proxy.rowCount() == 0:
            self.statusBar().showMessage("Nothing to export yet", 5000)
            return
        suggested = str(Path(self._last_dir()) / f"results.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self, f"Export results as {fmt.upper()}", suggested,
                                              f"{fmt.upper()} (*.{fmt})")
        if not path:
            return
        if not path.lower().endswith(f".{fmt}"):
            path += f".{fmt}"
        try:
            count = self.export_results(path, fmt=fmt)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{exc}")
            return
        self.statusBar().showMessage(f"Exported {count:,} rows to {path}", 10000)

    def clear(self) -> None:
        self.cancel()
        self._files, self._file_keys, self._queue = [], set(), []
        self.results_model.clear()
        self.preview.clear()
        self._update_counts()

    # --- misc ------------------------------------------------------------------------------------
    def _open_user_models(self) -> None:
        folder = user_models_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b><br>Classifies images into the 10 CIFAR-10 classes with exported "
                          "ONNX models (onnxruntime).<br>Models are read from:<br>"
                          + "<br>".join(str(d) for d in (self._model_dirs or model_dirs())))

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Process events until no job runs (scripts and tests); False on timeout."""
        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.perf_counter() + timeout_s
        while self._job is not None and time.perf_counter() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QCoreApplication.processEvents()
        return self._job is None

    def closeEvent(self, event) -> None:  # noqa: N802
        if self._job is not None:
            self._job.stop.set()
        for thread in self._threads:
            thread.wait(5000)
        self.settings.setValue(SETTINGS_GEOMETRY, self.saveGeometry())
        self.settings.setValue(SETTINGS_SPLITTER, self.splitter.saveState())
        self.settings.sync()
        super().closeEvent(event)
