"""Getting files into the window: the Open Files / Open Folder dialogs and drag and drop. Each ends in
``add(paths)`` (the window's ``add_paths``, which hands them to the session)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEvent, QObject, QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from cifar10.preprocess import IMAGE_SUFFIXES

SETTINGS_LAST_DIR = "last_dir"


def last_dir(settings: QSettings) -> str:
    return str(settings.value(SETTINGS_LAST_DIR) or Path.home())


def remember_dir(settings: QSettings, paths: list[str]) -> None:
    first = Path(paths[0])
    settings.setValue(SETTINGS_LAST_DIR, str(first if first.is_dir() else first.parent))


def open_files_dialog(parent: QWidget, start_dir: str) -> list[str]:
    patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
    files, _ = QFileDialog.getOpenFileNames(parent, "Open images", start_dir, f"Images ({patterns});;All files (*)")
    return files


def open_folder_dialog(parent: QWidget, start_dir: str) -> list[str]:
    folder = QFileDialog.getExistingDirectory(parent, "Open a folder of images", start_dir)
    return [folder] if folder else []


class DropTarget(QObject):
    """Accepts local files and folders dropped on ``widget`` (an event filter: the widget needs no subclass)."""

    def __init__(self, widget: QWidget, add: Callable[[list[str]], None]):
        super().__init__(widget)
        self.add = add
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            mime = event.mimeData()
            if mime.hasUrls() and any(url.isLocalFile() for url in mime.urls()):
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if kind == QEvent.Type.Drop:
            paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
            if not paths:
                event.ignore()
                return True
            event.acceptProposedAction()
            self.add(paths)
            return True
        return False
