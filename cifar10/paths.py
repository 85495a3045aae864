"""Where things live: the shipped models folder, found relative to the code (also when frozen)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

MODELS_DIR_ENV = "CIFAR10_MODELS_DIR"
SAMPLES_DIR_ENV = "CIFAR10_SAMPLES_DIR"


def project_root() -> Path:
    """The source checkout, or the folder of a PyInstaller bundle."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def shipped_models_dir() -> Path:
    return Path(os.environ.get(MODELS_DIR_ENV) or project_root() / "exported_models")


def samples_dir() -> Path:
    """The example images (one CIFAR-10 test image per class, ``<class>_<n>.png``), or ``$CIFAR10_SAMPLES_DIR``."""
    return Path(os.environ.get(SAMPLES_DIR_ENV) or project_root() / "resources" / "samples")


def user_models_dir() -> Path:
    """Per-user folder for extra models (``<name>.onnx`` + ``<name>.json``), e.g.
    ``~/.local/share/cifar10-studio/models`` on Linux, ``%LOCALAPPDATA%\\cifar10-studio\\models`` on Windows."""
    try:
        from platformdirs import user_data_dir  # the `app` extra; imported here to keep this module light
    except ImportError:  # e.g. a copy of the core in a web Space without platformdirs
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(base) / "cifar10-studio" / "models"
    return Path(user_data_dir("cifar10-studio", appauthor=False)) / "models"


def user_cache_dir() -> Path:
    """Per-user cache folder of the apps: what can be made again, but is worth keeping across reboots, e.g.
    ``~/.cache/cifar10-studio`` on Linux (``$XDG_CACHE_HOME`` honoured), ``%LOCALAPPDATA%\\cifar10-studio\\Cache``
    on Windows; without platformdirs the CIFAR-10 download's cache folder (cifar10.dataset.default_cache_dir)."""
    try:
        from platformdirs import user_cache_dir as platform_cache_dir  # the `app` extra, as in user_models_dir
    except ImportError:
        from cifar10.dataset import default_cache_dir
        return default_cache_dir()
    return Path(platform_cache_dir("cifar10-studio", appauthor=False))


def bundle_models_dir() -> Path | None:
    """``models/`` next to the executable of a PyInstaller bundle, where users drop extra models; None from source."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent / "models"
    return None


def model_dirs() -> list[Path]:
    """Where apps look for models, in priority order: shipped (or ``$CIFAR10_MODELS_DIR``), the bundle's
    ``models/`` folder (frozen only), then the user's."""
    dirs = [shipped_models_dir()]
    beside = bundle_models_dir()
    if beside is not None:
        dirs.append(beside)
    return [*dirs, user_models_dir()]


def shadowing_model(name: str, folder: str | os.PathLike) -> Path | None:
    """The ``<name>.onnx`` in a folder the apps search before ``folder`` (:func:`model_dirs`), if any: a model
    saved as ``folder/<name>.onnx`` would then be hidden behind it in the apps' model lists."""
    folder = Path(folder).resolve()
    for earlier in model_dirs():
        if earlier.resolve() == folder:
            return None
        if (earlier / f"{name}.onnx").is_file():
            return earlier / f"{name}.onnx"
    return None


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])(?:[A-Za-z]:[\\/]|/)[^\s'\"`,;]+")


def portable_paths(value):
    """``value`` (a card: dicts, lists, strings) without this machine's absolute paths, for files that ship:
    a path inside the project becomes relative to it, any other becomes ``…/<its last component>``."""
    if isinstance(value, dict):
        return {key: portable_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [portable_paths(item) for item in value]
    if not isinstance(value, str):
        return value
    root = str(project_root())

    def shorten(match: re.Match) -> str:
        path = match.group(0)
        if path == root or path.startswith(root + os.sep):
            return os.path.relpath(path, root)
        return "…/" + (re.split(r"[\\/]", path.rstrip("/\\"))[-1] or path)

    return _ABSOLUTE_PATH.sub(shorten, value)


def model_file_stem(text: str) -> str:
    """``text`` as a model name (its file name stem) that is safe everywhere: letters, digits, '.', '_', '-'
    (other characters, spaces included, become '_'); non-ASCII letters are kept (NFC); at most 100 characters.
    "" when nothing usable is left. ``cifar10 train --name`` and the desktop Train dialog both use it."""
    import re
    import unicodedata

    return re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", text)).strip("._-")[:100]


def default_model_name(model: str, folder: str | None) -> str:
    """The default export name of ``cifar10 train --data FOLDER``: ``<model>-<folder name>``, made safe."""
    return model_file_stem(f"{model}-{Path(folder).resolve().name}" if folder else model)
