"""``cifar10 bundle``: build the desktop app as a PyInstaller one-folder bundle, check it, archive it.

    cifar10 bundle [--out dist] [--archive zip|gztar|none] [--work-dir build/pyinstaller]

Runs PyInstaller on ``bundle/cifar10-classifier.spec`` (entry point :mod:`desktop_app.frozen_main`),
adds the ``models/`` drop-in folder and a README.txt, audits the result (no training stack, no Qt
module beyond QtCore/QtGui/QtWidgets, in the files or in the embedded Python archive), prints the
size and what dominates it, and writes ``<out>/cifar10-classifier-<version>-<platform>.zip``.
The bundle takes the models in ``exported_models/`` at build time. Needs the ``bundle`` extra.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import PyInstaller  # noqa: F401  (the 'bundle' extra: cifar10_cli names it when missing)

from cifar10 import __version__
from cifar10.errors import UserFacingError
from cifar10.paths import MODELS_DIR_ENV, project_root

NAME = "cifar10-classifier"
MODELS_ENV = "CIFAR10_BUNDLE_MODELS_DIR"  # ship the models of another folder than exported_models/
SIZE_TARGET_MB = 250

# Top-level Python packages that must never be in the bundle (files or embedded archive).
FORBIDDEN_PACKAGES = ("tensorflow", "tf_keras", "keras", "tf2onnx", "torch", "torchvision", "jax", "matplotlib",
                      "sklearn", "scipy", "pandas", "onnx", "training", "web", "streamlit", "gradio", "IPython")
ALLOWED_QT_MODULES = ("QtCore", "QtGui", "QtWidgets")
# Qt C++ libraries of modules the app does not use (QtDBus/XcbQpa/WaylandClient/OpenGL are platform-plugin deps).
FORBIDDEN_QT_LIBS = re.compile(r"libQt6(Qml|Quick|WebEngine|WebChannel|WebSockets|Multimedia|3D|Pdf|Charts|"
                               r"DataVisualization|Graphs|Network|Designer|Help|Sql|Test|UiTools|Svg|Positioning|"
                               r"Location|Lottie|LabsStyleKit|ShaderTools|VirtualKeyboard|WaylandCompositor)|"
                               r"Qt6(Qml|Quick|WebEngine|Multimedia|3D|Pdf|Network)\w*\.dll")

README = """CIFAR-10 Studio {version} ({platform}): a desktop app that sorts images into the 10 CIFAR-10 classes
(airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck), or into the classes of a model of
your own, with ONNX models on onnxruntime.

  ./{name}
      open the app: drop images or folders onto the window
  ./{name} PHOTO.jpg FOLDER/
      open the app with these classified
  ./{name} classify PATH... --output results.csv
      classify without a window (CSV or JSON, same columns as `cifar10 classify`)
  ./{name} --self-test
      classify the bundled sample images (CIFAR-10) with the best shipped CIFAR-10 model;
      exit status 0 if every one gets the class in its file name
  ./{name} --version
      versions, and the folders models are read from

Models: the shipped ones are in _internal/exported_models/. To add one, put <name>.onnx and its card
<name>.json (both from `cifar10 export`) into the models/ folder next to this file, then start the app
(or use Models > Reload Models). The per-user models folder works too (see --version).
A model trained on your own classes (`cifar10 train --data PHOTOS/`: one subfolder per class) is added
the same way: the app and `classify` then show its classes and feed it images at its own input size.
Runs from any folder; nothing is installed, and nothing is written except the app's settings.
"""

MODELS_README = """Drop extra models here: <name>.onnx + <name>.json (the model card), as written by `cifar10 export`
or `cifar10 train --data` (a model of your own classes, at its own input size: the app follows it).
{name} reads this folder at start-up and on Models > Reload Models; a model that breaks the ONNX
contract is listed under Models > Model Problems instead of being used.
"""


@dataclass
class Audit:
    problems: list[str] = field(default_factory=list)
    qt_modules: list[str] = field(default_factory=list)
    qt_plugins: list[str] = field(default_factory=list)
    python_modules: int = 0


def build_bundle(out: str | os.PathLike = "dist", *, archive: str = "zip", work_dir: str | os.PathLike | None = None,
                 spec: str | os.PathLike | None = None) -> int:
    root = project_root()
    out = Path(out).resolve()
    work = Path(work_dir).resolve() if work_dir else root / "build" / "pyinstaller"
    spec = Path(spec) if spec else root / "bundle" / f"{NAME}.spec"
    if not spec.is_file():
        raise UserFacingError(f"bundle: the spec file {spec} is missing (build from a source checkout)")
    models_dir = Path(os.environ.get(MODELS_ENV) or root / "exported_models")  # the spec reads the same variable
    print(f"bundle: building {out / NAME} from {root} with PyInstaller (a minute or two)")
    from cifar10.registry import discover_models

    models, errors = discover_models([models_dir])
    for error in errors:
        print(f"bundle: WARNING: shipped but unusable (the app will list it under Model Problems): {error}",
              file=sys.stderr)
    print(f"bundle: shipping models from {models_dir}: " + (", ".join(m.label for m in models) if models else
                                         "NONE (the app starts without one; --self-test has nothing to test)"))
    started = time.perf_counter()
    command = [sys.executable, "-m", "PyInstaller", str(spec), "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(out), "--workpath", str(work)]
    completed = subprocess.run(command, cwd=root)
    if completed.returncode != 0:
        raise UserFacingError(f"bundle: PyInstaller failed (exit status {completed.returncode}): "
                              + " ".join(command))
    folder = out / NAME
    strip_libpython(folder)
    finish_bundle(folder)
    audit = audit_bundle(folder)
    print(f"bundle: built in {time.perf_counter() - started:.0f} s: {folder}")
    print(f"bundle: Qt modules {', '.join(audit.qt_modules)}; {len(audit.qt_plugins)} Qt plugins "
          f"({', '.join(sorted({p.split('/')[0] for p in audit.qt_plugins}))}); "
          f"{audit.python_modules} Python modules in the archive")
    print(size_report(folder))
    if audit.problems:
        for problem in audit.problems:
            print(f"bundle: NOT ALLOWED: {problem}", file=sys.stderr)
        raise UserFacingError(f"bundle: {len(audit.problems)} forbidden item(s) in {folder} (see above)")
    smoke_test(folder)
    if archive != "none":
        path = make_archive(folder, archive)
        print(f"bundle: archive {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def smoke_test(folder: Path) -> None:
    """Run the built executable's ``--self-test`` from another folder. A crash fails the build; a shipped model
    that gets a sample wrong, or no shipped model, is a warning (the bundle works, its self-test will fail)."""
    import tempfile

    with tempfile.TemporaryDirectory() as elsewhere:
        env = {k: v for k, v in os.environ.items() if k not in (MODELS_DIR_ENV, "PYTHONPATH")}
        env["XDG_DATA_HOME"] = elsewhere  # the builder's own per-user models do not count
        done = subprocess.run([str(executable(folder)), "--self-test"], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300)
    verdict = next((line for line in reversed(done.stdout.splitlines()) if line.startswith("self-test ")), "")
    if done.returncode == 0:
        print(f"bundle: smoke test OK: {verdict}")
    elif done.returncode in (1, 2) and verdict:
        print(done.stdout, end="")
        print(f"bundle: WARNING: the bundle runs, but its --self-test fails: {verdict}", file=sys.stderr)
    else:
        raise UserFacingError(f"bundle: the built executable's --self-test crashed (exit status "
                              f"{done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def finish_bundle(folder: Path) -> None:
    """README.txt and the empty ``models/`` drop-in folder next to the executable."""
    platform_tag = platform_name()
    (folder / "README.txt").write_text(README.format(version=__version__, platform=platform_tag, name=NAME),
                                       encoding="utf-8")
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "README.txt").write_text(MODELS_README.format(name=NAME), encoding="utf-8")


def strip_libpython(folder: Path) -> None:
    """libpython from a source build keeps its debug info (23 MB instead of 6 MB): strip that, nothing else.

    Only libpython: wheel libraries (numpy, Pillow, onnxruntime) were rewritten by auditwheel/patchelf,
    and ``strip`` is known to corrupt such files."""
    strip = shutil.which("strip")
    if strip is None or not sys.platform.startswith("linux"):
        return
    for lib in (folder / "_internal").glob("libpython3*.so*"):
        if lib.is_file() and not lib.is_symlink():
            before = lib.stat().st_size
            if subprocess.run([strip, "--strip-debug", str(lib)]).returncode == 0:
                print(f"bundle: stripped debug info from {lib.name}: {before / 1e6:.1f} -> "
                      f"{lib.stat().st_size / 1e6:.1f} MB")


def platform_name() -> str:
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower().replace("amd64", "x86_64")
    return f"{system}-{machine}"


def make_archive(folder: Path, fmt: str = "zip") -> Path:
    """``<NAME>-<version>-<platform>.zip`` (or ``.tar.gz``) next to ``folder``, holding ``folder/``.

    PyInstaller puts symbolic links into ``_internal/`` on Linux and macOS (30 here, to libraries
    of ~100 MB): both formats store them as links, not as copies. ``unzip``, ``tar``, 7-Zip and the
    desktops' archive tools restore them; Python's ``zipfile`` module does not (use ``unzip``)."""
    base = folder.parent / f"{NAME}-{__version__}-{platform_name()}"
    for suffix in (".zip", ".tar.gz"):
        base.with_name(base.name + suffix).unlink(missing_ok=True)
    if fmt == "gztar":
        return Path(shutil.make_archive(str(base), "gztar", root_dir=folder.parent, base_dir=folder.name))
    if fmt != "zip":
        raise ValueError(f"unknown archive format {fmt!r} (zip or gztar)")
    path = base.with_name(base.name + ".zip")
    partial = path.with_name(path.name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for current, dirs, files in os.walk(folder):
            current_path = Path(current)
            for name in sorted(dirs + files):
                item = current_path / name
                arcname = item.relative_to(folder.parent).as_posix()
                if item.is_symlink():
                    info = zipfile.ZipInfo(arcname, date_time=time.localtime(item.lstat().st_mtime)[:6])
                    info.create_system = 3  # Unix: external_attr holds the mode, including S_IFLNK
                    info.external_attr = (stat.S_IFLNK | 0o777) << 16
                    archive.writestr(info, os.readlink(item))
                elif item.is_dir():
                    archive.write(item, arcname + "/")
                else:
                    archive.write(item, arcname)  # keeps the mode: the executable stays executable
            dirs[:] = sorted(d for d in dirs if not (current_path / d).is_symlink())
    partial.replace(path)
    return path


def executable(folder: Path) -> Path:
    return folder / (NAME + (".exe" if sys.platform == "win32" else ""))


def audit_bundle(folder: str | os.PathLike) -> Audit:
    """What is in the bundle that must not be: files on disk and modules in the embedded PYZ archive."""
    folder = Path(folder)
    audit = Audit()
    forbidden = {name.lower() for name in FORBIDDEN_PACKAGES}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        parts = rel.split("/")
        top = [p.split(".")[0].lower() for p in parts[1:2]] if parts[0] == "_internal" else []
        if top and top[0] in forbidden or any(p.lower().endswith(".dist-info") and p.lower().split("-")[0]
                                              in forbidden for p in parts):
            audit.problems.append(f"{rel} (a forbidden package)")
        name = path.name
        if name.startswith("Qt") and (name.endswith(".abi3.so") or name.endswith(".pyd")) and "PySide6" in parts:
            module = name.split(".")[0]
            audit.qt_modules.append(module)
            if module not in ALLOWED_QT_MODULES:
                audit.problems.append(f"{rel} (PySide6 module {module})")
        if FORBIDDEN_QT_LIBS.search(name):
            audit.problems.append(f"{rel} (Qt library of an unused module)")
        if "plugins" in parts and "Qt" in parts and path.is_file():
            audit.qt_plugins.append("/".join(parts[parts.index("plugins") + 1:]))
        if "translations" in parts and name.endswith(".qm"):
            audit.problems.append(f"{rel} (Qt translation)")
    try:
        from PyInstaller.archive.readers import pkg_archive_contents

        modules = pkg_archive_contents(str(executable(folder)))
    except Exception as exc:  # a PyInstaller version with another reader API: say so, do not guess
        audit.problems.append(f"cannot list the Python modules in {executable(folder)}: {exc}")
        modules = []
    audit.python_modules = len(modules)
    for module in modules:
        head = module.split(".")[0]
        if head.lower() in forbidden:
            audit.problems.append(f"Python module {module} in the executable's archive")
        if head == "PySide6" and module.count(".") >= 1 and module.split(".")[1].startswith("Qt") \
                and module.split(".")[1] not in ALLOWED_QT_MODULES:
            audit.problems.append(f"Python module {module} in the executable's archive")
    audit.qt_modules = sorted(set(audit.qt_modules))
    return audit


def tree_size(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def size_report(folder: str | os.PathLike, top: int = 12) -> str:
    """Total size, the biggest top-level items of ``_internal`` and the biggest single files."""
    folder = Path(folder)
    internal = folder / "_internal"
    total = tree_size(folder)
    lines = [f"bundle: {total / 1e6:.1f} MB unpacked (target <= {SIZE_TARGET_MB} MB)"
             + ("" if total <= SIZE_TARGET_MB * 1e6 else "  ** OVER TARGET **")]
    groups: dict[str, int] = {}
    if internal.is_dir():
        for item in internal.iterdir():
            groups[item.name] = tree_size(item)
        qt = internal / "PySide6" / "Qt"
        if qt.is_dir():  # split PySide6 up: it is the biggest part
            for item in qt.iterdir():
                groups[f"PySide6/Qt/{item.name}"] = tree_size(item)
            groups["PySide6"] = groups.get("PySide6", 0) - tree_size(qt)
    groups["(executable)"] = tree_size(executable(folder))
    lines.append("  biggest parts of _internal/:")
    for name, size in sorted(groups.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {size / 1e6:7.1f} MB  {name}")
    files = sorted((p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()),
                   key=lambda p: -p.stat().st_size)[:top]
    lines.append("  biggest files:")
    for path in files:
        lines.append(f"    {path.stat().st_size / 1e6:7.1f} MB  {path.relative_to(folder).as_posix()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from cifar10_cli.main import main as cli_main

    return cli_main(["bundle", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
