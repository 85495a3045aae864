"""Models > Train on a Folder…: train a model on the user's own labelled pictures without leaving the app.

Pick a folder with one subfolder per class (or train/ val/ test/ with class subfolders; classes.json may
give display names); the dialog lists the classes found with their image counts and the problems
(:func:`cifar10.image_folders.scan_image_folder`, on a worker). Then pick the model, epochs and the export
name, and Train runs ``cifar10 train --data FOLDER --progress json`` in a child process
(:mod:`desktop_app.train_process`): reading the pictures, then epoch k/E with the validation accuracy, and a
log. Improve (efficientnet_lite0_transfer) starts its head from the instant model's when a finished instant run on
the same folder with the same classes is in the dialog's or Retrain's runs folder (``--init-head RUN_DIR``). Cancel Training asks: Stop and Keep Progress (the child has written a checkpoint after every epoch; the run
folder stays, and Models ▸ Resume Training… continues it: :meth:`TrainDialog.resume_run`), Stop and Discard (the
run folder is deleted; no half-written model is left either way) or Keep Training; closing the dialog while it
trains asks the same (less Discard). A failed run shows its error. The model goes to the
user's models folder (or ``export_dir``), and the window selects it (``model_exported``). A name already in
that folder is replaced only when the user says so (a question before the run starts; the child gets
``--replace`` then, and refuses to replace anything otherwise).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMessageBox,
                               QPlainTextEdit,
                               QProgressBar, QPushButton, QSpinBox, QSplitter, QStyle, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from cifar10.image_folders import FolderScan, scan_image_folder
from cifar10.paths import default_model_name, model_file_stem, user_models_dir
from cifar10.run_folders import is_finished, read_record
from desktop_app.background import BackgroundTask
from desktop_app.train_process import (DEFAULT_MODEL, FOLDER_MODELS, TrainOutcome, TrainProcess, default_runs_dir,
                                       discard_run, instant_run, model_note, resume_arguments, retrain_runs_dir,
                                       train_arguments)
from desktop_app.widgets import ask

ERROR_COLOUR, WARNING_COLOUR = QColor(178, 34, 34), QColor(176, 110, 0)


def _scan_task(folder: str, *, on_progress, should_stop) -> FolderScan:
    return scan_image_folder(folder)


def default_name(model: str, folder: str) -> str:
    """The CLI's default export name, ``<model>-<folder name>`` (one rule: cifar10.paths.default_model_name)."""
    return default_model_name(model, folder or None)


class TrainDialog(QDialog):
    model_exported = Signal(str)  # the new model's .onnx path

    def __init__(self, parent: QWidget | None = None, *, start_dir: str = "", export_dir=None, runs_dir=None):
        super().__init__(parent)
        self.start_dir = start_dir
        self.export_dir = export_dir   # None: the CLI's default for --data, the user's models folder
        self.runs_dir = runs_dir       # None: default_runs_dir()
        self.scan: FolderScan | None = None
        self.outcome: TrainOutcome | None = None
        self.events: list[dict] = []
        self.last_error = ""
        self._name_edited = False
        self._scanned: str | None = None  # the folder last scanned (set_folder)
        self.setWindowTitle("Train on a Folder")
        self.resize(900, 680)

        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("A folder with one subfolder per class: cats/, dogs/, … (or train/ + "
                                            "val/ + test/ with class subfolders)")
        self.folder_edit.editingFinished.connect(self._folder_edited)
        choose = QPushButton("Choose…", self)
        choose.clicked.connect(self.choose_folder)

        self.classes_table = QTableWidget(0, 3, self)
        self.classes_table.setHorizontalHeaderLabels(["Class (folder)", "Shown as", "Images"])
        self.classes_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.classes_table.verticalHeader().setVisible(False)
        header = self.classes_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.problems = QListWidget(self)
        self.problems.setWordWrap(True)
        self.summary = QLabel("Choose a folder of labelled pictures: one subfolder per class, named after the "
                              "class.", self)
        self.summary.setWordWrap(True)

        self.model_box = QComboBox(self)
        self.model_box.setEditable(True)  # any registered model name (`cifar10 models`)
        for name, text in FOLDER_MODELS:
            self.model_box.addItem(name, name)
            self.model_box.setItemData(self.model_box.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.model_box.setCurrentIndex(self.model_box.findData(DEFAULT_MODEL))
        self.model_box.currentTextChanged.connect(self._update_name)
        self.model_note = QLabel(model_note(DEFAULT_MODEL), self)
        self.model_note.setWordWrap(True)
        self.model_note.setStyleSheet("color: palette(placeholder-text);")
        self.model_box.currentTextChanged.connect(
            lambda name: self.model_note.setText(model_note(name)))
        self.epochs = QSpinBox(self)
        self.epochs.setRange(0, 500)
        self.epochs.setSpecialValueText("model's default")
        self.epochs.setValue(0)
        self.image_size = QSpinBox(self)
        self.image_size.setRange(0, 512)
        self.image_size.setSingleStep(16)
        self.image_size.setSpecialValueText("model's default")
        self.image_size.setSuffix(" px")
        for box in (self.epochs, self.image_size):
            box.setMaximumWidth(200)
        self.name_edit = QLineEdit(self)
        self.name_edit.textEdited.connect(lambda _: setattr(self, "_name_edited", True))
        self.name_edit.textChanged.connect(self._check_name)
        self.name_note = QLabel("", self)
        self.name_note.setWordWrap(True)
        # Two lines, always: the form does not jump while the name is typed (its hint comes and goes).
        self.name_note.setFixedHeight(2 * self.name_note.fontMetrics().lineSpacing() + 2)
        self.model_note.setMinimumHeight(2 * self.model_note.fontMetrics().lineSpacing() + 2)

        self.train_button = QPushButton("Train", self)
        self.train_button.setAutoDefault(False)  # Enter in the folder box scans; it never starts a run
        self.train_button.clicked.connect(self.start_training)
        self.cancel_button = QPushButton("Cancel Training", self)
        self.cancel_button.clicked.connect(lambda: self.cancel_training())
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log.setFont(mono)

        self.scan_task = BackgroundTask(self)
        self.scan_task.succeeded.connect(self._show_scan)
        self.scan_task.failed.connect(lambda message: self._show_error(f"Could not scan the folder: {message}"))
        self.process = TrainProcess(self)
        self.process.event.connect(self._on_event)
        self.process.log_line.connect(self.log.appendPlainText)
        self.process.finished.connect(self._on_finished)

        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("Folder:"))
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(choose)
        found = QWidget(self)
        found_layout = QVBoxLayout(found)
        found_layout.setContentsMargins(0, 0, 0, 0)
        found_layout.addWidget(self.summary)
        lists = QHBoxLayout()
        lists.addWidget(self.classes_table, 1)
        lists.addWidget(self.problems, 1)
        found_layout.addLayout(lists)
        form = QFormLayout()
        form.addRow("Model:", self.model_box)
        form.addRow("", self.model_note)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Image size:", self.image_size)
        form.addRow("Save as:", self.name_edit)
        form.addRow("", self.name_note)
        found_layout.addLayout(form)
        running = QWidget(self)
        running_layout = QVBoxLayout(running)
        running_layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)
        running_layout.addLayout(buttons)
        running_layout.addWidget(self.status)
        running_layout.addWidget(self.log, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(found)
        splitter.addWidget(running)
        splitter.setSizes([420, 260])
        layout = QVBoxLayout(self)
        layout.addLayout(folder_row)
        layout.addWidget(splitter, 1)
        self._set_running(False)

    # --- the folder ----------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder with one subfolder per class",
                                                  self.folder_edit.text() or self.start_dir)
        if folder:
            self.set_folder(folder)

    def _folder_edited(self) -> None:
        """Enter in the folder box, or the box losing focus (also to a question box): scan a new folder."""
        if self.folder_edit.text().strip() != self._scanned:
            self.set_folder(self.folder_edit.text())

    def set_folder(self, folder: str) -> None:
        """Scan ``folder`` (on a worker); the classes and problems show when it is done."""
        folder = folder.strip()
        if not folder or self.scan_task.busy or self.running:
            return
        self.folder_edit.setText(folder)
        self._scanned = folder
        self.scan = None
        self.classes_table.setRowCount(0)
        self.problems.clear()
        self.summary.setText(f"Looking for class folders in {folder}…")
        self._update_name()
        self._set_running(False)
        self.scan_task.start(_scan_task, folder)

    def wait_scan(self, timeout_s: float = 30.0) -> bool:
        return self.scan_task.wait(timeout_s)

    def _show_scan(self, scan: FolderScan) -> None:
        self.scan = scan
        counts = scan.counts
        self.classes_table.setRowCount(len(scan.classes))
        for row, name in enumerate(scan.classes):
            shown = scan.labels[row] if scan.display_names else ""
            for col, text in enumerate((name, shown, f"{counts[name]:,}")):
                item = QTableWidgetItem(text)
                if col == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.classes_table.setItem(row, col, item)
        self.classes_table.setColumnHidden(1, not scan.display_names)  # classes.json's names, when it has them
        self.problems.clear()
        for problem in scan.problems:
            self._add_problem(problem.severity, problem.message)
        if not scan.problems:
            self._add_problem("ok", "No problems in the folders and file names so far (each picture is checked "
                                    "when training reads it).")
        layout = "train/val/test folders" if scan.layout == "split" else "one folder per class"
        verdict = ("Ready to train." if scan.ok else
                   "<span style='color:#b22'>Training cannot start: fix the problems marked in red.</span>")
        self.summary.setText(f"<b>{len(scan.classes)} classes</b>, {scan.total:,} pictures ({layout}) in "
                             f"{scan.path}. {verdict}")
        self._set_running(self.running)

    def _add_problem(self, severity: str, message: str) -> None:
        if any(self.problems.item(i).text() == message for i in range(self.problems.count())):
            return
        if self.problems.count() == 1 and self.problems.item(0).data(Qt.ItemDataRole.UserRole) == "ok":
            self.problems.clear()  # "No problems found." was the scan's word; decoding found one
        icon = {"error": QStyle.StandardPixmap.SP_MessageBoxCritical,
                "warning": QStyle.StandardPixmap.SP_MessageBoxWarning}.get(
            severity, QStyle.StandardPixmap.SP_MessageBoxInformation)
        item = QListWidgetItem(self.style().standardIcon(icon), message)
        item.setData(Qt.ItemDataRole.UserRole, severity)
        if severity in ("error", "warning"):
            item.setForeground(ERROR_COLOUR if severity == "error" else WARNING_COLOUR)
        self.problems.addItem(item)

    def problem_texts(self) -> list[str]:
        """The problems on show (tests and scripts)."""
        return [self.problems.item(i).text() for i in range(self.problems.count())]

    def class_rows(self) -> list[tuple[str, int]]:
        """(class folder, images) as the table shows them."""
        return [(self.classes_table.item(r, 0).text(), int(self.classes_table.item(r, 2).text().replace(",", "")))
                for r in range(self.classes_table.rowCount())]

    # --- options -------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.model_box.currentText().strip()

    def _update_name(self, *_) -> None:
        if not self._name_edited:
            self.name_edit.setText(default_name(self.model_name, self.folder_edit.text().strip()))

    @property
    def target_folder(self) -> Path:
        """Where the model goes: ``export_dir``, else the user's models folder (the CLI's default)."""
        return Path(self.export_dir) if self.export_dir else user_models_dir()

    def export_name(self, text: str | None = None) -> str:
        """The name the model is saved under, as `cifar10 train` makes it from "Save as" (or its default)."""
        text = self.name_edit.text() if text is None else text
        return model_file_stem(text) or default_name(self.model_name, self.folder_edit.text().strip())

    def name_taken(self, name: str) -> bool:
        """True when the target folder already has a model called ``name`` (its .onnx or its card)."""
        return bool(name) and any((self.target_folder / f"{name}{ext}").exists() for ext in (".onnx", ".json"))

    def _check_name(self, text: str) -> None:
        target, name = self.target_folder, self.export_name(text)
        self.name_note.setText(f"<span style='color:#b06e00'>A model named {name} is in {target}: Train asks "
                               "before replacing it.</span>" if self.name_taken(name) else f"Saved in {target}")

    def confirm_replace(self, name: str) -> bool:
        """Ask whether to replace the model ``name`` in the target folder; True only for Replace."""
        return ask(self, "replace_question", "Replace the model?",
                   f"A model named “{name}” is already in {self.target_folder}.",
                   "Replace it with the model this training makes? The old one is deleted when the new one is "
                   "saved. To keep both, choose Keep and change “Save as”.",
                   [("Replace", QMessageBox.ButtonRole.DestructiveRole), ("Keep", QMessageBox.ButtonRole.RejectRole)],
                   default="Keep", escape="Keep") == "Replace"

    # --- training ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process.running

    def instant_head(self) -> dict | None:
        """Improve (a fine-tuned model): the newest finished instant-model run on this folder, same classes (and
        size, when one is chosen), whose linear head the fine-tune starts from; None when there is none."""
        classes = self.scan.classes if self.scan is not None else ()
        return instant_run(self.model_name, self.folder_edit.text().strip(), classes, self.image_size.value(),
                           runs_dirs=(self.runs_dir or default_runs_dir(), retrain_runs_dir()))

    def command(self, *, replace: bool = False) -> list[str]:
        """The child's arguments (after the Python executable); ``replace``: the user agreed to replace. Improve
        starts from the instant model's head when there is one (at its size, when the dialog leaves the size to
        the model)."""
        head = self.instant_head()
        return train_arguments(self.model_name, self.folder_edit.text().strip(), name=self.name_edit.text().strip(),
                               epochs=self.epochs.value(),
                               image_size=self.image_size.value() or (int(head["image_size"]) if head else 0),
                               export_dir=self.export_dir, runs_dir=self.runs_dir, replace=replace,
                               init_head=head["run_dir"] if head else None)

    def start_training(self) -> bool:
        """Start the child process; False (with the reason shown) when the folder cannot be trained on."""
        if self.running:
            return False
        if self.scan is None or not self.scan.ok:
            self._show_error("Choose a folder whose scan found no errors first.")
            return False
        if not self.model_name:
            self._show_error("Choose a model to train.")
            return False
        name = self.export_name()
        replace = self.name_taken(name)
        if replace and not self.confirm_replace(name):
            self._show_error(f"Not started: {name} is kept. Change “Save as” to train under another name.")
            return False
        self.events, self.outcome, self.last_error = [], None, ""
        self.log.clear()
        arguments = self.command(replace=replace)
        self.log.appendPlainText("$ cifar10 " + " ".join(arguments[2:]))
        self.progress.setRange(0, 0)
        self.progress.setFormat("starting…")
        head = " from the instant model's head" if "--init-head" in arguments else ""
        self.status.setText(f"Starting {self.model_name}{head} (loading TensorFlow takes a few seconds)…")
        self.process.start(arguments, workdir=self.runs_dir or default_runs_dir())
        self._set_running(True)
        return True

    def cancel_training(self, keep: bool | None = None) -> None:
        """Stop the run: ``keep`` True keeps the epochs done for Models ▸ Resume Training…, False deletes the
        run folder; None asks (Stop and Keep Progress / Stop and Discard / Keep Training)."""
        if not self.running:
            return
        if keep is None:
            keep = self.ask_stop()
            if keep is None or not self.running:
                return
        self.status.setText("Stopping; the epochs done are kept…" if keep else "Cancelling…")
        self.process.cancel(keep=keep)

    def _epochs_text(self) -> str:
        epochs = [e for e in self.events if e.get("event") == "epoch"]
        if not epochs:
            return "No epoch has finished yet"
        return f"{epochs[-1].get('epoch')} of {epochs[-1].get('epochs')} epochs are done"

    def ask_stop(self, *, closing: bool = False) -> bool | None:
        """The question of Cancel Training (``closing``: of closing the dialog, without Discard): True = stop and
        keep progress, False = stop and discard, None = keep training."""
        buttons = [("Stop and Keep Progress", QMessageBox.ButtonRole.AcceptRole)]
        if not closing:
            buttons.append(("Stop and Discard", QMessageBox.ButtonRole.DestructiveRole))
        buttons.append(("Keep Training", QMessageBox.ButtonRole.RejectRole))
        answer = ask(self, "close_question" if closing else "stop_question", "Stop training?",
                     "Training is still running." if closing else "Stop training?",
                     f"{self._epochs_text()}. Stop and Keep Progress keeps them (a checkpoint is saved after every "
                     "epoch): Models ▸ Resume Training… continues later with the remaining epochs."
                     + ("" if closing else " Stop and Discard deletes this run's progress."),
                     buttons, default="Stop and Keep Progress", escape="Keep Training")
        return {"Stop and Keep Progress": True, "Stop and Discard": False}.get(answer)

    def confirm_stop_for_close(self) -> bool:
        """Before the dialog or the window closes: True when nothing runs any more (the user chose Stop and Keep
        Progress, and the child has stopped), False for Keep Training."""
        if not self.running:
            return True
        if self.ask_stop(closing=True) is None:
            return False
        self.process.cancel(keep=True)
        if not self.process.wait(15000):
            self.process._kill()
            self.process.wait(5000)
        return True

    def resume_run(self, run_dir) -> bool:
        """Continue the unfinished run in ``run_dir`` (`cifar10 train --resume RUN_DIR`) in this dialog's progress
        view; False (with the reason shown) when it cannot be resumed."""
        if self.running:
            return False
        record = read_record(run_dir)
        if record is None or is_finished(record) or "settings" not in record:
            self._show_error(f"{run_dir} is not an unfinished training run.")
            return False
        settings = record["settings"]
        done, total = int(record.get("epochs_done", 0)), int(record.get("epochs") or settings.get("epochs") or 1)
        name = record.get("name") or record["model"]
        self.scan_task.cancel()
        self.folder_edit.setText(settings.get("data") or "")
        self._scanned = self.folder_edit.text().strip()  # shown, not scanned: the run has its own data
        self.model_box.setCurrentText(record["model"])
        self.epochs.setValue(total)
        self.image_size.setValue(int(record.get("image_size") or 0))
        self._name_edited = True
        self.name_edit.setText(name)
        self.summary.setText(f"Resuming <b>{name}</b> ({record['model']} on {record.get('dataset', '?')}): {done} of "
                             f"{total} epochs were done. Run folder: {run_dir}")
        self.events, self.outcome, self.last_error = [], None, ""
        self.log.clear()
        arguments = resume_arguments(run_dir)
        self.log.appendPlainText("$ cifar10 " + " ".join(arguments[2:]))
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat("Epoch %v / %m")
        self.status.setText(f"Resuming {name}: {done} of {total} epochs done (loading TensorFlow takes a few "
                            "seconds)…")
        self.process.start(arguments, workdir=self.runs_dir or default_runs_dir())
        self._set_running(True)
        return True

    def wait(self, timeout_s: float = 600.0) -> bool:
        """Process events until the run is over (tests, scripts); False on timeout."""
        import time

        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.perf_counter() + timeout_s
        while self.running and time.perf_counter() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
        QCoreApplication.processEvents()
        return not self.running

    def _on_event(self, event: dict) -> None:
        self.events.append(event)
        kind = event["event"]
        if kind == "cache":
            done, total = int(event.get("done", 0)), max(1, int(event.get("total", 1)))
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat("Reading pictures %v / %m")
            self.status.setText(f"Reading and resizing the pictures once (cached for the next run): {done:,} of "
                                f"{total:,}")
        elif kind == "scan":
            for problem in event.get("problems", []):
                if isinstance(problem, dict):
                    self._add_problem(problem.get("severity", "warning"), str(problem.get("message", problem)))
                else:
                    self._add_problem("warning", str(problem))
            self.status.setText(f"Training {self.model_name} on {len(event.get('classes', {}))} classes…")
        elif kind == "epoch":
            k, total = int(event.get("epoch", 0)), max(1, int(event.get("epochs", 1)))
            self.progress.setRange(0, total)
            self.progress.setValue(k)
            self.progress.setFormat("Epoch %v / %m")
            figures = [f"{label} {event[key]:.1%}" for key, label in (("accuracy", "training accuracy"),
                                                                       ("val_accuracy", "validation accuracy"))
                       if isinstance(event.get(key), (int, float))]
            self.status.setText(f"Epoch {k} of {total} done: " + ", ".join(figures))
        elif kind == "exported":
            self.status.setText(f"Saving {event.get('model', '')}…")
        elif kind == "error":
            self.last_error = str(event.get("message", ""))

    def _on_finished(self, outcome: TrainOutcome) -> None:
        self.outcome = outcome
        self._set_running(False)
        if outcome.ok:
            exported = outcome.exported
            accuracy = exported.get("test_accuracy")
            figure = f", {accuracy:.1%} right on its held-out test pictures" if isinstance(accuracy, (int, float)) \
                else ""
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat("Done")
            self.status.setText(f"<b>Done:</b> {exported.get('model')} is saved{figure}; the window shows how it "
                                f"compares.<br><small>{exported.get('path')}</small>")
            self.model_exported.emit(str(exported.get("path", "")))
        elif outcome.cancelled and outcome.keep and outcome.epochs_kept > 0:
            total = int((outcome.stopped or {}).get("epochs") or self.progress.maximum() or 0)
            self.progress.setFormat("Stopped")
            self.status.setText(f"<b>Stopped:</b> {outcome.epochs_kept} of {total} epochs are kept. Models ▸ Resume "
                                f"Training… continues with the rest.<br><small>{outcome.run_dir}</small>")
        elif outcome.cancelled:
            if outcome.keep:  # stopped before the first epoch was done: nothing to keep
                discard_run(outcome.run_dir)
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("Cancelled")
            self.status.setText("Cancelled: no model was saved." if not outcome.keep else
                                "Stopped before the first epoch was done: nothing to keep, no model was saved.")
        else:
            self._show_error(f"Training failed: {outcome.error}")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("Failed")

    def _show_error(self, message: str) -> None:
        self.last_error = message
        escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        self.status.setText(f"<span style='color:#b22'>{escaped}</span>")

    def _set_running(self, running: bool) -> None:
        can_train = self.scan is not None and self.scan.ok and not running
        self.train_button.setEnabled(can_train)
        self.cancel_button.setEnabled(running)
        for widget in (self.folder_edit, self.model_box, self.epochs, self.image_size, self.name_edit):
            widget.setEnabled(not running)

    def closeEvent(self, event) -> None:  # noqa: N802
        """Closing the dialog while it trains asks: Stop and Keep Progress (then closes) or Keep Training."""
        if not self.confirm_stop_for_close():
            event.ignore()
            return
        self.folder_edit.blockSignals(True)  # losing the focus on close must not start a scan of a dying dialog
        self.scan_task.cancel()
        self.scan_task.wait(10)
        super().closeEvent(event)
