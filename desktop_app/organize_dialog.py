"""File > Sort into Class Folders…: ``cifar10 organize`` in the app, with a preview of what goes where.

Preview classifies the sources and lists every file with the folder it would go to (nothing is touched);
Sort carries the plan out under the journal (copy or move); Undo puts back everything a sort into that
destination did, also after a run that was killed half-way. All the work is :mod:`cifar10.organize`,
the same code as the command line, on a worker thread with progress and Cancel.

The model is the one the window had when the dialog opened, read again from disk each time a preview starts
(:func:`desktop_app.session.open_model_as_now`): a model re-trained or copied over under the same name since
sorts into its new class folders, and a preview made with the file's older version is not carried out.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QProgressBar, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from cifar10.organize import (JOURNAL_NAME, UNSURE_DIR, OrganizeError, Plan, Report, UndoReport, execute,
                              plan_organize, read_journal, shown as displayable, undo)
from cifar10.registry import ModelInfo
from desktop_app.background import BackgroundTask
from desktop_app.session import model_key, open_model_as_now


def _plan_task(model: ModelInfo, provider: str, sources: list[str], dst: str, mode: str, min_confidence: float, *,
               on_progress, should_stop):
    """(the model as it is now, its ModelKey, the Plan)."""
    model, classifier, key = open_model_as_now(model, provider)
    return model, key, plan_organize(classifier, sources, dst, mode=mode, min_confidence=min_confidence,
                                     on_progress=on_progress, should_stop=should_stop)


def _execute_task(plan: Plan, *, on_progress, should_stop) -> Report:
    try:
        return execute(plan, on_progress=on_progress, should_stop=should_stop)
    except OrganizeError as exc:
        if exc.report is None or not exc.report.done:
            raise
        exc.report.error = str(exc)  # stopped part-way: the files moved until then, for the rows to follow
        return exc.report


def _undo_task(dst: str, *, on_progress, should_stop) -> UndoReport:
    return undo(dst, on_progress=on_progress)  # not cancellable half-way: it is the way back


class OrganizeDialog(QDialog):
    moved = Signal(object)  # [(old path, new path)] of the files a Sort (move) or its Undo moved: the window's rows follow

    def __init__(self, model: ModelInfo, provider: str = "auto", parent: QWidget | None = None, *,
                 sources: list[str] | None = None, start_dir: str = ""):
        super().__init__(parent)
        self.model, self.provider, self.start_dir = model, provider, start_dir
        self.model_key = model_key(model)  # the file version the dialog knows; a newer one is noted when used
        self.plan: Plan | None = None
        self.plan_key = None  # the model file version the plan was made with
        self.model_note = ""  # "<model> changed on disk since…": said with the plan and the sort it made
        self.report: Report | None = None
        self.undo_report: UndoReport | None = None
        self.last_error = ""
        self._after_plan = None  # "sort": carry the plan out as soon as it is made
        self.setWindowTitle("Sort into class folders")
        self.resize(980, 640)

        self.sources = QListWidget(self)
        self.sources.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.sources.setMaximumHeight(90)
        for path in sources or []:
            self.sources.addItem(path)
        add_folder = QPushButton("Add Folder…", self)
        add_folder.clicked.connect(self._add_folder)
        remove = QPushButton("Remove", self)
        remove.clicked.connect(lambda: [self.sources.takeItem(self.sources.row(i)) for i in self.sources.selectedItems()])
        self.dst_edit = QLineEdit(self)
        self.dst_edit.setPlaceholderText("Where the class folders go, e.g. Pictures/sorted")
        self.dst_edit.textChanged.connect(self._update_undo)
        choose_dst = QPushButton("Choose…", self)
        choose_dst.clicked.connect(self._choose_dst)
        self.mode = QComboBox(self)
        self.mode.addItem("Copy (the originals stay where they are)", "copy")
        self.mode.addItem("Move", "move")
        self.min_confidence = QDoubleSpinBox(self)
        self.min_confidence.setRange(0, 100)
        self.min_confidence.setDecimals(0)
        self.min_confidence.setSuffix(" %")
        self.min_confidence.setValue(50)
        self.min_confidence.setToolTip(f"Images the model is less sure about go to {UNSURE_DIR}/")
        for widget in (self.mode, self.min_confidence):
            widget.currentIndexChanged.connect(self._invalidate) if isinstance(widget, QComboBox) else \
                widget.valueChanged.connect(self._invalidate)
        self.dst_edit.textChanged.connect(self._invalidate)

        form = QFormLayout()
        source_row = QHBoxLayout()
        source_row.addWidget(self.sources, 1)
        side = QVBoxLayout()
        side.addWidget(add_folder)
        side.addWidget(remove)
        side.addStretch(1)
        source_row.addLayout(side)
        form.addRow("Images:", source_row)
        dst_row = QHBoxLayout()
        dst_row.addWidget(self.dst_edit, 1)
        dst_row.addWidget(choose_dst)
        form.addRow("Into:", dst_row)
        form.addRow("Mode:", self.mode)
        form.addRow("Unsure below:", self.min_confidence)

        self.preview_table = QTableWidget(0, 4, self)
        self.preview_table.setHorizontalHeaderLabels(["File", "Goes to", "Class", "Confidence"])
        self.preview_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview_table.verticalHeader().setVisible(False)
        header = self.preview_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.summary = QLabel(f"Preview shows where every image would go, using <b>{model.name}</b>. Nothing is "
                              f"changed until you press Sort; Undo puts everything back (a journal, "
                              f"{JOURNAL_NAME}, is kept in the destination).", self)
        self.summary.setWordWrap(True)

        self.progress = QProgressBar(self)
        self.cancel_button = QPushButton("Cancel", self)
        self.preview_button = QPushButton("Preview", self)
        self.sort_button = QPushButton("Sort", self)
        self.undo_button = QPushButton("Undo a Sort into This Folder", self)
        close = QPushButton("Close", self)
        self.preview_button.clicked.connect(self.preview)
        self.sort_button.clicked.connect(self.sort)
        self.undo_button.clicked.connect(self.undo)
        close.clicked.connect(self.reject)
        self.task = BackgroundTask(self)
        self.cancel_button.clicked.connect(self.task.cancel)
        self.task.progress.connect(self._on_progress)
        self.task.failed.connect(self._on_failed)
        self._on_done = None  # what to do with the running task's result (plan, sort or undo)
        self.task.succeeded.connect(lambda value: self._on_done(value) if self._on_done else None)
        self.task.finished.connect(lambda: self._set_running(False))

        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(0)
        for button in (self.undo_button, self.preview_button, self.sort_button, close):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.preview_table, 1)
        layout.addLayout(buttons)
        self._set_running(False)
        self._update_undo()

    # --- inputs --------------------------------------------------------------------------------------
    def source_paths(self) -> list[str]:
        return [self.sources.item(i).text() for i in range(self.sources.count())]

    def set_sources(self, paths) -> None:
        self.sources.clear()
        for path in paths:
            self.sources.addItem(os.fspath(path))
        self._invalidate()

    def set_options(self, *, dst=None, mode: str | None = None, min_confidence: float | None = None) -> None:
        if dst is not None:
            self.dst_edit.setText(os.fspath(dst))
        if mode is not None:
            self.mode.setCurrentIndex(self.mode.findData(mode))
        if min_confidence is not None:
            self.min_confidence.setValue(round(min_confidence * 100))

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of images", self.start_dir)
        if folder:
            self.sources.addItem(folder)
            self._invalidate()

    def _choose_dst(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sort into which folder?", self.dst_edit.text() or self.start_dir)
        if folder:
            self.dst_edit.setText(folder)

    def _invalidate(self, *_) -> None:
        if self.plan is not None and not self.task.busy:
            self.plan = None
            self.preview_table.setRowCount(0)

    def _update_undo(self) -> None:
        dst = self.dst_edit.text().strip()
        self.undo_button.setEnabled(bool(dst) and os.path.isfile(os.path.join(dst, JOURNAL_NAME)) and not self.task.busy)

    # --- preview, sort, undo -------------------------------------------------------------------------
    def preview(self) -> None:
        """Classify the sources and show where each file would go; changes nothing on disk."""
        sources, dst = self.source_paths(), self.dst_edit.text().strip()
        if not sources:
            self._on_failed("Add the images to sort first (Add Folder…)")
            return
        if not dst:
            self._on_failed("Choose where the class folders go (Into)")
            return
        if self.task.busy:
            return
        self.plan, self.report, self.last_error = None, None, ""
        self.summary.setText(f"Classifying with {self.model.name}…")
        self._set_running(True)
        self._on_done = self._on_plan
        self.task.start(_plan_task, self.model, self.provider, sources, dst, self.mode.currentData(),
                        self.min_confidence.value() / 100)

    def sort(self) -> None:
        """Carry out the plan (making it first if there is none). A plan made with an older version of the model
        file (re-trained or copied over since the preview) is dropped, not carried out."""
        if self.task.busy:
            return
        if self.plan is not None and model_key(self.model) != self.plan_key:
            self.plan = None
            self.preview_table.setRowCount(0)
            self._on_failed(f"{self.model.name} changed on disk since the preview: nothing was sorted. Press Sort "
                            "again to sort with the model as it is now (or Preview first).")
            return
        if self.plan is None:
            self._after_plan = "sort"
            self.preview()
            return
        plan = self.plan
        self.summary.setText(f"{'Copying' if plan.mode == 'copy' else 'Moving'} {len(plan.steps)} files…")
        self._set_running(True)
        self._on_done = self._on_sorted
        self.task.start(_execute_task, plan)

    def undo(self) -> None:
        dst = self.dst_edit.text().strip()
        if self.task.busy or not dst:
            return
        self.summary.setText(f"Putting back everything the journal in {dst} records…")
        self._set_running(True)
        self._on_done = self._on_undone
        self.task.start(_undo_task, dst)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Until the task (and a sort that follows a preview) is over: tests and scripts."""
        ok = self.task.wait(timeout_s)
        return self.task.wait(timeout_s) if ok and self.task.busy else ok

    # --- results -------------------------------------------------------------------------------------
    def _on_plan(self, made) -> None:
        model, key, plan = made
        self.model_note = ""
        if key != self.model_key:  # re-trained or copied over since the dialog took it: said with this plan
            self.model, self.model_key = model, key
            self.model_note = (f"{model.name} changed on disk since this dialog took it: its classes now are "
                               f"{', '.join(model.labels)}. ")
        self.plan, self.plan_key = plan, key
        rows = [(step.src, os.path.join(step.folder, step.name), step.label, f"{step.confidence:.1%}", step.reason)
                for step in plan.steps]
        stays = "stays where it is" if plan.mode == "move" else "not copied"
        rows += [(r.path, f"— {stays}: cannot be read", "", "", r.error) for r in plan.unreadable]
        rows += [(path, "— stays where it is: a symbolic link", "", "", why) for path, why in plan.skipped]
        self.preview_table.setRowCount(len(rows))
        roots = [s if os.path.isdir(s) else os.path.dirname(s) for s in plan.sources]
        try:
            base = os.path.dirname(os.path.commonpath(roots)) if roots else ""
        except ValueError:  # sources on different drives
            base = ""
        for r, (src, where, label, confidence, why) in enumerate(rows):
            shown = displayable(os.path.relpath(src, base) if base else src)  # a non-UTF-8 name shows as \xe9
            for c, text in enumerate((shown, displayable(where), label, confidence)):
                item = QTableWidgetItem(text)
                item.setToolTip(why or displayable(src))
                item.setData(Qt.ItemDataRole.UserRole, src)
                self.preview_table.setItem(r, c, item)
        counts = ", ".join(f"{folder} {n}" for folder, n in plan.counts().items()) or "nothing"
        notes = []
        if plan.unreadable:
            notes.append(f"{len(plan.unreadable)} cannot be read ({stays})")
        if plan.skipped:
            notes.append(f"{len(plan.skipped)} symbolic links stay where they are (move the files they point to)")
        if plan.already_done:
            notes.append(f"{len(plan.already_done)} already copied by an earlier sort")
        if plan.pending:
            notes.append(f"{plan.pending} step(s) of an interrupted sort will be finished first")
        verb = "copy" if plan.mode == "copy" else "move"
        self.summary.setText(self.model_note + f"Would {verb} {len(plan.steps)} files into {plan.dst_root}: {counts}."
                             + (" " + "; ".join(notes) + "." if notes else "") + " Press Sort to do it.")
        if self._after_plan == "sort":
            self._after_plan = None
            self.task.finished.connect(self._sort_after_plan)

    def _sort_after_plan(self) -> None:
        self.task.finished.disconnect(self._sort_after_plan)
        if self.plan is not None and not self.plan.cancelled:
            self.sort()

    def _on_sorted(self, report: Report) -> None:
        self.report = report
        plan = self.plan
        past = "Copied" if plan.mode == "copy" else "Moved"
        text = self.model_note + f"{past} {len(report.done)} files into {plan.dst_root}."
        if report.recovered:
            text += f" Finished {report.recovered} step(s) an interrupted sort had begun."
        if report.cancelled:
            text += " Cancelled: Sort again to go on, or Undo."
        if report.problems:
            text += f" {len(report.problems)} left alone: " + "; ".join(report.problems[:3])
        error = getattr(report, "error", "")
        if error:
            self.last_error = error
            text = f"<span style='color:#b22'>{error}</span> " + text
        self.summary.setText(text + " Undo puts everything back.")
        self.plan = None  # a second Sort plans again (nothing is done twice: the journal knows)
        if plan.mode == "move" and report.done:
            self.moved.emit(list(report.done))
        self._update_undo()

    def _on_undone(self, report: UndoReport) -> None:
        self.undo_report = report
        text = f"Put back {report.restored} files."
        if report.problems:
            text += f" {len(report.problems)} could not be undone: " + "; ".join(report.problems[:3])
        self.summary.setText(text)
        self.plan = None
        self.preview_table.setRowCount(0)
        self._update_undo()
        if report.moved_back:
            self.moved.emit(list(report.moved_back))

    def _on_failed(self, message: str) -> None:
        self.last_error = message
        self._after_plan = None
        self.summary.setText(f"<span style='color:#b22'>{message}</span>")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        for button in (self.preview_button, self.sort_button):
            button.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)
            self.undo_button.setEnabled(False)
        else:
            self._update_undo()

    def preview_rows(self) -> dict[str, str]:
        """{source path: where it goes} as the preview table shows it (tests and scripts)."""
        return {self.preview_table.item(r, 0).data(Qt.ItemDataRole.UserRole): self.preview_table.item(r, 1).text()
                for r in range(self.preview_table.rowCount())}

    def journal_steps(self) -> int:
        """How many steps the destination's journal records (the status line uses it)."""
        return sum(1 for r in read_journal(self.dst_edit.text().strip()) if r.get("op") == "begin")

    def closeEvent(self, event) -> None:  # noqa: N802
        self.task.cancel()
        self.task.wait(30)
        super().closeEvent(event)
