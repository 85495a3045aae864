"""What the desktop app's pytest-qt tests share: a real MainWindow on its own settings file, shown and closed
cleanly, and user folders (models, data, cache) kept inside the test's tmp_path."""

from __future__ import annotations

import contextlib
from pathlib import Path

from onnx_fixtures import write_model


@contextlib.contextmanager
def open_window(qtbot, settings_file: Path, **options):
    """A shown MainWindow (``options`` as MainWindow takes them; batch_size 4 unless given) on a QSettings file
    of its own; its running work is cancelled and waited for when the test ends."""
    from PySide6.QtCore import QSettings

    from desktop_app.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat),
                     **{"batch_size": 4, **options})
    qtbot.addWidget(win)
    win.show()
    try:
        yield win
    finally:
        win.cancel()
        win.wait_idle(10)


def isolate_user_dirs(tmp_path: Path, monkeypatch) -> Path:
    """The app's shipped-models folder (one colour model, ``colour_a``) and the user's data and cache folders,
    all inside ``tmp_path``; no GPU. Returns ``tmp_path``."""
    shipped = tmp_path / "shipped"
    write_model(shipped, "colour_a", test_accuracy=0.6)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(shipped))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    return tmp_path
