"""Getting files into the window: the Open Files / Open Folder dialogs and drag and drop, all of which
end in the window's ``add_paths``. A mixin for MainWindow (it needs ``settings`` and ``add_paths``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from cifar10.preprocess import IMAGE_SUFFIXES

SETTINGS_LAST_DIR = "last_dir"


class FileInputMixin:
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
