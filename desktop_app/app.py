"""Start the desktop app: ``cifar10 app [PATH...]`` or ``python -m desktop_app [PATH...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from cifar10.paths import project_root
from desktop_app.main_window import APP_NAME, MainWindow


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


def main(paths: list[str] | None = None, *, model: str | None = None, provider: str = "auto") -> int:
    app = create_app()
    window = MainWindow(provider=provider, initial_model=model)
    window.show()
    if paths:
        window.add_paths(paths)
    return app.exec()


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop_app", description=f"{APP_NAME} desktop app")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files/folders to load at start")
    parser.add_argument("--model", help="exported model name or .onnx path to start with")
    parser.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args(argv)
    return main(args.paths, model=args.model, provider=args.provider)
