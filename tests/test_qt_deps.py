"""desktop_app.qt_deps: the one-line message for the system libraries Qt's platform plugin cannot find.

The checks run the real dynamic linker (``ldd``, ``dlopen``) on the real PySide6 plugins. A missing library is
made real by copying the xcb plugin and renaming one of its NEEDED entries to a library that exists nowhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cifar10.paths import project_root
from desktop_app import qt_deps

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux only")

PYSIDE6 = qt_deps.pyside6_dir()
XCB = PYSIDE6 / "Qt" / "plugins" / "platforms" / "libqxcb.so" if PYSIDE6 else None
FAKE = "libnot-there.so.4"  # as long as libxcb-icccm.so.4, so it fits in the plugin's string table


@pytest.fixture
def broken_qt(tmp_path) -> Path:
    """A PySide6-like folder whose xcb plugin needs FAKE instead of libxcb-icccm.so.4 (its Qt libraries are the
    real ones, through the plugin's own $ORIGIN/../../lib run path)."""
    assert XCB is not None and XCB.is_file(), "PySide6's xcb plugin is where the wheel puts it"
    data = XCB.read_bytes()
    needed = b"libxcb-icccm.so.4\0"
    assert len(FAKE) + 1 == len(needed) and data.count(needed) >= 1
    platforms = tmp_path / "PySide6" / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (platforms / "libqxcb.so").write_bytes(data.replace(needed, FAKE.encode() + b"\0"))
    (tmp_path / "PySide6" / "Qt" / "lib").symlink_to(PYSIDE6 / "Qt" / "lib", target_is_directory=True)
    return tmp_path / "PySide6"


def test_a_library_that_does_not_exist_is_named(broken_qt):
    plugin = broken_qt / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    assert FAKE in qt_deps.missing_libraries(plugin)
    assert FAKE in qt_deps.load_error(plugin)  # dlopen fails on it too: the check is not ldd's opinion only
    missing = qt_deps.missing_for_qt({"QT_QPA_PLATFORM": "xcb"}, qt_dir=broken_qt)
    # exactly what the real plugin misses on this machine (nothing, with the README's packages) plus FAKE
    assert set(missing) == set(qt_deps.missing_libraries(XCB)) | {FAKE}
    with pytest.raises(qt_deps.MissingSystemLibraries) as raised:
        qt_deps.check_qt_libraries(environ={"QT_QPA_PLATFORM": "xcb"}, qt_dir=broken_qt)
    line = str(raised.value.code)
    assert "\n" not in line
    assert line.startswith("cifar10: error: the desktop app needs system libraries that are missing: ")
    assert f"search your package manager for {FAKE}" in line


def test_another_platform_that_loads_is_enough(broken_qt):
    """Qt falls back along QT_QPA_PLATFORM's list: a broken xcb does not matter when offscreen loads."""
    platforms = broken_qt / "Qt" / "plugins" / "platforms"
    (platforms / "libqoffscreen.so").symlink_to(PYSIDE6 / "Qt" / "plugins" / "platforms" / "libqoffscreen.so")
    assert qt_deps.missing_for_qt({"QT_QPA_PLATFORM": "offscreen;xcb"}, qt_dir=broken_qt) == []
    assert qt_deps.missing_for_qt({"QT_QPA_PLATFORM": "xcb;offscreen"}, qt_dir=broken_qt) == []
    assert FAKE in qt_deps.missing_for_qt({"QT_QPA_PLATFORM": "xcb"}, qt_dir=broken_qt)
    # a platform whose plugin is not there is left to Qt
    assert qt_deps.missing_for_qt({"QT_QPA_PLATFORM": "vnc"}, qt_dir=broken_qt) == []


def test_the_real_plugins_load_here():
    """On this machine (and in CI, which installs the README's packages) the xcb and offscreen platforms have
    every library. In a subprocess, so that the test process does not load the xcb plugin."""
    for platform in ("xcb", "offscreen"):
        done = subprocess.run(
            [sys.executable, "-c", "from desktop_app.qt_deps import missing_for_qt, platforms_to_try; "
             "import os; print(platforms_to_try(), missing_for_qt())"],
            env={**os.environ, "QT_QPA_PLATFORM": platform, "PYTHONPATH": str(project_root())},
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"['{platform}'] []", (
            f"{done.stdout} -- install the README's Linux packages")


def test_message_names_the_files_and_both_package_managers():
    assert qt_deps.message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]) == (
        "cifar10: error: the desktop app needs system libraries that are missing: libxcb-icccm.so.4, "
        "libxcb-keysyms.so.1 (Debian/Ubuntu: apt install libxcb-icccm4 libxcb-keysyms1; "
        "Fedora: dnf install xcb-util-wm xcb-util-keysyms)")
    # two libraries of one package: the package once
    assert qt_deps.install_hint(["libglib-2.0.so.0", "libgthread-2.0.so.0"]) == (
        "(Debian/Ubuntu: apt install libglib2.0-0; Fedora: dnf install glib2)")


def test_platforms_qt_will_try():
    assert qt_deps.platforms_to_try({}) == ["xcb"]
    assert qt_deps.platforms_to_try({"WAYLAND_DISPLAY": "wayland-0"}) == ["wayland", "xcb"]
    assert qt_deps.platforms_to_try({"XDG_SESSION_TYPE": "wayland"}) == ["wayland", "xcb"]
    assert qt_deps.platforms_to_try({"QT_QPA_PLATFORM": "offscreen", "WAYLAND_DISPLAY": "w"}) == ["offscreen"]
    assert qt_deps.platforms_to_try({"QT_QPA_PLATFORM": "xcb:nomitshm;wayland"}) == ["xcb", "wayland"]


def readme_install_lines() -> tuple[set[str], set[str]]:
    text = (project_root() / "README.md").read_text(encoding="utf-8")
    apt = re.search(r"^sudo apt(?:-get)? install (?:-y )?(.+)$", text, re.MULTILINE)
    dnf = re.search(r"^sudo dnf install (?:-y )?(.+)$", text, re.MULTILINE)
    assert apt and dnf, "the README's install section has a `sudo apt install` and a `sudo dnf install` line"
    return set(apt.group(1).split()), set(dnf.group(1).split())


def test_readme_lists_every_package_the_plugins_link_to():
    """Every system library the xcb and offscreen plugins and QtWidgets resolve to (ldd, whole tree) that the
    table knows is in the README's apt and dnf lines; and each README package is in the table (no strays)."""
    apt, dnf = readme_install_lines()
    platforms = PYSIDE6 / "Qt" / "plugins" / "platforms"
    done = subprocess.run(["ldd", str(platforms / "libqxcb.so"), str(platforms / "libqoffscreen.so"),
                           *map(str, PYSIDE6.glob("QtWidgets.*so"))], capture_output=True, text=True, check=True)
    linked = set(re.findall(r"^\s*(\S+) =>", done.stdout, re.MULTILINE))
    needed = linked & set(qt_deps.PACKAGES)
    assert {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libEGL.so.1", "libfontconfig.so.1"} <= needed
    assert {qt_deps.PACKAGES[lib][0] for lib in needed} <= apt
    assert {qt_deps.PACKAGES[lib][1] for lib in needed} <= dnf
    table_debian = {debian for debian, _ in qt_deps.PACKAGES.values()}
    assert apt - {"python3-venv"} <= table_debian
    assert dnf <= {fedora for _, fedora in qt_deps.PACKAGES.values()}
