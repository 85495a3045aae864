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
from importlib import metadata
from pathlib import Path
from typing import Sequence

from cifar10 import contract
from cifar10.paths import shipped_models_dir
from cifar10.registry import ModelInfo, discover_models

KINDS = ("static", "gradio", "streamlit")
STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor" / "onnxruntime-web"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
STATIC_FILES = ("index.html", "app.js", "preprocess.js", "style.css")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

# What the Python Spaces copy: the TensorFlow-free inference core and the web app modules.
CORE_MODULES = ("__init__.py", "contract.py", "paths.py", "preprocess.py", "registry.py", "inference.py")
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
    lines = ["---"]
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, str) and (not value or any(c in value for c in ":#'\"{}[],&*?|<>=!%@`")
                                         or value.replace(".", "", 1).isdigit()):  # "3.10" must stay a string
            value = json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {value}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def _version(dist: str, fallback: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return fallback


def _models_table(models: Sequence[ModelInfo]) -> str:
    rows = ["| model | test accuracy | summary |", "| --- | --- | --- |"]
    for m in models:
        acc = f"{m.test_accuracy:.2%}" if m.test_accuracy is not None else "?"
        rows.append(f"| {m.name} | {acc} | {m.summary.replace('|', '/')} |")
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
        entries.append({"name": m.name, "test_accuracy": m.test_accuracy, "summary": m.summary,
                        "open_set_threshold": contract.open_set_threshold(m.card)})
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
    from web.common import sample_images

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
    manifest = {"title": title, "class_names": list(contract.CLASS_NAMES), "image_size": contract.IMAGE_SIZE,
                "models": entries, "samples": [f"samples/{n}" for n in sample_names],
                "onnxruntime_web": ort_version}
    (out / "models.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="static",
                          app_file="index.html", pinned=False, license="mit", short_description=SHORT_DESCRIPTION)
    body = f"""
# {title}

Classify photos into the 10 CIFAR-10 classes ({", ".join(contract.CLASS_NAMES)}), **entirely in the
browser**: the ONNX models run with onnxruntime-web {ort_version} (WebAssembly, one thread), served from
this Space. Uploaded images never leave the visitor's computer, and a static Space is free to host.

{_models_table(models)}

Preprocessing (`preprocess.js`) replicates the Python app's `cifar10.preprocess.load_image` (Pillow
bicubic resize with `reducing_gap=3`, EXIF orientation, transparency on white), so predictions match
`cifar10 classify`.

Made with `cifar10 export-space --kind static` (CIFAR-10 classifier studio).
"""
    (out / "README.md").write_text(front + body, encoding="utf-8")


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


GRADIO_APP = '''"""Hugging Face Space entry point (sdk: gradio): the CIFAR-10 classifier studio's Gradio app.

The folder holds a copy of the inference core (cifar10/) and the app (web/), the models
(exported_models/) and example images (resources/samples/). Run locally: pip install -r
requirements.txt gradio && python app.py
"""

from pathlib import Path

from web.gradio_app import build_demo

HERE = Path(__file__).resolve().parent
demo = build_demo(models_dir=HERE / "exported_models")

if __name__ == "__main__":
    # On Spaces, GRADIO_SERVER_NAME=0.0.0.0 and the port come from the environment.
    demo.queue(default_concurrency_limit=4).launch(allowed_paths=[str(HERE / "resources" / "samples")],
                                                   footer_links=["api"])
'''


def _write_gradio(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str) -> None:
    _copy_python_app(out, "gradio", models, samples)
    (out / "app.py").write_text(GRADIO_APP, encoding="utf-8")
    # gradio itself is installed by the Space from sdk_version; listing it here would fight that pin.
    (out / "requirements.txt").write_text(_requirements(), encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="gradio",
                          sdk_version=_version("gradio", "6.0.0"), python_version="3.11", app_file="app.py",
                          pinned=False, license="mit", short_description=SHORT_DESCRIPTION)
    body = f"""
# {title} (Gradio)

Upload photos, pick a model, and see each image's CIFAR-10 class with its probabilities. The models
are ONNX files run by onnxruntime on the CPU (no TensorFlow); `cifar10/` is the studio's inference core.

{_models_table(models)}

API: `gradio_client.Client("USER/SPACE").predict(model_name, [handle_file(path)], api_name="/classify")`.

Note: Gradio Spaces need paid CPU hardware or ZeroGPU now; the static Space (`cifar10 export-space
--kind static`) is the free alternative. Made with `cifar10 export-space --kind gradio`.
"""
    (out / "README.md").write_text(front + body, encoding="utf-8")


DOCKERFILE = """# Streamlit on a Docker Space (Streamlit is no longer a built-in Space SDK). Port 8501 = app_port.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    HOME=/home/user PATH=/home/user/.local/bin:$PATH \\
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# Spaces run the container as uid 1000.
RUN useradd -m -u 1000 user
USER user
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install --user -r requirements.txt
COPY --chown=user . .

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
# XSRF protection off: the Space shows the app in an iframe, where Streamlit's upload check fails (403).
ENTRYPOINT ["streamlit", "run", "web/streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0", \\
            "--server.enableXsrfProtection=false", "--server.headless=true"]
"""


def _write_streamlit(out: Path, models: Sequence[ModelInfo], samples: Sequence[Path], title: str) -> None:
    _copy_python_app(out, "streamlit", models, samples)
    (out / "requirements.txt").write_text(
        _requirements(f"streamlit=={_version('streamlit', '1.50.0')}", f"pandas=={_version('pandas', '2.2.3')}"),
        encoding="utf-8")
    (out / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    (out / ".dockerignore").write_text(".git\n__pycache__/\n*.pyc\n", encoding="utf-8")
    front = _front_matter(title=title, emoji=EMOJI, colorFrom="indigo", colorTo="blue", sdk="docker",
                          app_port=8501, pinned=False, license="mit", short_description=SHORT_DESCRIPTION)
    body = f"""
# {title} (Streamlit)

Upload photos, pick a model, and see each image's CIFAR-10 class with its probabilities. A Docker
Space running Streamlit on port 8501 (`Dockerfile`); the models are ONNX files run by onnxruntime on
the CPU (no TensorFlow); `cifar10/` is the studio's inference core.

{_models_table(models)}

Run locally: `pip install -r requirements.txt && streamlit run web/streamlit_app.py`, or
`docker build -t cifar10-space . && docker run -p 8501:8501 cifar10-space`.

Note: Docker Spaces need paid CPU hardware now; the static Space (`cifar10 export-space --kind
static`) is the free alternative. Made with `cifar10 export-space --kind streamlit`.
"""
    (out / "README.md").write_text(front + body, encoding="utf-8")
