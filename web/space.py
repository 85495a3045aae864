"""``cifar10 export-space``: write a Hugging Face Space folder, ready to ``git push`` or ``hf upload``.

Three kinds:

* ``static`` (free to host): ``index.html`` + JavaScript that runs the ONNX models in the visitor's
  browser with onnxruntime-web (WebAssembly, one thread: static hosting sends no COOP/COEP
  headers). The onnxruntime-web files come from ``web/static/vendor`` (npm package, committed), so
  nothing is fetched from a CDN at run time. Preprocessing is ``web/static/preprocess.js``, a port of
  ``cifar10.preprocess.load_image`` that replicates Pillow's resize.
* ``gradio``: ``sdk: gradio``, ``app.py`` running :mod:`web.gradio_app`; the inference core
  (``cifar10``: onnxruntime + Pillow, no TensorFlow) and ``web`` are copied in so it runs standalone.
* ``streamlit``: ``sdk: docker`` with a Dockerfile running :mod:`web.streamlit_app` on port 8501
  (Streamlit is no longer a built-in Space SDK).

Gradio and Docker Spaces need paid hardware or ZeroGPU nowadays; static Spaces are free.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import string
from importlib import metadata
from pathlib import Path
from typing import Sequence

from cifar10 import contract
from cifar10.folder_journal import sha256_of, shown
from cifar10.registry import ModelInfo, discover_models
from web.common import model_dirs, sample_images, sample_label

KINDS = ("static", "gradio", "streamlit")
# What an export wrote (relative path -> sha256 of its bytes), so that --force replaces only those files, and only
# while they are unchanged. Read as a list of what may be removed, never as orders: a path in it counts only when
# the file found at that path in OUT_DIR has that very sha256.
RECORD = ".cifar10-space.json"
# A Space's own files in a fresh clone (Hugging Face writes them): --force may replace them when OUT_DIR is a git
# clone (git keeps their earlier versions).
CLONE_FILES = ("README.md", ".gitattributes")
STATIC_DIR = Path(__file__).resolve().parent / "static"
# The Spaces' README bodies (string.Template ${...} fields), the Gradio Space's app.py and the Dockerfile.
TEMPLATES_DIR = Path(__file__).resolve().parent / "space_templates"
VENDOR_DIR = STATIC_DIR / "vendor" / "onnxruntime-web"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
STATIC_FILES = ("index.html", "app.js", "preprocess.js", "style.css")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

# What the Python Spaces copy: the TensorFlow-free inference core and the web app modules.
CORE_MODULES = ("__init__.py", "contract.py", "errors.py", "options.py", "paths.py", "preprocess.py", "registry.py",
                "results.py", "inference.py")
WEB_MODULES = {"gradio": ("__init__.py", "common.py", "gradio_app.py"),
               "streamlit": ("__init__.py", "common.py", "streamlit_app.py")}

TITLE = "CIFAR-10 classifier"
EMOJI = "🖼️"
SHORT_DESCRIPTION = "Classify photos into the 10 CIFAR-10 classes"
# Binary files must go through Git LFS / Xet on the Hub (plain git pushes of binaries are refused).
GITATTRIBUTES = "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
                        for ext in ("onnx", "wasm", "png", "jpg", "jpeg", "webp", "gif", "bmp"))


# What browsers decode themselves (createImageBitmap): the static Space's file picker offers these only, so a
# TIFF/PPM/TGA/QOI is never offered and then refused (app.js names such a file's format when it is dropped).
BROWSER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".avif")
BROWSER_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/avif")
# "The lightest good model first": the page loads the smallest model within this much test accuracy of the best.
GOOD_ENOUGH = 0.01
# The Python Spaces read their page title (and a line under it) from web/space_config.json (web.common.page_title).
PY_CONFIG = "space_config.json"


class SpaceExportError(RuntimeError):
    """Export cannot proceed (no models, a non-empty target, missing vendor files); says what to do."""


YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "nan", "inf"}


def _yaml_value(value) -> str:
    """One YAML scalar: booleans and numbers as such, strings double-quoted (a JSON string is a valid YAML 1.2
    double-quoted scalar, so quotes, colons, '#', newlines and non-ASCII are all safe)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", text) and text.lower() not in YAML_WORDS:
        return text  # plain: sdk: static, colorFrom: indigo
    return json.dumps(text, ensure_ascii=False)


def _front_matter(**fields) -> str:
    """The Space's YAML header (None values left out). Written by hand, without PyYAML: the app-only install
    (onnxruntime + Pillow) has no ``yaml`` module, and a flat mapping of quoted scalars needs none."""
    lines = [f"{key}: {_yaml_value(value)}" for key, value in fields.items() if value is not None]
    return "---\n" + "\n".join(lines) + "\n---\n"


def _readme(kind: str, front: str, models: Sequence[ModelInfo], title: str, description: str | None = None,
            **values) -> str:
    """``space_templates/<kind>_README.md`` with its ${...} fields filled in, under the YAML header."""
    template = string.Template((TEMPLATES_DIR / f"{kind}_README.md").read_text(encoding="utf-8"))
    body = template.substitute(title=title, models_table=_models_table(models), what=_what(models), **values)
    if description:
        head, _, rest = body.partition("\n\n")
        body = f"{head}\n\n{description}\n\n{rest}"
    return front + "\n" + body


def _version(dist: str, fallback: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return fallback


def _is_cifar10(model: ModelInfo) -> bool:
    return tuple(model.labels) == contract.CLASS_NAMES and model.image_size == contract.IMAGE_SIZE


def _what(models: Sequence[ModelInfo]) -> str:
    """What the Space's models classify into (the READMEs' first sentence)."""
    if all(_is_cifar10(m) for m in models):
        return f"the 10 CIFAR-10 classes ({', '.join(contract.CLASS_NAMES)})"
    if len(models) == 1:
        m = models[0]
        return f"the {m.num_classes} classes of {m.dataset} ({', '.join(m.labels)})"
    return "the classes each model knows (see the table below)"


def _short_description(models: Sequence[ModelInfo], description: str | None = None) -> str:
    """The Space card's one line (at most 60 characters on the Hub): --description when it fits."""
    if description and len(description) <= 60 and "\n" not in description:
        return description
    if all(_is_cifar10(m) for m in models):
        return SHORT_DESCRIPTION
    text = f"Classify photos into the {models[0].num_classes} classes of {models[0].dataset}" \
        if len(models) == 1 else "Classify photos with your own image classifiers"
    return text if len(text) <= 60 else "Classify photos with your own image classifiers"


def _models_table(models: Sequence[ModelInfo]) -> str:
    rows = ["| model | knows | input | test accuracy | summary |", "| --- | --- | --- | --- | --- |"]
    for m in models:
        acc = f"{m.test_accuracy:.2%}" if m.test_accuracy is not None else "?"
        knows = f"{m.knows}: {', '.join(m.labels)}" if not _is_cifar10(m) else m.knows
        rows.append(f"| {m.name} | {knows.replace('|', '/')} | {m.image_size}x{m.image_size} | {acc} | "
                    f"{m.summary.replace('|', '/')} |")
    return "\n".join(rows)


def _prepare_out(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SpaceExportError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(p.name != ".git" for p in out_dir.iterdir()):
        if not force:
            raise SpaceExportError(f"{out_dir} is not empty; choose an empty folder, or pass --force to replace a "
                                   "Space export-space wrote there (its files only; a .git folder is kept, so a "
                                   "cloned Space can be updated)")
        _remove_own_files(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def _read_record(out_dir: Path) -> dict[str, str]:
    path = out_dir / RECORD
    try:
        if path.is_symlink() or not path.is_file():
            return {}
        files = json.loads(path.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _remove_own_files(out_dir: Path) -> None:
    """--force: remove what an earlier export wrote into ``out_dir`` (each file listed in its RECORD and still
    holding the bytes written), and in a git clone the Space's own README.md and .gitattributes; then the folders
    left empty. Anything else there (a file of the user's, one changed since, a link) stops it before a file is
    removed, naming them."""
    record, clone = _read_record(out_dir), (out_dir / ".git").is_dir()
    removable: list[Path] = []
    foreign: list[str] = []
    for root, dirs, files in os.walk(out_dir):
        here = Path(root)
        if here == out_dir:
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in list(dirs):
            if (here / name).is_symlink():  # never followed, never removed
                foreign.append((here / name).relative_to(out_dir).as_posix())
                dirs.remove(name)
        for name in files:
            path = here / name
            rel = path.relative_to(out_dir).as_posix()
            if path.is_symlink() or not path.is_file():
                foreign.append(rel)
            elif rel == RECORD or (clone and rel in CLONE_FILES) or record.get(rel) == sha256_of(path):
                removable.append(path)
            else:
                foreign.append(rel)
    if foreign:
        shown_names = ", ".join(shown(name) for name in sorted(foreign)[:5]) + \
            (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise SpaceExportError(f"{shown(out_dir)} holds files export-space did not write there, or that changed "
                               f"since it did: {shown_names}. --force replaces only a Space export-space wrote (and a "
                               "cloned Space's README.md and .gitattributes): move those files, or choose an "
                               "empty folder. Nothing was removed.")
    for path in sorted(removable, key=lambda p: p == out_dir / RECORD):  # the record last: killed half-way,
        path.unlink()                                                     # a rerun still knows the rest
    # The folders that held removed files, deepest first, when that left them empty (a folder of the user's,
    # even an empty one, stays).
    held = {parent for path in removable for parent in path.parents if out_dir in parent.parents}
    for folder in sorted(held, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def _entries(out_dir: Path) -> tuple[set[Path], set[Path]]:
    """(plain files, folders) under ``out_dir``, .git and links left out (never followed)."""
    files, dirs = set(), set()
    for root, subdirs, names in os.walk(out_dir):
        here = Path(root)
        subdirs[:] = [d for d in subdirs if not (here == out_dir and d == ".git") and not (here / d).is_symlink()]
        dirs.update(here / d for d in subdirs)
        files.update(here / name for name in names if (here / name).is_file() and not (here / name).is_symlink())
    return files, dirs


def _write_record(out_dir: Path, paths: Sequence[Path]) -> None:
    files = {p.relative_to(out_dir).as_posix(): sha256_of(p) for p in paths}
    (out_dir / RECORD).write_text(json.dumps({"written_by": "cifar10 export-space", "files": files}, indent=1,
                                             sort_keys=True) + "\n", encoding="utf-8")


def _copy_models(models: Sequence[ModelInfo], dest: Path) -> list[dict]:
    dest.mkdir(parents=True, exist_ok=True)
    entries = []
    for m in models:
        shutil.copy2(m.onnx_path, dest / f"{m.name}.onnx")
        (dest / f"{m.name}.json").write_text(json.dumps(m.card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        # What the model knows (contract v3; CIFAR-10's ten classes at 32 px for v1/v2): the static Space's
        # app.js decodes at image_size and names the bars with labels.
        entries.append({"name": m.name, "test_accuracy": m.test_accuracy, "summary": m.summary,
                        "open_set_threshold": contract.open_set_threshold(m.card),
                        "dataset": m.dataset, "knows": m.knows, "class_names": list(m.class_names),
                        "labels": list(m.labels), "image_size": m.image_size})
    return entries


def _copy_samples(samples: Sequence[Path], dest: Path) -> list[str]:
    names = []
    if samples:
        dest.mkdir(parents=True, exist_ok=True)
    for path in samples:
        shutil.copy2(path, dest / path.name)
        names.append(path.name)
    return names


def select_models(names: Sequence[str] | None, dirs: Sequence[Path]) -> tuple[list[ModelInfo], list[str]]:
    """The models to publish: the ones named (in that order), else every valid model in ``dirs``. Unknown names
    raise :class:`SpaceExportError` listing what there is, before anything is written."""
    found, errors = discover_models(dirs)
    where = ", ".join(str(d) for d in dirs)
    if not names:
        return found, errors
    by_name = {m.name: m for m in found}
    missing = [n for n in names if n not in by_name]
    if missing:
        import difflib

        hints = []
        for n in missing:
            close = difflib.get_close_matches(n, list(by_name), n=1)
            hints.append(f"'{n}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        have = ", ".join(sorted(by_name)) or "none"
        detail = ("; skipped: " + "; ".join(errors)) if errors else ""
        raise SpaceExportError(f"no model named {', '.join(hints)} in {where}. Models there: {have}{detail}. "
                               "List them with `cifar10 models`.")
    chosen = list(dict.fromkeys(names))
    return [by_name[n] for n in chosen], [e for e in errors if any(f"{n}.onnx" in e for n in chosen)]


def lightest_good_model(models: Sequence[ModelInfo], slack: float = GOOD_ENOUGH) -> ModelInfo | None:
    """What the static page loads first: the smallest file among the models within ``slack`` test accuracy of
    the best (an int8 copy of the best model wins this way as soon as it is included); models without an
    accuracy count only when none has one."""
    if not models:
        return None
    scored = [m for m in models if m.test_accuracy is not None]
    if scored:
        best = max(m.test_accuracy for m in scored)
        pool = [m for m in scored if m.test_accuracy >= best - slack - 1e-9]
    else:
        pool = list(models)
    return min(pool, key=lambda m: (m.onnx_path.stat().st_size, -(m.test_accuracy or 0.0), m.name))


def _known_classes(models: Sequence[ModelInfo]) -> set[str]:
    return {str(c).lower() for m in models for c in (*m.class_names, *m.labels)}


def pick_samples(models: Sequence[ModelInfo], examples_dir: str | os.PathLike | None) -> list[Path]:
    """Example pictures: every image in ``examples_dir`` (the user's own) when given; else the studio's
    samples whose class (``cat.png`` -> cat) one of the models knows, so a cat/ship/truck model is never shown
    an airplane."""
    if examples_dir:
        if not Path(examples_dir).is_dir():
            raise SpaceExportError(f"--examples {examples_dir}: no such folder")
        return sample_images(examples_dir)
    known = _known_classes(models)
    return [p for p in sample_images(None) if sample_label(p).lower() in known]


def export_space(kind: str, out_dir: str | os.PathLike, *, models_dir: str | os.PathLike | None = None,
                 samples_dir: str | os.PathLike | None = None, force: bool = False,
                 title: str | None = None, models: Sequence[str] | None = None, description: str | None = None,
                 examples_dir: str | os.PathLike | None = None) -> dict:
    """Write the Space; returns a summary dict (kind, out_dir, models, default, samples, files, bytes).

    ``models``: names to publish (default: every model found); they are looked up in ``models_dir`` alone when
    given, else in the apps' folders (the shipped models, then the user's, where ``cifar10 train`` puts them).
    ``examples_dir``: the example pictures, all of them (a missing folder is an error); without it, the studio's
    samples of the classes the models know. ``samples_dir`` (older API): all of its pictures, if it exists.
    Everything is checked before the first file is written.
    """
    if kind not in KINDS:
        raise SpaceExportError(f"unknown kind '{kind}': use one of {', '.join(KINDS)}")
    dirs = model_dirs(models_dir)
    chosen, errors = select_models(models, dirs)
    if not chosen:
        detail = ("; skipped: " + "; ".join(errors)) if errors else ""
        raise SpaceExportError(f"no valid models in {', '.join(str(d) for d in dirs)} to put in the Space{detail}. "
                               "Train and export one first (`cifar10 train`), or pass --models-dir.")
    if not title:
        title = TITLE if all(_is_cifar10(m) for m in chosen) else \
            (f"{chosen[0].dataset} classifier" if len(chosen) == 1 else "Image classifier")
    # samples_dir (the API's older name): all of its pictures, none when it does not exist (as before).
    samples = sample_images(samples_dir) if samples_dir and not examples_dir else pick_samples(chosen, examples_dir)
    if kind == "static":
        _check_vendor()
    out = Path(out_dir)
    _prepare_out(out, force)
    before_files, before_dirs = _entries(out)  # nothing of ours is left in it now: what appears is this export's
    writer = {"static": _write_static, "gradio": _write_gradio, "streamlit": _write_streamlit}[kind]
    try:
        writer(out, chosen, samples, title, description)
        (out / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
        paths = sorted(_entries(out)[0] - before_files)
        _write_record(out, paths)
    except OSError as exc:  # a full disk, a read-only folder: one line, and no half-written Space left behind
        files, dirs = _entries(out)
        for path in files - before_files:
            path.unlink(missing_ok=True)
        for folder in sorted(dirs - before_dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise SpaceExportError(f"could not write the Space into {shown(out)}: {exc.strerror or exc}; the files "
                               "written so far were removed") from None
    first = lightest_good_model(chosen)
    return {"kind": kind, "out_dir": str(out), "models": [m.name for m in chosen], "skipped": errors,
            "default": first.name if first else None, "title": title,
            "samples": [p.name for p in samples], "files": sorted(str(p.relative_to(out)) for p in paths),
            "bytes": sum(p.stat().st_size for p in paths)}


# --- static ----------------------------------------------------------------------------------------

def _check_vendor() -> None:
    missing = [f for f in ORT_FILES if not (VENDOR_DIR / f).is_file()]
    if missing:
        raise SpaceExportError(f"onnxruntime-web files missing from {VENDOR_DIR}: {', '.join(missing)}. "
                               f"Run {STATIC_DIR / 'update-vendor.sh'} (needs npm).")


def _static_html(title: str, description: str | None) -> str:
    """index.html with the Space's title in the tab, the heading and the footer (HTML-escaped)."""
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    safe = html.escape(title, quote=True)
    text = text.replace("CIFAR-10 image classifier", safe)  # <title>, <h1> and the footer
    if description:
        text = text.replace('<p class="description" id="description" hidden></p>',
                            f'<p class="description" id="description">{html.escape(description)}</p>')
    return text


def _write_static(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str,
                  description: str | None = None) -> None:
    _check_vendor()
    for name in STATIC_FILES:
        if name != "index.html":
            shutil.copy2(STATIC_DIR / name, out / name)
    (out / "index.html").write_text(_static_html(title, description), encoding="utf-8")
    (out / "ort").mkdir()
    for name in ORT_FILES:
        shutil.copy2(VENDOR_DIR / name, out / "ort" / name)
    ort_version = json.loads((VENDOR_DIR / "VERSION.json").read_text()).get("version", "?") \
        if (VENDOR_DIR / "VERSION.json").is_file() else "?"
    entries = _copy_models(models, out / "models")
    for entry, model in zip(entries, models):
        entry["file"] = f"models/{entry['name']}.onnx"
        entry["card"] = f"models/{entry['name']}.json"
        # The page checks a download against these (a Git LFS pointer or a cut-off file is caught at load).
        entry["bytes"] = (out / entry["file"]).stat().st_size
    sample_names = _copy_samples(samples, out / "samples")
    first = lightest_good_model(models)
    # Top-level class_names / image_size: CIFAR-10's (what a model entry without its own means); each entry
    # carries its model's class_names, labels, image_size and dataset.
    manifest = {"title": title, "description": description, "class_names": list(contract.CLASS_NAMES),
                "image_size": contract.IMAGE_SIZE, "models": entries, "default": first.name if first else None,
                "samples": [f"samples/{n}" for n in sample_names],
                "onnxruntime_web": ort_version, "wasm_bytes": (out / "ort" / ORT_FILES[2]).stat().st_size,
                "accept": ",".join([*BROWSER_TYPES, *BROWSER_SUFFIXES])}
    (out / "models.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="static",
                          app_file="index.html", pinned=False, license="mit",
                          short_description=_short_description(models, description))
    (out / "README.md").write_text(_readme("static", front, models, title, description, ort_version=ort_version),
                                   encoding="utf-8")


# --- Python Spaces (gradio, streamlit) ---------------------------------------------------------------

def _copy_python_app(out: Path, kind: str, models: Sequence[ModelInfo], samples: Sequence[Path], title: str,
                     description: str | None) -> None:
    core = out / "cifar10"
    core.mkdir()
    for name in CORE_MODULES:
        shutil.copy2(PACKAGE_ROOT / "cifar10" / name, core / name)
    web = out / "web"
    web.mkdir()
    for name in WEB_MODULES[kind]:
        shutil.copy2(PACKAGE_ROOT / "web" / name, web / name)
    (web / PY_CONFIG).write_text(json.dumps({"title": title, "description": description}, indent=2,
                                            ensure_ascii=False) + "\n", encoding="utf-8")
    _copy_models(models, out / "exported_models")
    _copy_samples(samples, out / "resources" / "samples")


def _requirements(*extra: str) -> str:
    pins = [f"onnxruntime=={_version('onnxruntime', '1.20.1')}", f"pillow=={_version('pillow', '11.0.0')}",
            f"numpy=={_version('numpy', '2.1.3')}", *extra]
    return "# The inference core needs onnxruntime, Pillow and numpy only (no TensorFlow).\n" + "\n".join(pins) + "\n"


def _write_gradio(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str,
                  description: str | None = None) -> None:
    _copy_python_app(out, "gradio", models, samples, title, description)
    shutil.copy2(TEMPLATES_DIR / "gradio_app.py", out / "app.py")
    # gradio itself is installed by the Space from sdk_version; listing it here would fight that pin.
    (out / "requirements.txt").write_text(_requirements(), encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="gradio",
                          sdk_version=_version("gradio", "6.0.0"), python_version="3.11", app_file="app.py",
                          pinned=False, license="mit", short_description=_short_description(models, description))
    (out / "README.md").write_text(_readme("gradio", front, models, title, description), encoding="utf-8")


def _write_streamlit(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str,
                  description: str | None = None) -> None:
    _copy_python_app(out, "streamlit", models, samples, title, description)
    (out / "requirements.txt").write_text(
        _requirements(f"streamlit=={_version('streamlit', '1.50.0')}", f"pandas=={_version('pandas', '2.2.3')}"),
        encoding="utf-8")
    shutil.copy2(TEMPLATES_DIR / "Dockerfile", out / "Dockerfile")
    (out / ".dockerignore").write_text(".git\n__pycache__/\n*.pyc\n", encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="docker",
                          app_port=8501, pinned=False, license="mit", short_description=_short_description(models, description))
    (out / "README.md").write_text(_readme("streamlit", front, models, title, description), encoding="utf-8")
