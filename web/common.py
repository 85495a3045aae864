"""What the Streamlit and Gradio apps share: models, one classifier per model, classifying uploads.

Everything here runs on the shared core: :func:`cifar10.preprocess.load_image` turns an upload into
the model input (the same function as the CLI and the desktop app: no copy), and
:class:`cifar10.inference.Classifier` runs it with onnxruntime. No TensorFlow, no Streamlit/Gradio.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from cifar10 import contract
from cifar10.inference import Classifier
from cifar10.results import Result
from cifar10.paths import SAMPLES_DIR_ENV, samples_dir, shipped_models_dir  # noqa: F401 (SAMPLES_DIR_ENV: for callers)
from cifar10.preprocess import IMAGE_SUFFIXES, ImageError, ImageSource, load_image, load_preview
from cifar10.registry import ModelInfo, best_model, discover_models

TITLE = "CIFAR-10 image classifier"
INTRO = ("Upload photos (JPG, PNG, WebP, GIF, BMP, TIFF...) and a network trained on CIFAR-10 says which of its "
         "10 classes each one shows: " + ", ".join(contract.CLASS_NAMES) + ". Every image is shrunk to "
         "32x32 pixels first, the size the models were trained on.")
# A Space written by `cifar10 export-space --kind gradio|streamlit --title T --description D` carries its title
# (and a line under it) in web/space_config.json, next to this module.
SPACE_CONFIG = Path(__file__).resolve().with_name("space_config.json")


def _space_config() -> dict:
    try:
        import json

        data = json.loads(SPACE_CONFIG.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def page_title() -> str:
    """The app's title: the Space's --title when exported with one, else :data:`TITLE`."""
    return str(_space_config().get("title") or TITLE)


def page_description() -> str | None:
    """The Space's --description (a line under the title), if any."""
    text = _space_config().get("description")
    return str(text) if text else None


# Bars per result: every class up to MAX_BARS; beyond, the TOP_BARS most likely and one "other" bar.
MAX_BARS, TOP_BARS = 12, 10


def intro(model: ModelInfo | None = None) -> str:
    """What the page says the selected model does: its dataset, classes and input size (CIFAR-10's text for
    a CIFAR-10 model, :data:`INTRO`)."""
    if model is None or (tuple(model.labels) == contract.CLASS_NAMES and model.image_size == contract.IMAGE_SIZE):
        return INTRO
    return (f"Upload photos (JPG, PNG, WebP, GIF, BMP, TIFF...) and a network trained on {model.dataset} says which "
            f"of its {model.num_classes} classes each one shows: {', '.join(model.labels)}. Every image is shrunk "
            f"to {model.image_size}x{model.image_size} pixels first, the size the model was trained on.")


def bars(result: Result) -> list[tuple[str, float, bool]]:
    """``(class, probability, is_the_label)`` for a result's bars, in the model's class order: every class up to
    :data:`MAX_BARS`; beyond, the :data:`TOP_BARS` most likely (still in class order) and ``other (N classes)``
    with the rest's summed probability."""
    if result.probabilities is None:
        return []
    probs = [float(p) for p in result.probabilities]
    rows = [(name, p, name == result.label) for name, p in zip(result.classes, probs)]
    if len(rows) <= MAX_BARS:
        return rows
    keep = set(np.argsort(-np.asarray(probs), kind="stable")[:TOP_BARS].tolist())
    rest = [p for i, p in enumerate(probs) if i not in keep]
    return [row for i, row in enumerate(rows) if i in keep] + [(f"other ({len(rest)} classes)", sum(rest), False)]
# What every upload widget accepts (Streamlit, Gradio, the static Space): the formats cifar10.preprocess opens.
UPLOAD_SUFFIXES = sorted(IMAGE_SUFFIXES)                          # ".jpg", ... (Gradio, HTML accept=)
UPLOAD_EXTENSIONS = [suffix.lstrip(".") for suffix in UPLOAD_SUFFIXES]  # "jpg", ... (Streamlit)
PREVIEW_SIDE = 192


def model_dirs(models_dir: str | os.PathLike | None = None) -> list[Path]:
    """``models_dir`` alone if given, else the apps' usual folders (shipped or ``$CIFAR10_MODELS_DIR``, then the user's)."""
    if models_dir:
        return [Path(models_dir)]
    try:
        from cifar10.paths import model_dirs as core_model_dirs

        return core_model_dirs()
    except ImportError:  # platformdirs missing (e.g. a lean Space): the shipped folder only
        return [shipped_models_dir()]


def find_models(models_dir: str | os.PathLike | None = None) -> tuple[list[ModelInfo], list[str]]:
    """Valid models, best test accuracy first, and one readable sentence per model that was skipped."""
    return discover_models(model_dirs(models_dir))


def default_model(models: Sequence[ModelInfo]) -> ModelInfo | None:
    return best_model(list(models))


def model_choice_label(model: ModelInfo) -> str:
    """``name — CIFAR-10 · 10 classes — 83.4% test accuracy`` (:attr:`ModelInfo.label`)."""
    return model.label


def sample_images(directory: str | os.PathLike | None = None) -> list[Path]:
    """Example images (``resources/samples``), sorted by name; an empty list if the folder is absent."""
    folder = Path(directory) if directory else samples_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def sample_label(path: str | os.PathLike) -> str:
    """``cat_0.png`` -> ``cat``: the class part of a sample's file name, for buttons and captions."""
    stem = Path(path).stem
    head, _, tail = stem.rpartition("_")
    return head if head and tail.isdigit() else stem


class ClassifierCache:
    """One :class:`Classifier` per model file for the whole process (sessions are thread-safe to share)."""

    def __init__(self, provider: str = "cpu"):
        self.provider = provider
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, int], Classifier] = {}

    def get(self, model: ModelInfo) -> Classifier:
        path = Path(model.onnx_path)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            mtime = 0
        key = (str(path.resolve()), mtime)
        with self._lock:
            classifier = self._by_key.get(key)
            if classifier is None:
                classifier = Classifier(model, provider=self.provider)
                self._by_key[key] = classifier
            return classifier

    def __len__(self) -> int:
        return len(self._by_key)


def classify_sources(classifier: Classifier, sources: Iterable[tuple[str, ImageSource]]) -> list[Result]:
    """Classify ``(display name, path | bytes | file)`` pairs in one batch; broken ones get ``error``.

    Each :class:`cifar10.results.Result` has the display name as ``path``, the model's classes (error rows too)
    and keeps its model input (the model's size: 32x32 for CIFAR-10)."""
    results: list[Result] = []
    good: list[int] = []
    classes = tuple(classifier.labels)
    for name, source in sources:
        try:
            image = load_image(source, classifier.image_size)
        except ImageError as exc:
            results.append(Result(name, error=exc.reason, classes=classes))
            continue
        except Exception as exc:  # never a traceback in the page
            results.append(Result(name, error=f"unexpected error reading the image ({type(exc).__name__}: {exc})",
                                  classes=classes))
            continue
        good.append(len(results))
        results.append(Result(name, image=image, classes=classes))
    if good:
        outputs = classifier.predict_all(np.stack([results[i].image for i in good]))
        flags = outputs.unsure
        for row, index in enumerate(good):
            results[index] = classifier.result(results[index].path, outputs.probabilities[row], results[index].image,
                                               ood_score=float(outputs.ood_score[row]), unsure=bool(flags[row]))
    return results


def preview(source: ImageSource, side: int = PREVIEW_SIDE) -> np.ndarray | None:
    """The upload as a person sees it (upright, longest side ``side``), or None if it cannot be read.

    Small images (a 32x32 CIFAR sample) are enlarged by whole pixels, so they look crisp, not blurred.
    """
    try:
        if hasattr(source, "seek"):
            source.seek(0)
        image = load_preview(source, side)
    except Exception:
        return None
    zoom = side // max(image.shape[:2])
    if zoom >= 2:
        image = np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1)
    return image


def png_data_uri(rgb: np.ndarray, scale: int = 1) -> str:
    from PIL import Image

    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


CARDS_CSS = """
.c10-cards{display:flex;flex-wrap:wrap;gap:14px}
.c10-card{border:1px solid #d0d7de;border-radius:10px;padding:12px;width:330px;background:#fff;color:#1f2328;
  font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif}
.c10-card img{max-width:100%;max-height:190px;display:block;margin:0 auto 8px;border-radius:6px}
.c10-name{font-size:12px;color:#57606a;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.c10-label{font-size:20px;font-weight:700;margin:2px 0}
.c10-conf{font-size:13px;color:#57606a;margin-bottom:6px}
.c10-row{display:grid;grid-template-columns:84px 1fr 48px;align-items:center;gap:6px;font-size:12px;margin:2px 0}
.c10-row span:first-child{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.c10-track{background:#eef1f4;border-radius:4px;height:12px;overflow:hidden}
.c10-bar{background:#8fa7c9;height:12px}
.c10-top .c10-bar{background:#2563eb}
.c10-top{font-weight:700}
.c10-unsure .c10-label{color:#9a5b00;font-size:16px}
.c10-unsure{border-color:#e0a030;background:#fffaf0}
.c10-error{color:#b42318;background:#fef3f2;border:1px solid #fecdca;border-radius:6px;padding:8px;font-size:13px}
"""


def cards_html(predictions: Sequence[Result], thumbnails: Sequence[str | None] | None = None) -> str:
    """Self-contained HTML: one card per image with its thumbnail, label, confidence and a bar per class of the
    model (:func:`bars`)."""
    if not predictions:
        return "<p>Upload one or more images, or click an example.</p>"
    parts = [f"<style>{CARDS_CSS}</style><div class='c10-cards'>"]
    for i, p in enumerate(predictions):
        thumb = thumbnails[i] if thumbnails and i < len(thumbnails) else None
        name = html.escape(p.path)
        unsure = " c10-unsure" if p.ok and p.unsure else ""
        parts.append(f"<div class='c10-card{unsure}' data-label='{html.escape(p.label)}' "
                     f"data-unsure='{str(bool(p.ok and p.unsure)).lower()}'>")
        if thumb:
            parts.append(f"<img src='{thumb}' alt='{name}'>")
        parts.append(f"<div class='c10-name' title='{name}'>{name}</div>")
        if not p.ok:
            parts.append(f"<div class='c10-error'>Could not classify this file: {html.escape(p.error)}</div></div>")
            continue
        if p.unsure:
            parts.append(f"<div class='c10-label'>{html.escape(contract.unsure_text(len(p.classes)))}</div>"
                         f"<div class='c10-conf'>most like {html.escape(p.label)} · {p.confidence:.1%}</div>")
        else:
            parts.append(f"<div class='c10-label'>{html.escape(p.label)}</div>"
                         f"<div class='c10-conf'>confidence {p.confidence:.1%}</div>")
        for cls, prob, is_label in bars(p):
            top = " c10-top" if is_label else ""
            parts.append(f"<div class='c10-row{top}'><span title='{html.escape(cls)}'>{html.escape(cls)}</span>"
                         "<div class='c10-track'>"
                         f"<div class='c10-bar' style='width:{max(0.0, min(1.0, float(prob))) * 100:.1f}%'></div>"
                         f"</div><span>{float(prob):.1%}</span></div>")
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)
