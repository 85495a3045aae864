"""The results table with its filters: a ResultsModel behind a sort/filter proxy, the class filter and
the file-name search box (the window puts those two in its toolbar)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QFileDialog, QHeaderView, QLineEdit, QMessageBox, QWidget

from cifar10.contract import CLASS_NAMES
from cifar10.inference import Result
from cifar10.results_io import write_results
from desktop_app.results_model import (COL_CLASS, COL_CONFIDENCE, COL_FILE, COL_THUMB, ERRORS_ONLY, RESULT_ROLE,
                                       THUMB_SIZE, UNSURE_ONLY, ResultsFilterProxy, ResultsModel)
from desktop_app.widgets import ResultsTableView


class ResultsView(ResultsTableView):
    """``result_selected`` fires with the Result of the new current row (None when there is none)."""

    result_selected = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.results_model = ResultsModel(self)
        self.proxy = ResultsFilterProxy(self)
        self.proxy.setSourceModel(self.results_model)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until a header is clicked
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        vertical = self.verticalHeader()
        vertical.setVisible(False)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row measuring: 10,000 rows stay fast
        vertical.setDefaultSectionSize(THUMB_SIZE + 6)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in ((COL_THUMB, THUMB_SIZE + 16), (COL_FILE, 180), (COL_CLASS, 262), (COL_CONFIDENCE, 90)):
            self.setColumnWidth(column, width)
        self.selectionModel().currentRowChanged.connect(self._on_current_changed)

        self.class_filter = QComboBox(parent)
        self.class_filter.addItem("All classes", None)
        for name in CLASS_NAMES:
            self.class_filter.addItem(name, name)
        self.class_filter.addItem("Unsure only", UNSURE_ONLY)
        self.class_filter.addItem("Errors only", ERRORS_ONLY)
        self.class_filter.currentIndexChanged.connect(
            lambda: self.proxy.set_class_filter(self.class_filter.currentData()))
        self.search = QLineEdit(parent)
        self.search.setPlaceholderText("Filter by file name")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(200)
        self.search.textChanged.connect(self.proxy.set_text_filter)

    def append(self, results: list[Result]) -> None:
        """Add rows; the first row that arrives in an empty table becomes the current one."""
        had_rows = self.results_model.rowCount() > 0
        self.results_model.append(results)
        if not had_rows and self.proxy.rowCount() > 0 and not self.currentIndex().isValid():
            self.select_row(0)

    def clear(self) -> None:
        self.results_model.clear()

    def select_row(self, row: int) -> None:
        index = self.proxy.index(row, COL_FILE)
        if index.isValid():
            self.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.scrollTo(index)

    def selected_result(self) -> Result | None:
        return self.result_at(self.currentIndex())

    def result_at(self, index: QModelIndex) -> Result | None:
        return self.proxy.data(index, RESULT_ROLE) if index.isValid() else None

    def visible_results(self) -> list[Result]:
        return self.proxy.visible_results()

    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        self.result_selected.emit(self.result_at(current))

    def export(self, path, *, fmt: str | None = None) -> int:
        """Write the rows as shown (filter and sort applied) with the CLI's writer; returns the row count."""
        return write_results(self.visible_results(), path, fmt=fmt)

    def export_dialog(self, fmt: str, start_dir: str) -> str:
        """Ask where to save, write, and return a status line."""
        if self.proxy.rowCount() == 0:
            return "Nothing to export yet"
        path, _ = QFileDialog.getSaveFileName(self, f"Export results as {fmt.upper()}",
                                              str(Path(start_dir) / f"results.{fmt}"), f"{fmt.upper()} (*.{fmt})")
        if not path:
            return ""
        path += "" if path.lower().endswith(f".{fmt}") else f".{fmt}"
        try:
            return f"Exported {self.export(path, fmt=fmt):,} rows to {path}"
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{exc}")
            return ""
