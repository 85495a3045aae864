"""Models ▸ Resume Training…: the unfinished training runs in the runs folder the Train dialog uses (stopped with
"Stop and Keep Progress", killed, crashed, or a laptop that went to sleep), with their model, data and epochs
done; Resume continues the chosen one in the Train dialog's progress view (`cifar10 train --resume RUN_DIR`).

Reads run.json files only (cifar10.run_folders): no TensorFlow in the app."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from cifar10.run_folders import unfinished_runs

COLUMNS = ("Saved as", "Model", "Data", "Epochs done", "Started")


def run_row(record: dict) -> tuple[str, ...]:
    """A run's cells: its export name, model, data (the folder's name, or the dataset), epochs done of all, start."""
    settings = record.get("settings") or {}
    data = Path(settings["data"]).name if settings.get("data") else str(record.get("dataset") or "CIFAR-10")
    total = record.get("epochs") or settings.get("epochs") or "?"
    started = str(record.get("started", "")).replace("T", " ").replace("+00:00", " UTC")
    return (str(record.get("name") or record.get("model")), str(record.get("model")), data,
            f"{int(record.get('epochs_done', 0))} of {total}", started)


class ResumeRunsDialog(QDialog):
    """Pick an unfinished run; ``selected_run()`` is its folder once accepted."""

    def __init__(self, parent: QWidget | None, runs_dir):
        super().__init__(parent)
        self.setWindowTitle("Resume Training")
        self.resize(760, 360)
        self.runs_dir = Path(runs_dir)
        self.runs = unfinished_runs(self.runs_dir)
        self.table = QTableWidget(len(self.runs), len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, record in enumerate(self.runs):
            for col, text in enumerate(run_row(record)):
                item = QTableWidgetItem(text)
                item.setToolTip(record["run_dir"])
                self.table.setItem(row, col, item)
        self.table.doubleClicked.connect(lambda _: self.accept())
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setText(f"Unfinished runs in {self.runs_dir}: each keeps the epochs it finished; Resume trains the "
                          "remaining ones and saves the model as the run was started to." if self.runs else
                          f"No unfinished training runs in {self.runs_dir}.")
        buttons = QDialogButtonBox(self)
        self.resume_button = buttons.addButton("Resume", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.resume_button.setEnabled(bool(self.runs))
        if self.runs:
            self.table.selectRow(0)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, ...]]:
        """The table's cells (tests, scripts)."""
        return [tuple(self.table.item(r, c).text() for c in range(len(COLUMNS))) for r in range(self.table.rowCount())]

    def selected_run(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.runs[rows[0].row()]["run_dir"] if rows else None

    def accept(self) -> None:
        if self.selected_run() is not None:
            super().accept()
