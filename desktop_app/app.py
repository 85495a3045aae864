"""Start the desktop app: ``cifar10 app [PATH...]`` or ``python -m desktop_app [PATH...]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from desktop_app.qt_deps import check_qt_libraries

check_qt_libraries()  # before Qt loads: a missing system library is one line, not Qt's abort

from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cifar10.paths import project_root  # noqa: E402
from desktop_app.main_window import APP_NAME, MainWindow  # noqa: E402
from desktop_app.options import add_app_arguments  # noqa: E402


def icon_path() -> Path:
    return project_root() / "resources" / "icon.png"


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("cifar10-studio")
    app.setApplicationDisplayName(APP_NAME)
    if icon_path().is_file():
        app.setWindowIcon(QIcon(str(icon_path())))
    return app


# Start-up timing (benchmarks/bundle_startup.py): quit as soon as the first window has been shown and painted.
QUIT_AFTER_SHOW_ENV = "CIFAR10_QUIT_AFTER_SHOW"
SHOWN_MARKER = "cifar10-app: window shown"


def main(paths: list[str] | None = None, *, model: str | None = None, provider: str = "auto",
         quit_after_show: bool = False) -> int:
    app = create_app()
    window = MainWindow(provider=provider, initial_model=model)
    window.show()
    if quit_after_show or os.environ.get(QUIT_AFTER_SHOW_ENV):
        def shown() -> None:
            app.processEvents()  # the expose/paint events of the first show
            if sys.stdout is not None:  # None in a windowed (no console) build
                print(SHOWN_MARKER, flush=True)
            app.quit()

        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, shown)
    if paths:
        window.add_paths(paths)
    return app.exec()


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop_app", description=f"{APP_NAME} desktop app")
    add_app_arguments(parser)
    args = parser.parse_args(argv)
    return main(args.paths, model=args.model, provider=args.provider)
