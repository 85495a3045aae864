"""Results table: a QAbstractTableModel over a list of :class:`cifar10.inference.Result` + a filter/sort proxy."""

from __future__ import annotations

import math
import os

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont, QPixmap
from PySide6.QtWidgets import QApplication, QStyle

from cifar10.inference import Result
from desktop_app.session import ERRORS_ONLY, UNSURE_ONLY, unsure_row_text
from desktop_app.widgets import array_to_qimage

COL_THUMB, COL_FILE, COL_CLASS, COL_CONFIDENCE, COL_ERROR = range(5)
HEADERS = ("Image", "File", "Class", "Confidence", "Error")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RESULT_ROLE = Qt.ItemDataRole.UserRole + 2
THUMB_SIZE = 32
UNSURE_COLOUR = QColor(176, 110, 0)
_PIXMAP_CACHE_LIMIT = 4000  # thumbnails kept as QPixmaps (the rest are re-made from the 3 KB arrays)


class ResultsModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._results: list[Result] = []
        self._names: list[str] = []  # lower-case file names, precomputed for sorting
        self._errors = 0
        self._unsure = 0
        self._pixmaps: dict[int, QPixmap] = {}
        self._row_of: dict[str, int] = {}  # path -> row, for replace()
        self._error_icon = None

    # --- data ------------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._results)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        result = self._results[row]
        if role == RESULT_ROLE:
            return result
        if role == SORT_ROLE:
            return self.sort_key(row, col)
        if col == COL_THUMB:
            if role == Qt.ItemDataRole.DecorationRole:
                return self._thumbnail(row, result)
            if role == Qt.ItemDataRole.SizeHintRole:
                return QSize(THUMB_SIZE + 8, THUMB_SIZE + 4)
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_FILE:
                return os.path.basename(result.path) or result.path
            if col == COL_CLASS:
                if result.error:
                    return "could not be read"
                return unsure_row_text(result) if result.unsure else (result.label or "—")
            if col == COL_CONFIDENCE:
                return "" if result.error or math.isnan(result.confidence) else f"{result.confidence:.1%}"
            if col == COL_ERROR:
                return result.error
        elif role == Qt.ItemDataRole.ToolTipRole:
            if result.error:  # every cell of an error row says what went wrong, whatever the column's width
                return f"{result.path}\n{result.error}"
            if col == COL_FILE:
                return result.path
            if col == COL_CLASS and result.probabilities is not None:
                top = "\n".join(f"{label}: {p:.1%}" for label, p in result.top_k(3))
                if result.unsure:
                    return (f"The open-set score ({result.ood_score:.2f}) is above this model's threshold: the "
                            f"picture may show none of the {len(result.classes)} classes.\nMost likely:\n{top}")
                return top
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == COL_CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.ForegroundRole and result.error and col in (COL_CLASS, COL_ERROR):
            return QColor(190, 40, 40)
        elif role == Qt.ItemDataRole.ForegroundRole and result.unsure and col in (COL_FILE, COL_CLASS, COL_CONFIDENCE):
            return UNSURE_COLOUR
        elif role == Qt.ItemDataRole.FontRole and result.unsure and col in (COL_CLASS, COL_CONFIDENCE):
            font = QFont()
            font.setItalic(True)
            return font
        return None

    def sort_key(self, row: int, col: int):
        """What the column sorts by: names as text, confidence as a number (errors last when descending)."""
        if col in (COL_FILE, COL_THUMB):
            return self._names[row]
        result = self._results[row]
        if col == COL_CLASS:
            return result.display_label or "~"  # errors sort last
        if col == COL_CONFIDENCE:
            return -1.0 if result.error or math.isnan(result.confidence) else float(result.confidence)
        return result.error

    def _thumbnail(self, row: int, result: Result):
        if result.image is None:
            if result.error:
                if self._error_icon is None:
                    self._error_icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
                return self._error_icon
            return None
        pixmap = self._pixmaps.get(row)
        if pixmap is None:
            if len(self._pixmaps) > _PIXMAP_CACHE_LIMIT:
                self._pixmaps.clear()
            pixmap = QPixmap.fromImage(array_to_qimage(result.image))
            if max(pixmap.width(), pixmap.height()) > THUMB_SIZE:  # a model input larger than CIFAR's 32 px
                pixmap = pixmap.scaled(THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            self._pixmaps[row] = pixmap
        return pixmap

    # --- changes ---------------------------------------------------------------------------------
    def append(self, results: list[Result]) -> None:
        """Add a chunk of results with one insert notification (cheap for the views and the proxy)."""
        if not results:
            return
        self._row_of = {}  # rebuilt by replace() when needed
        first = len(self._results)
        self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
        self._results.extend(results)
        self._names.extend(os.path.basename(r.path).lower() for r in results)
        self._errors += sum(1 for r in results if r.error)
        self._unsure += sum(1 for r in results if r.unsure)
        self.endInsertRows()

    def remove_paths(self, paths) -> list[Result]:
        """Remove the rows of these paths; returns their results."""
        wanted = set(paths)
        return self.remove_rows([row for row, r in enumerate(self._results) if r.path in wanted])

    def remove_rows(self, rows) -> list[Result]:
        """Remove these source rows (any order); returns the removed results."""
        removed: list[Result] = []
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self._results):
                self.beginRemoveRows(QModelIndex(), row, row)
                result = self._results.pop(row)
                del self._names[row]
                self._errors -= bool(result.error)
                self._unsure -= bool(result.unsure)
                self.endRemoveRows()
                removed.append(result)
        if removed:
            self._pixmaps.clear()  # cached by row number, which has shifted
            self._row_of = {}
        return removed[::-1]

    def replace(self, results: list[Result]) -> list[Result]:
        """Put new results in the rows of the same paths (a re-classification in place: rows, selection and
        scroll position stay); returns the results whose path has no row."""
        if len(self._row_of) != len(self._results):
            self._row_of = {r.path: i for i, r in enumerate(self._results)}
        missing: list[Result] = []
        changed: list[int] = []
        for result in results:
            row = self._row_of.get(result.path)
            if row is None or row >= len(self._results) or self._results[row].path != result.path:
                missing.append(result)
                continue
            old = self._results[row]
            self._errors += bool(result.error) - bool(old.error)
            self._unsure += bool(result.unsure) - bool(old.unsure)
            if result.image is None:
                result.image = old.image
            self._results[row] = result
            self._pixmaps.pop(row, None)
            changed.append(row)
        if changed:
            last = self.columnCount() - 1
            self.dataChanged.emit(self.index(min(changed), 0), self.index(max(changed), last))
        return missing

    def move(self, moved: list[tuple[str, Result]]) -> None:
        """Rows whose file was moved: (old path, the result at its new path); each row stays where it is."""
        rows = {r.path: i for i, r in enumerate(self._results)}
        changed = []
        for old, result in moved:
            row = rows.get(old)
            if row is not None:
                self._results[row] = result
                self._names[row] = os.path.basename(result.path).lower()
                changed.append(row)
        if changed:
            self._row_of = {}
            self.dataChanged.emit(self.index(min(changed), 0), self.index(max(changed), self.columnCount() - 1))

    def clear(self) -> None:
        self.beginResetModel()
        self._results, self._names, self._errors, self._unsure = [], [], 0, 0
        self._pixmaps.clear()
        self._row_of = {}
        self.endResetModel()

    def results(self) -> list[Result]:
        return list(self._results)

    def result(self, row: int) -> Result:
        return self._results[row]

    def error_count(self) -> int:
        return self._errors

    def unsure_count(self) -> int:
        return self._unsure


class ResultsFilterProxy(QSortFilterProxyModel):
    """Sorts on SORT_ROLE (numbers sort as numbers); filters by class (or errors only) and file-name text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._class: str | None = None
        self._text = ""
        self.predicate = None  # a Session's ``accepts``: the window's filters live in its session
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_class_filter(self, label: str | None) -> None:
        """None: every row; ERRORS_ONLY: failed files; UNSURE_ONLY: flagged "may be none of these";
        else rows whose most likely class is ``label``."""
        self._change_filter(lambda: setattr(self, "_class", label or None))

    def set_text_filter(self, text: str) -> None:
        self._change_filter(lambda: setattr(self, "_text", text.strip().lower()))

    def refilter(self) -> None:
        """The predicate's filters changed."""
        self._change_filter(lambda: None)

    def _change_filter(self, change) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9: invalidateFilter() is deprecated
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateRowsFilter()

    def lessThan(self, left, right) -> bool:  # noqa: N802
        # One Python call per comparison on precomputed keys: ~3x faster than two data(SORT_ROLE) calls,
        # which matters when 10,000 rows arrive into a sorted table.
        model: ResultsModel = self.sourceModel()
        column = left.column()
        return model.sort_key(left.row(), column) < model.sort_key(right.row(), column)

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:  # noqa: N802
        model: ResultsModel = self.sourceModel()
        result = model.result(source_row)
        if self.predicate is not None:
            return self.predicate(result)
        if self._class == ERRORS_ONLY:
            if not result.error:
                return False
        elif self._class == UNSURE_ONLY:
            if not result.unsure:
                return False
        elif self._class is not None and result.label != self._class:
            return False
        if self._text and self._text not in result.path.lower():
            return False
        return True

    def visible_results(self) -> list[Result]:
        """The rows as shown: filtered and in the current sort order."""
        return [self.data(self.index(row, 0), RESULT_ROLE) for row in range(self.rowCount())]
