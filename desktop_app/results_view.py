"""The results table with its filters: a view of the window's :class:`desktop_app.session.Session`. A
ResultsModel (the rows the session shows) behind a sort/filter proxy that asks the session which rows its
filters let through; the class filter and the file-name search box (the window puts those two in its toolbar)
send their choice to the session and follow it (Clear resets them there)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QFileDialog, QHeaderView, QLineEdit, QMessageBox, QWidget

from cifar10.contract import CLASS_NAMES
from cifar10.inference import Result
from cifar10.results_io import export_metadata, write_results
from desktop_app.results_model import (COL_CLASS, COL_CONFIDENCE, COL_ERROR, COL_FILE, COL_THUMB, ERRORS_ONLY,
                                       RESULT_ROLE, THUMB_SIZE, UNSURE_ONLY, ResultsFilterProxy, ResultsModel)
from desktop_app.session import Session
from desktop_app.widgets import ResultsTableView


class ResultsView(ResultsTableView):
    """``result_selected`` fires with the Result of the new current row (None when there is none)."""

    result_selected = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.results_model = ResultsModel(self)
        self.proxy = ResultsFilterProxy(self)
        self.proxy.predicate = session.accepts
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
        header.setMinimumSectionSize(48)
        header.setDefaultSectionSize(64)  # the stretched Error column may shrink to this: no scroll bar at 1000 px
        for column, width in ((COL_THUMB, THUMB_SIZE + 16), (COL_FILE, 160), (COL_CLASS, 210), (COL_CONFIDENCE, 84),
                              (COL_ERROR, 64)):
            self.setColumnWidth(column, width)
        header.setStretchLastSection(False)  # the stretched section's floor is its width when stretching starts
        header.setStretchLastSection(True)
        self.selectionModel().currentRowChanged.connect(self._on_current_changed)

        self.class_filter = QComboBox(parent)
        self.class_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.set_classes(CLASS_NAMES)
        self.class_filter.setToolTip("Show only the rows of one class (or the unsure / unreadable ones)")
        self.class_filter.currentIndexChanged.connect(
            lambda: self.session.set_class_filter(self.class_filter.currentData()))
        self.search = QLineEdit(parent)
        self.search.setPlaceholderText("Filter by file name")
        self.search.setToolTip("Show only the files whose path contains this text")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(140)
        self.search.setMaximumWidth(200)
        self.search.textChanged.connect(self.session.set_text_filter)
        from desktop_app.row_actions import RowActions  # context menu, Enter, Delete, Ctrl+C

        self.actions_ = RowActions(self)
        self._model_info = None
        session.rows_added.connect(self.append)
        session.rows_updated.connect(self.results_model.replace)
        session.rows_removed.connect(self.results_model.remove_paths)
        session.rows_moved.connect(self.results_model.move)
        session.rows_cleared.connect(self.clear)
        session.filters_changed.connect(self._on_filters_changed)
        session.model_changed.connect(self._on_model_changed)

    def _on_model_changed(self, model) -> None:
        self.model_info = model

    def _on_filters_changed(self) -> None:
        """Show the session's filters (Clear, a model without the chosen class) and apply them."""
        index = self.class_filter.findData(self.session.class_filter) if self.session.class_filter else 0
        if index != self.class_filter.currentIndex():
            self.class_filter.blockSignals(True)
            self.class_filter.setCurrentIndex(max(index, 0))
            self.class_filter.blockSignals(False)
        if self.search.text().strip().lower() != self.session.text_filter:
            self.search.blockSignals(True)
            self.search.setText(self.session.text_filter)
            self.search.blockSignals(False)
        self.proxy.refilter()

    @property
    def model_info(self):
        """The ModelInfo that makes the rows (the window sets it): its classes fill the class filter, and it is
        recorded in exports."""
        return self._model_info

    @model_info.setter
    def model_info(self, model) -> None:
        self._model_info = model
        self.set_classes(model.labels if model is not None else CLASS_NAMES)

    def classes(self) -> tuple[str, ...]:
        """The classes the class filter offers (the model's labels)."""
        return tuple(self.class_filter.itemData(i) for i in range(1, self.class_filter.count() - 2))

    def set_classes(self, labels) -> None:
        """Fill the class filter with ``labels``; the chosen class stays chosen if the new model has it (else
        the filter goes back to All classes)."""
        labels = tuple(labels)
        if self.class_filter.count() and labels == self.classes():
            return
        chosen = self.class_filter.currentData()
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All classes", None)
        for name in labels:
            self.class_filter.addItem(name, name)
        self.class_filter.addItem("Unsure only", UNSURE_ONLY)
        self.class_filter.addItem("Errors only", ERRORS_ONLY)
        index = self.class_filter.findData(chosen) if chosen is not None else 0
        self.class_filter.setCurrentIndex(max(index, 0))
        self.class_filter.blockSignals(False)
        self.session.set_class_filter(self.class_filter.currentData())

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
        result = self.result_at(current)
        self.session.select(result.path if result is not None else None)
        self.result_selected.emit(result)

    def remove_rows(self, source_rows) -> list:
        """Take these source rows out of the list, through the session (which forgets the files)."""
        results = [self.results_model.result(row) for row in source_rows]
        self.session.remove([r.path for r in results])
        return results

    def export(self, path, *, fmt: str | None = None, which: str = "shown") -> int:
        """Write the rows with the CLI's writer, recording the model (name, card accuracy, date); returns the
        row count. ``which``: "shown" (filter and sort applied) or "all" (every row, in input order)."""
        if which not in ("shown", "all"):
            raise ValueError("which must be 'shown' or 'all'")
        rows = self.visible_results() if which == "shown" else self.results_model.results()
        meta = export_metadata(self.model_info)
        stale = sum(1 for r in rows if tuple(r.classes) != tuple(meta["classes"]))
        if stale:  # a model switch with other classes is still re-classifying them (or was cancelled)
            raise ValueError(f"{stale:,} of {len(rows):,} rows still hold another model's classes: let the "
                             f"re-classification with {meta['model']} finish (or classify them again), then export")
        return write_results(rows, path, fmt=fmt, meta=meta)

    def export_scope_box(self) -> QMessageBox | None:
        """The "all rows / only the N shown" question, or None when every row is shown."""
        total, shown = self.results_model.rowCount(), self.proxy.rowCount()
        if shown == total:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Export", f"The filter shows {shown:,} of {total:,} rows. "
                          "Which rows do you want to export?", QMessageBox.StandardButton.Cancel, self)
        box.all_button = box.addButton(f"All {total:,} rows", QMessageBox.ButtonRole.AcceptRole)
        box.shown_button = box.addButton(f"Only the {shown:,} shown", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(box.shown_button)
        return box

    def export_dialog(self, fmt: str, start_dir: str) -> str:
        """Ask which rows and where to save, write, and return a status line."""
        if self.results_model.rowCount() == 0:
            return "Nothing to export yet"
        which = "all"
        box = self.export_scope_box()
        if box is not None:
            box.exec()
            if box.clickedButton() not in (box.all_button, box.shown_button):
                return ""
            which = "all" if box.clickedButton() is box.all_button else "shown"
        path, _ = QFileDialog.getSaveFileName(self, f"Export results as {fmt.upper()}",
                                              str(Path(start_dir) / f"results.{fmt}"), f"{fmt.upper()} (*.{fmt})")
        if not path:
            return ""
        path += "" if path.lower().endswith(f".{fmt}") else f".{fmt}"
        try:
            return f"Exported {self.export(path, fmt=fmt, which=which):,} rows to {path}"
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{exc}")
            return ""
