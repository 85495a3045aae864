"""Before Qt starts on Linux: are the system libraries its platform plugin links to installed?

Qt's xcb platform plugin (the one that opens windows under X11) links to a dozen small X libraries
(libxcb-cursor, libxcb-icccm, libxcb-keysyms, ...) that PySide6's wheel does not ship and a minimal
Linux install lacks. When one is missing, Qt aborts the process with a message that names a library
that may well be installed ("xcb-cursor0 or libxcb-cursor0 is needed ..."). This module asks the
dynamic linker (``ldd``) which of the plugin's libraries cannot be found, without loading Qt, and turns
the answer into one line that names the missing files and the packages to install (Debian/Ubuntu and
Fedora names; the README lists the same packages).

Nothing here imports Qt: it must run before ``PySide6.QtGui`` is imported, because QtGui itself links
to some of these libraries (libEGL, libfontconfig, libxkbcommon) and its import would fail first.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

# soname -> (Debian/Ubuntu package, Fedora package). Every library that Qt's xcb, wayland and offscreen
# platform plugins (and the QtCore/QtGui/QtWidgets libraries they load) link to outside the PySide6 wheel.
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}

NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)
# dlopen: "libxcb-icccm.so.4: cannot open shared object file: No such file or directory"
DLOPEN_MISSING = re.compile(r"^(\S+): cannot open shared object file.*$", re.DOTALL)


class MissingSystemLibraries(SystemExit):
    """Exits with the one-line explanation (like the CLI's missing-extra message)."""


def missing_libraries(*binaries: str | os.PathLike) -> list[str]:
    """The shared libraries that ``binaries`` (and what they load) need and the dynamic linker cannot find,
    in ``ldd``'s order, each once. ``ldd`` resolves the whole tree, including the Qt libraries' own
    ``$ORIGIN`` run paths; it only maps the files, it does not run their code."""
    ldd = shutil.which("ldd")
    if ldd is None:  # not a glibc system: nothing to ask (PySide6's Linux wheels need glibc anyway)
        return []
    env = {**os.environ, "LC_ALL": "C"}
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:  # a PyInstaller bundle: the system libraries it ships sit next to Python
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [bundle, env.get("LD_LIBRARY_PATH")]))
    done = subprocess.run([ldd, *map(str, binaries)], capture_output=True, text=True, timeout=30, env=env)
    return list(dict.fromkeys(NOT_FOUND.findall(done.stdout)))


def load_error(library: str | os.PathLike) -> str | None:
    """None if the dynamic linker can load ``library`` as Qt will (``dlopen``), else its error text.
    The check itself: a library that loads needs nothing more, whatever ``ldd`` would say."""
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return str(exc)
    return None


def install_hint(libraries: list[str]) -> str:
    """``(Debian/Ubuntu: apt install A B; Fedora: dnf install C)``; a library we have no package name for is
    left to the user's package search."""
    debian = list(dict.fromkeys(PACKAGES[lib][0] for lib in libraries if lib in PACKAGES))
    fedora = list(dict.fromkeys(PACKAGES[lib][1] for lib in libraries if lib in PACKAGES))
    unknown = [lib for lib in libraries if lib not in PACKAGES]
    parts = []
    if debian:
        parts.append(f"Debian/Ubuntu: apt install {' '.join(debian)}; Fedora: dnf install {' '.join(fedora)}")
    if unknown:
        parts.append(f"search your package manager for {', '.join(unknown)}")
    return f"({'; '.join(parts)})"


def message(libraries: list[str], prog: str = "cifar10") -> str:
    return (f"{prog}: error: the desktop app needs system libraries that are missing: "
            f"{', '.join(libraries)} {install_hint(libraries)}")


def pyside6_dir() -> Path | None:
    """PySide6's package folder, found without importing it (in a PyInstaller bundle: ``_internal/PySide6``)."""
    spec = find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def platforms_to_try(environ: os._Environ | dict = os.environ) -> list[str]:
    """The platform plugins Qt will try, in order: ``QT_QPA_PLATFORM`` (``xcb``, ``wayland;xcb``,
    ``offscreen``, ...; options after ``:`` dropped), else Wayland then X11 in a Wayland session, else X11."""
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return [name.split(":")[0].strip() for name in chosen.split(";") if name.strip()]
    wayland = environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland"
    return ["wayland", "xcb"] if wayland else ["xcb"]


def missing_for_qt(environ: os._Environ | dict = os.environ, qt_dir: Path | None = None) -> list[str]:
    """What keeps Qt from starting: empty if one of the platform plugins Qt will try loads (with QtWidgets),
    else the libraries missing for ``xcb`` (X11, also under Wayland through XWayland) or for the only
    platform tried. Empty off Linux, or when the plugin is not where the PySide6 wheel puts it (then Qt
    reports whatever goes wrong itself)."""
    if not sys.platform.startswith("linux"):
        return []
    qt_dir = qt_dir or pyside6_dir()
    if qt_dir is None:
        return []
    widgets = [path for path in qt_dir.glob("QtWidgets.*so")][:1]
    missing: dict[str, list[str]] = {}
    for name in platforms_to_try(environ):
        plugin = qt_dir / "Qt" / "plugins" / "platforms" / f"libq{name}.so"
        if not plugin.is_file():
            continue
        errors = [error for error in map(load_error, [plugin, *widgets]) if error]
        if not errors:
            return []
        # ldd names every missing library at once; dlopen only the first (or a reason that is not a
        # missing file, e.g. a too old glibc: then its own text is the best we have).
        missing[name] = missing_libraries(plugin, *widgets) or [DLOPEN_MISSING.sub(r"\1", errors[0])]
    return missing.get("xcb") or next(iter(missing.values()), [])


def check_qt_libraries(prog: str = "cifar10", environ: os._Environ | dict = os.environ,
                       qt_dir: Path | None = None) -> None:
    """Raise :class:`MissingSystemLibraries` (exit status 1, one line on stderr) when Qt could not start."""
    missing = missing_for_qt(environ, qt_dir)
    if missing:
        raise MissingSystemLibraries(message(missing, prog))
