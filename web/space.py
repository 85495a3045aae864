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

import json
import os
import shutil
import string
from importlib import metadata
from pathlib import Path
from typing import Sequence

from cifar10 import contract
from cifar10.paths import shipped_models_dir
from cifar10.registry import ModelInfo, discover_models
from web.common import UPLOAD_SUFFIXES, sample_images

KINDS = ("static", "gradio", "streamlit")
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


class SpaceExportError(RuntimeError):
    """Export cannot proceed (no models, a non-empty target, missing vendor files); says what to do."""


def _front_matter(**fields) -> str:
    """The Space's YAML header (None values left out), written by PyYAML so quoting is always right."""
    import yaml

    header = yaml.safe_dump({k: v for k, v in fields.items() if v is not None}, sort_keys=False,
                            allow_unicode=True, default_flow_style=False)
    return f"---\n{header}---\n"


def _readme(kind: str, front: str, models: Sequence[ModelInfo], title: str, **values) -> str:
    """``space_templates/<kind>_README.md`` with its ${...} fields filled in, under the YAML header."""
    template = string.Template((TEMPLATES_DIR / f"{kind}_README.md").read_text(encoding="utf-8"))
    body = template.substitute(title=title, models_table=_models_table(models), what=_what(models), **values)
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


def _short_description(models: Sequence[ModelInfo]) -> str:
    """The Space card's one line (at most 60 characters on the Hub)."""
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
            raise SpaceExportError(f"{out_dir} is not empty; choose an empty folder or pass --force to replace "
                                   "its contents (a .git folder is kept, so a cloned Space can be updated)")
        for p in out_dir.iterdir():
            if p.name == ".git":
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


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


def export_space(kind: str, out_dir: str | os.PathLike, *, models_dir: str | os.PathLike | None = None,
                 samples_dir: str | os.PathLike | None = None, force: bool = False,
                 title: str = TITLE) -> dict:
    """Write the Space; returns a summary dict (kind, out_dir, models, samples, files)."""
    if kind not in KINDS:
        raise SpaceExportError(f"unknown kind '{kind}': use one of {', '.join(KINDS)}")
    source_dir = Path(models_dir) if models_dir else shipped_models_dir()
    models, errors = discover_models([source_dir])
    if not models:
        detail = ("; skipped: " + "; ".join(errors)) if errors else ""
        raise SpaceExportError(f"no valid models in {source_dir} to put in the Space{detail}. Train and export one "
                               "first (`cifar10 train`), or pass --models-dir.")
    samples = sample_images(samples_dir)
    out = Path(out_dir)
    _prepare_out(out, force)
    writer = {"static": _write_static, "gradio": _write_gradio, "streamlit": _write_streamlit}[kind]
    writer(out, models, samples, title)
    (out / ".gitattributes").write_text(GITATTRIBUTES, encoding="utf-8")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".git" not in p.parts)
    return {"kind": kind, "out_dir": str(out), "models": [m.name for m in models], "skipped": errors,
            "samples": [p.name for p in samples], "files": files}


# --- static ----------------------------------------------------------------------------------------

def _write_static(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str) -> None:
    missing = [f for f in ORT_FILES if not (VENDOR_DIR / f).is_file()]
    if missing:
        raise SpaceExportError(f"onnxruntime-web files missing from {VENDOR_DIR}: {', '.join(missing)}. "
                               f"Run {STATIC_DIR / 'update-vendor.sh'} (needs npm).")
    for name in STATIC_FILES:
        shutil.copy2(STATIC_DIR / name, out / name)
    (out / "ort").mkdir()
    for name in ORT_FILES:
        shutil.copy2(VENDOR_DIR / name, out / "ort" / name)
    ort_version = json.loads((VENDOR_DIR / "VERSION.json").read_text()).get("version", "?") \
        if (VENDOR_DIR / "VERSION.json").is_file() else "?"
    entries = _copy_models(models, out / "models")
    for entry in entries:
        entry["file"] = f"models/{entry['name']}.onnx"
        entry["card"] = f"models/{entry['name']}.json"
    sample_names = _copy_samples(samples, out / "samples")
    # Top-level class_names / image_size: CIFAR-10's (what a model entry without its own means); each entry
    # carries its model's class_names, labels, image_size and dataset.
    manifest = {"title": title, "class_names": list(contract.CLASS_NAMES), "image_size": contract.IMAGE_SIZE,
                "models": entries, "samples": [f"samples/{n}" for n in sample_names],
                "onnxruntime_web": ort_version, "accept": ",".join(["image/*", *UPLOAD_SUFFIXES])}
    (out / "models.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="static",
                          app_file="index.html", pinned=False, license="mit", short_description=_short_description(models))
    (out / "README.md").write_text(_readme("static", front, models, title, ort_version=ort_version), encoding="utf-8")


# --- Python Spaces (gradio, streamlit) ---------------------------------------------------------------

def _copy_python_app(out: Path, kind: str, models: Sequence[ModelInfo], samples: Sequence[Path]) -> None:
    core = out / "cifar10"
    core.mkdir()
    for name in CORE_MODULES:
        shutil.copy2(PACKAGE_ROOT / "cifar10" / name, core / name)
    web = out / "web"
    web.mkdir()
    for name in WEB_MODULES[kind]:
        shutil.copy2(PACKAGE_ROOT / "web" / name, web / name)
    _copy_models(models, out / "exported_models")
    _copy_samples(samples, out / "resources" / "samples")


def _requirements(*extra: str) -> str:
    pins = [f"onnxruntime=={_version('onnxruntime', '1.20.1')}", f"pillow=={_version('pillow', '11.0.0')}",
            f"numpy=={_version('numpy', '2.1.3')}", *extra]
    return "# The inference core needs onnxruntime, Pillow and numpy only (no TensorFlow).\n" + "\n".join(pins) + "\n"


def _write_gradio(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str) -> None:
    _copy_python_app(out, "gradio", models, samples)
    shutil.copy2(TEMPLATES_DIR / "gradio_app.py", out / "app.py")
    # gradio itself is installed by the Space from sdk_version; listing it here would fight that pin.
    (out / "requirements.txt").write_text(_requirements(), encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="gradio",
                          sdk_version=_version("gradio", "6.0.0"), python_version="3.11", app_file="app.py",
                          pinned=False, license="mit", short_description=_short_description(models))
    (out / "README.md").write_text(_readme("gradio", front, models, title), encoding="utf-8")


def _write_streamlit(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str) -> None:
    _copy_python_app(out, "streamlit", models, samples)
    (out / "requirements.txt").write_text(
        _requirements(f"streamlit=={_version('streamlit', '1.50.0')}", f"pandas=={_version('pandas', '2.2.3')}"),
        encoding="utf-8")
    shutil.copy2(TEMPLATES_DIR / "Dockerfile", out / "Dockerfile")
    (out / ".dockerignore").write_text(".git\n__pycache__/\n*.pyc\n", encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="docker",
                          app_port=8501, pinned=False, license="mit", short_description=_short_description(models))
    (out / "README.md").write_text(_readme("streamlit", front, models, title), encoding="utf-8")
