"""What you can do with rows of the results table: a context menu (Open, Show in Folder, Copy Path, Copy
Prediction, Remove from List) and the keys Enter (open), Delete (remove from the list, never from disk)
and Ctrl+C (the selected rows as tab-separated text, which spreadsheets paste as columns)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Callable

from PySide6.QtCore import QObject, QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMenu

from cifar10.inference import Result

TSV_HEADER = ("path", "label", "confidence", "unsure", "error")


def rows_as_tsv(results: list[Result]) -> str:
    """A header line and one line per result: path, label, confidence (0..1, 4 decimals), unsure (the model's
    open-set flag: true/false), error."""
    def cell(value: str) -> str:
        return value.replace("\t", " ").replace("\n", " ")

    lines = ["\t".join(TSV_HEADER)]
    for r in results:
        confidence = "" if r.error or math.isnan(r.confidence) else f"{r.confidence:.4f}"
        unsure = "" if r.error else ("true" if r.unsure else "false")
        lines.append("\t".join((cell(r.path), r.label, confidence, unsure, cell(r.error))))
    return "\n".join(lines) + "\n"


def prediction_text(results: list[Result]) -> str:
    """``cat (93.1%)`` for one row; ``file<TAB>cat<TAB>93.1%`` lines for several."""
    def one(r: Result) -> str:
        if r.error:
            return f"could not be read: {r.error}"
        return f"{r.display_label} (most likely {r.label}, {r.confidence:.1%})" if r.unsure else \
            f"{r.label} ({r.confidence:.1%})"

    if len(results) == 1:
        return one(results[0])
    return "\n".join(f"{os.path.basename(r.path)}\t{one(r)}" for r in results) + "\n"


def open_url(url: QUrl) -> bool:
    return QDesktopServices.openUrl(url)


def show_in_folder(path: str, opener: Callable[[QUrl], bool] = open_url) -> None:
    """Select the file in the system's file manager where that is possible, else open its folder."""
    if sys.platform == "win32":
        subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])  # noqa: S603,S607
    elif sys.platform == "darwin":
        subprocess.Popen(["open", "-R", path])  # noqa: S603,S607
    else:
        opener(QUrl.fromLocalFile(os.path.dirname(os.path.abspath(path))))


class RowActions(QObject):
    """Attach to a :class:`desktop_app.results_view.ResultsView`. ``removed`` fires with the results taken
    out of the list (the window forgets those files, so a model switch does not bring them back)."""

    removed = Signal(object)  # list[Result]

    def __init__(self, view, parent: QObject | None = None):
        super().__init__(parent or view)
        self.view = view
        self.opener: Callable[[QUrl], bool] = open_url  # tests put a recorder here: no viewer opens
        self.folder_shower: Callable[[str], None] = lambda path: show_in_folder(path, self.opener)

        def action(text: str, slot, shortcuts=()) -> QAction:
            act = QAction(text, view)
            act.triggered.connect(slot)
            if shortcuts:
                act.setShortcuts([QKeySequence(s) for s in shortcuts])
                act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                view.addAction(act)  # the key works while the table has the focus
            return act

        self.open_action = action("Open", self.open_selected, ("Return", "Enter"))
        self.show_action = action("Show in Folder", self.show_selected_in_folder)
        self.copy_path_action = action("Copy Path", self.copy_paths)
        self.copy_prediction_action = action("Copy Prediction", self.copy_predictions)
        self.copy_rows_action = action("Copy Rows", self.copy_rows, (QKeySequence.StandardKey.Copy,))
        self.remove_action = action("Remove from List", self.remove_selected, ("Delete", "Backspace"))
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self.show_menu)

    # --- what is selected ------------------------------------------------------------------------------
    def selected(self) -> list[Result]:
        """The selected rows' results, top to bottom as shown."""
        proxy_rows = sorted({index.row() for index in self.view.selectionModel().selectedRows()})
        if not proxy_rows and self.view.currentIndex().isValid():
            proxy_rows = [self.view.currentIndex().row()]
        return [self.view.result_at(self.view.proxy.index(row, 0)) for row in proxy_rows]

    def menu(self) -> QMenu:
        menu = QMenu(self.view)
        count = len(self.selected())
        for act in (self.open_action, self.show_action, None, self.copy_path_action, self.copy_prediction_action,
                    self.copy_rows_action, None, self.remove_action):
            if act is None:
                menu.addSeparator()
            else:
                act.setEnabled(count > 0)
                menu.addAction(act)
        self.remove_action.setText("Remove from List" if count <= 1 else f"Remove {count} Rows from List")
        return menu

    def show_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isRowSelected(index.row(), index.parent()):
            self.view.select_row(index.row())
        self.menu().popup(self.view.viewport().mapToGlobal(pos))

    # --- the actions -------------------------------------------------------------------------------------
    def open_selected(self) -> None:
        for result in self.selected()[:20]:  # a sane limit: Enter on 10,000 selected rows opens 20 viewers
            self.opener(QUrl.fromLocalFile(result.path))

    def show_selected_in_folder(self) -> None:
        results = self.selected()
        if results:
            self.folder_shower(results[0].path)

    def copy_paths(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(r.path for r in self.selected()))

    def copy_predictions(self) -> None:
        results = self.selected()
        if results:
            QGuiApplication.clipboard().setText(prediction_text(results))

    def copy_rows(self) -> None:
        results = self.selected()
        if results:
            QGuiApplication.clipboard().setText(rows_as_tsv(results))

    def remove_selected(self) -> None:
        """Take the selected rows out of the list (the files stay on disk); the next row becomes current."""
        view = self.view
        proxy_rows = sorted({index.row() for index in view.selectionModel().selectedRows()})
        if not proxy_rows:
            return
        source_rows = [view.proxy.mapToSource(view.proxy.index(row, 0)).row() for row in proxy_rows]
        removed = view.remove_rows(source_rows)  # through the session: a model switch does not bring them back
        if view.proxy.rowCount():
            view.select_row(min(proxy_rows[0], view.proxy.rowCount() - 1))
        self.removed.emit(removed)
