"""Where things live: the shipped models folder, found relative to the code (also when frozen)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MODELS_DIR_ENV = "CIFAR10_MODELS_DIR"


def project_root() -> Path:
    """The source checkout, or the folder of a PyInstaller bundle."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def shipped_models_dir() -> Path:
    return Path(os.environ.get(MODELS_DIR_ENV) or project_root() / "exported_models")
