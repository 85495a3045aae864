"""Models > Evaluate on a Labelled Folder…: how the current model does on the user's own labelled pictures.

A folder with one subfolder per class (cat/, dog/, …) is classified on a worker; the dialog shows the
accuracy, per-class precision and recall and the confusion matrix, computed by the same code as
``cifar10 evaluate --folder`` (:mod:`cifar10.evaluation`), so the numbers are the CLI's. Clicking a
matrix cell filters the image table to exactly the images of that true class predicted as that class;
Unreadable and Unsure list those apart.

The model is read again from disk each time an evaluation starts (:func:`desktop_app.session.open_model_as_now`):
one re-trained or copied over under the same name since the dialog took it is evaluated as it is now, and the
dialog takes its classes; a model file that is gone is said in one line.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSortFilterProxyModel, QSize, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QMessageBox, QProgressBar, QPushButton, QSplitter, QTableView, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from cifar10.evaluation import Evaluation, evaluate_folder, is_unsure, write_report
from cifar10.registry import ModelInfo
from desktop_app.background import BackgroundTask
from desktop_app.session import model_key, open_model_as_now
from desktop_app.results_model import COL_CLASS, COL_FILE, HEADERS, RESULT_ROLE, SORT_ROLE, THUMB_SIZE, ResultsModel

COL_TRUE = len(HEADERS)  # the images table's extra column: the true class (the folder)
WRONG_COLOUR = QColor(190, 40, 40)


class _EvaluatedImages(ResultsModel):
    """The results table's model plus a "True class" column (the class folder); a wrong answer is in red."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.truth: dict[str, str] = {}

    def columnCount(self, parent=None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(HEADERS) + 1

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if section == COL_TRUE and orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return "True class"
        return super().headerData(section, orientation, role)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if index.isValid() and index.column() == COL_TRUE:
            result = self.result(index.row())
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, SORT_ROLE):
                return self.truth.get(result.path, "")
            return None
        value = super().data(index, role)
        if (index.isValid() and index.column() == COL_CLASS and role == Qt.ItemDataRole.ForegroundRole
                and value is None):
            result = self.result(index.row())
            if result.ok and self.truth.get(result.path) not in (None, result.label):
                return WRONG_COLOUR
        return value

    def sort_key(self, row: int, col: int):
        if col == COL_TRUE:
            return self.truth.get(self.result(row).path, "")
        return super().sort_key(row, col)

SHORT = {"automobile": "auto", "airplane": "plane"}


def _evaluate_task(model: ModelInfo, provider: str, folder: str, *, on_progress, should_stop):
    """(the model as it is now, its ModelKey, the Evaluation)."""
    model, classifier, key = open_model_as_now(model, provider)
    return model, key, evaluate_folder(classifier, folder, on_progress=on_progress, should_stop=should_stop,
                                       keep_images=True)


class _PathFilter(QSortFilterProxyModel):
    """Shows only rows whose path is in ``paths`` (None: all rows)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.paths: set[str] | None = None

    def set_paths(self, paths) -> None:
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            self.paths = None if paths is None else set(paths)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.paths = None if paths is None else set(paths)
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802
        return self.paths is None or self.sourceModel().result(row).path in self.paths


class EvaluationDialog(QDialog):
    def __init__(self, model: ModelInfo, provider: str = "auto", parent: QWidget | None = None, *,
                 start_dir: str = "", models: list[ModelInfo] | None = None):
        super().__init__(parent)
        self.model, self.provider, self.start_dir = model, provider, start_dir
        self.model_key = model_key(model)  # the file version the dialog shows; a newer one is taken when used
        self.labels = labels = tuple(model.labels)  # the true classes the folder names stand for
        n = len(labels)
        self.evaluation: Evaluation | None = None
        self.last_error = ""
        self.setWindowTitle(f"Evaluate {model.name} on a labelled folder")
        self.resize(1180, 720)
        self.models = list(models) if models else [model]
        self.model_box = QComboBox(self)
        for known in self.models:
            self.model_box.addItem(known.label, known.name)
        self.model_box.setCurrentIndex(max(0, next((i for i, m in enumerate(self.models) if m is model), 0)))
        self.model_box.setToolTip("The model to evaluate (any model the window found; the window's own model does "
                                  "not change)")
        self.model_box.currentIndexChanged.connect(lambda index: self.set_model(self.models[index]))
        self.export_button = QPushButton("Save Report…", self)
        self.export_button.setToolTip("The same JSON report as `cifar10 evaluate --folder … -o report.json`")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_dialog)

        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("A folder with one subfolder per class: "
                                            + ", ".join(f"{name}/" for name in labels[:3]) + ", …")
        choose = QPushButton("Choose…", self)
        choose.clicked.connect(self.choose_folder)
        self.run_button = QPushButton("Evaluate", self)
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(lambda: self.evaluate(self.folder_edit.text()))
        self.progress = QProgressBar(self)
        self.progress.setFormat("%v / %m images")
        self.cancel_button = QPushButton("Cancel", self)
        self.task = BackgroundTask(self)
        self.cancel_button.clicked.connect(self.task.cancel)
        self.task.progress.connect(self._on_progress)
        self.task.succeeded.connect(self._on_evaluated)
        self.task.failed.connect(self._on_failed)
        self.task.finished.connect(lambda: self._set_running(False))

        self.summary = QLabel(f"Choose a labelled folder to see how <b>{model.name}</b> does on your own pictures. "
                              "Subfolder names are the true classes (" + ", ".join(labels) + ").", self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)

        self.matrix = QTableWidget(n, n, self)
        self.matrix.setHorizontalHeaderLabels([SHORT.get(name, name) for name in labels])
        self.matrix.setVerticalHeaderLabels(list(labels))
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.matrix.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix.setToolTip("Rows: true class (the folder); columns: what the model said. Click a cell to list "
                               "those images.")
        self.matrix.cellClicked.connect(self.select_cell)
        matrix_title = QLabel("<b>Confusion matrix</b> — rows: true class (folder), columns: predicted. "
                              "Click a cell to see those images.", self)
        matrix_title.setWordWrap(True)

        self.per_class = QTableWidget(0, 4, self)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "Images"])
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.per_class.setToolTip("Precision: of the images the model called this class, the share that were. "
                                  "Recall: of the images of this class, the share the model found.")

        self.images_title = QLabel("Images", self)
        self.images = _EvaluatedImages(self)
        self.images_filter = _PathFilter(self)
        self.images_filter.setSourceModel(self.images)
        self.table = QTableView(self)
        self.table.setModel(self.images_filter)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 6)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().moveSection(COL_TRUE, COL_CLASS)  # True class, then the model's answer
        self.table.setColumnWidth(COL_FILE, 180)
        self.table.setColumnWidth(COL_TRUE, 110)
        self.table.setColumnWidth(COL_CLASS, 200)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.images_filter.setSortRole(SORT_ROLE)  # numbers sort as numbers
        from desktop_app.preview import PreviewPanel

        self.preview = PreviewPanel(self)  # the clicked image, large, with its probabilities
        self.preview.heatmap_toggle.setVisible(False)
        self.preview.image.setMinimumSize(96, 96)  # the table keeps most of the height
        self.table.selectionModel().currentRowChanged.connect(self._show_image)
        self.all_button = QPushButton("All images", self)
        self.all_button.clicked.connect(lambda: self.filter_images(None, "All images"))
        self.wrong_button = QPushButton("Mistakes", self)
        self.wrong_button.clicked.connect(self.show_mistakes)
        self.unreadable_button = QPushButton("Unreadable", self)
        self.unreadable_button.clicked.connect(self.show_unreadable)
        self.unsure_button = QPushButton("Unsure", self)
        self.unsure_button.setToolTip("Images the model flags as unsure (only models with an open-set threshold)")
        self.unsure_button.clicked.connect(self.show_unsure)
        for button in (self.all_button, self.wrong_button, self.unreadable_button, self.unsure_button):
            button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.model_box)
        top.addWidget(QLabel("Folder:"))
        top.addWidget(self.folder_edit, 1)
        top.addWidget(choose)
        top.addWidget(self.run_button)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addWidget(self.export_button)
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(matrix_title)
        left_layout.addWidget(self.matrix, 3)
        left_layout.addWidget(self.per_class, 2)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.images_title, 1)
        for button in (self.all_button, self.wrong_button, self.unreadable_button, self.unsure_button):
            buttons.addWidget(button)
        right_layout.addLayout(buttons)
        images_split = QSplitter(Qt.Orientation.Vertical, self)
        images_split.addWidget(self.table)
        images_split.addWidget(self.preview)
        images_split.setStretchFactor(0, 3)
        images_split.setStretchFactor(1, 2)
        images_split.setSizes([400, 280])
        right_layout.addWidget(images_split)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([540, 640])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        self._set_running(False)

    # --- the model, the report, the large preview -------------------------------------------------------
    def set_model(self, model: ModelInfo) -> None:
        """Evaluate with another model (the matrix takes its classes); the shown results are cleared."""
        if model is self.model or self.task.busy:
            return
        self._take_model(model)
        self.summary.setText(f"Evaluate <b>{model.name}</b>: subfolder names are the true classes ("
                             + ", ".join(self.labels) + ").")
        if self.folder_edit.text().strip() and os.path.isdir(self.folder_edit.text().strip()):
            self.evaluate(self.folder_edit.text())

    def _take_model(self, model: ModelInfo) -> None:
        """Show ``model``: its classes in the matrix, its name in the title and the picker; results cleared."""
        self.model, self.model_key, self.labels = model, model_key(model), tuple(model.labels)
        n = len(self.labels)
        self.setWindowTitle(f"Evaluate {model.name} on a labelled folder")
        self.matrix.clear()
        self.matrix.setRowCount(n)
        self.matrix.setColumnCount(n)
        self.matrix.setHorizontalHeaderLabels([SHORT.get(name, name) for name in self.labels])
        self.matrix.setVerticalHeaderLabels(list(self.labels))
        self.per_class.setRowCount(0)
        self.images.clear()
        self.preview.clear()
        self.evaluation = None
        self.export_button.setEnabled(False)
        index = self.model_box.findData(model.name)
        if index >= 0:
            self.models[index] = model  # (a newer version of the file: the picker's entry is this one now)
            self.model_box.setItemText(index, model.label)
            if index != self.model_box.currentIndex():
                self.model_box.setCurrentIndex(index)

    def export_report(self, path) -> None:
        """Write the evaluation as `cifar10 evaluate --folder … -o report.json` does (the same JSON)."""
        if self.evaluation is None:
            raise ValueError("nothing evaluated yet")
        write_report(self.evaluation, path)

    def export_dialog(self) -> None:
        if self.evaluation is None:
            return
        start = os.path.join(self.start_dir or "", f"evaluation-{self.model.name}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save the evaluation report", start, "JSON (*.json)")
        if path:
            try:
                self.export_report(path)
            except OSError as exc:
                QMessageBox.warning(self, "Save failed", f"Could not write {path}:\n{exc}")

    def _show_image(self, current, previous=None) -> None:
        result = self.images_filter.data(current, RESULT_ROLE) if current.isValid() else None
        truth = self.images.truth.get(result.path, "") if result is not None else ""
        self.preview.show_result(result, f"true class: {truth}" if truth else self.model.name)

    # --- running -------------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a labelled folder (one subfolder per class)",
                                                  self.folder_edit.text() or self.start_dir)
        if folder:
            self.folder_edit.setText(folder)
            self.evaluate(folder)

    def evaluate(self, folder: str) -> None:
        folder = folder.strip()
        if not folder or not os.path.isdir(folder):
            self._on_failed(f"{folder or 'No folder chosen'}: not a folder")
            return
        if self.task.busy:
            return
        self.folder_edit.setText(folder)
        self.evaluation, self.last_error = None, ""
        self.progress.setRange(0, 0)
        self.summary.setText(f"Classifying the images in {folder} with {self.model.name}…")
        self._set_running(True)
        self.task.start(_evaluate_task, self.model, self.provider, folder)

    def wait(self, timeout_s: float = 60.0) -> bool:
        return self.task.wait(timeout_s)

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.run_button.setEnabled(not running)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_failed(self, message: str) -> None:
        self.last_error = message
        self.summary.setText(f"<span style='color:#b22'>{message}</span>")

    # --- showing -------------------------------------------------------------------------------------
    def _on_evaluated(self, made) -> None:
        model, key, evaluation = made
        note = ""
        if key != self.model_key or tuple(model.labels) != self.labels:  # re-trained or copied over since
            self._take_model(model)
            note = (f" <b>{model.name}</b> changed on disk since this dialog took it: evaluated as it is now "
                    f"(its classes: {', '.join(self.labels)}).")
        self.show_evaluation(evaluation)
        self.summary.setText(self.summary.text() + note)

    def show_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        m = evaluation.metrics
        card = (f" (its card says {evaluation.card_accuracy:.1%} on the {self.model.dataset} test set)"
                if evaluation.card_accuracy is not None else "")
        extra = []
        if evaluation.unreadable:
            extra.append(f"{len(evaluation.unreadable)} could not be read (left out)")
        if evaluation.unsure:
            extra.append(f"{len(evaluation.unsure)} flagged unsure")
        if evaluation.ignored:
            extra.append(f"{len(evaluation.ignored)} not in a class folder (ignored)")
        if evaluation.cancelled:
            extra.append("cancelled: only the images classified so far")
        self.summary.setText(
            f"<b>{self.model.name}</b> got <b>{m['accuracy']:.1%}</b> right: {int(round(m['accuracy'] * m['n']))} of "
            f"{m['n']} images{card}. Macro precision {m['precision_macro']:.1%}, recall {m['recall_macro']:.1%}"
            f" over {len(m['macro_over'])} classes." + (" " + "; ".join(extra) + "." if extra else ""))
        cm = m["confusion_matrix"]
        peak = max(1, max(max(row) for row in cm))
        n, names = len(self.labels), self.labels
        for t in range(n):
            for p in range(n):
                count = cm[t][p]
                item = QTableWidgetItem(str(count) if count else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setData(Qt.ItemDataRole.UserRole, count)
                if count:
                    strength = int(40 + 160 * count / peak)
                    colour = QColor(40, 120, 200, strength) if t == p else QColor(220, 80, 60, strength)
                    item.setBackground(QBrush(colour))
                item.setToolTip(f"{count} {names[t]} image(s) predicted as {names[p]}")
                self.matrix.setItem(t, p, item)
        rows = [(name, fig) for i, (name, fig) in enumerate(m["per_class"].items())
                if fig["support"] or any(cm[t][i] for t in range(n))]
        self.per_class.setRowCount(len(rows))
        for r, (name, fig) in enumerate(rows):
            for c, text in enumerate((name, f"{fig['precision']:.3f}", f"{fig['recall']:.3f}", str(fig["support"]))):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(r, c, item)
        self.images.clear()
        names = evaluation.classes
        self.images.truth = {r.path: names[t] for r, t in zip(evaluation.results, evaluation.true_classes)}
        self.images.truth.update({r.path: names[t] for r, t in evaluation.unreadable})
        self.images.append(evaluation.results + [r for r, _ in evaluation.unreadable])
        self.export_button.setEnabled(True)
        for button in (self.all_button, self.wrong_button, self.unreadable_button, self.unsure_button):
            button.setEnabled(True)
        self.unreadable_button.setText(f"Unreadable ({len(evaluation.unreadable)})")
        self.unsure_button.setText(f"Unsure ({len(evaluation.unsure)})")
        self.unsure_button.setVisible(bool(evaluation.unsure) or any(hasattr(r, "unsure") for r in evaluation.results))
        self.wrong_button.setText(f"Mistakes ({len(evaluation.misclassified())})")
        self.filter_images(None, f"All {len(evaluation.results)} images")

    def filter_images(self, paths, title: str) -> None:
        self.images_filter.set_paths(paths)
        self.images_title.setText(f"<b>{title}</b>")

    def select_cell(self, true_class: int, predicted_class: int) -> None:
        """Show exactly the images of ``true_class`` that the model predicted as ``predicted_class``."""
        if self.evaluation is None:
            return
        cell = self.evaluation.cell(true_class, predicted_class)
        names = self.labels
        what = (f"{names[true_class]} predicted as {names[predicted_class]}" if true_class != predicted_class
                else f"{names[true_class]} recognised correctly")
        self.filter_images([r.path for r in cell], f"{what}: {len(cell)} image(s)")

    def show_mistakes(self) -> None:
        if self.evaluation is not None:
            wrong = self.evaluation.misclassified()
            self.filter_images([r.path for r, _ in wrong], f"Mistakes: {len(wrong)} image(s)")

    def show_unreadable(self) -> None:
        if self.evaluation is not None:
            bad = self.evaluation.unreadable
            self.filter_images([r.path for r, _ in bad], f"Could not be read: {len(bad)} file(s)")

    def show_unsure(self) -> None:
        if self.evaluation is not None:
            unsure = [r for r in self.evaluation.results if is_unsure(r)]
            self.filter_images([r.path for r in unsure], f"Flagged unsure by the model: {len(unsure)} image(s)")

    def shown_paths(self) -> list[str]:
        """The paths the image table shows now, top to bottom (tests and scripts)."""
        return [self.images_filter.data(self.images_filter.index(row, 0), RESULT_ROLE).path
                for row in range(self.images_filter.rowCount())]

    def closeEvent(self, event) -> None:  # noqa: N802
        self.task.cancel()
        self.task.wait(10)
        super().closeEvent(event)
