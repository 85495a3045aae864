"""Streamlit app: pick a model, upload images (or click an example), see each prediction with its bars.

Run it with ``cifar10 web --ui streamlit`` (or ``streamlit run web/streamlit_app.py``). Models come
from ``$CIFAR10_MODELS_DIR`` / ``exported_models`` (and the user's models folder); each model is
loaded once per server process (``st.cache_resource``) and shared by every browser session.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run web/streamlit_app.py` puts web/ itself on sys.path, not the folder holding web/ and
# cifar10/: add that folder first, so a Space (or any copy) runs on its own files.
_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "cifar10").is_dir() and str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import pandas as pd
import streamlit as st

from cifar10 import contract
from cifar10.inference import Classifier
from cifar10.registry import ModelInfo, discover_models
from cifar10.results import Result
from web.common import (UPLOAD_EXTENSIONS, bars, classify_sources, default_model, intro,
                        model_choice_label, model_dirs, page_description, page_title, preview, sample_images, sample_label)

EXAMPLES_KEY = "examples"


@st.cache_resource(show_spinner="Loading the model...")
def get_classifier(onnx_path: str, mtime_ns: int) -> Classifier:
    """One onnxruntime session per model file (and version of it) for the whole server process."""
    return Classifier(onnx_path, provider="cpu")


@st.cache_resource(ttl=60, show_spinner=False)
def list_models(dirs: tuple[str, ...]) -> tuple[list[ModelInfo], list[str]]:
    """Rescanned at most once a minute, so a newly exported model shows up without a restart."""
    return discover_models(dirs)


def classifier_for(model: ModelInfo) -> Classifier:
    path = Path(model.onnx_path)
    return get_classifier(str(path), path.stat().st_mtime_ns)


def show_prediction(pred: Result, source) -> None:
    with st.container(border=True):
        if not pred.ok:
            st.error(f"**{pred.path}**: could not classify this file: {pred.error}")
            return
        left, middle, right = st.columns([2, 2, 3])
        with left:
            shown = preview(source)
            st.image(shown if shown is not None else pred.image, caption=pred.path, width="stretch")
        with middle:
            if pred.unsure:
                st.warning(f"**{contract.unsure_text(len(pred.classes))}**")
                st.metric(f"Most like: {pred.label}", f"{pred.confidence:.1%}")
            else:
                st.markdown(f"### {pred.label}")
                st.metric("Confidence", f"{pred.confidence:.1%}")
            side = pred.image.shape[0]
            st.image(pred.image, caption=f"what the model sees ({side}x{side})", width=96)
        with right:
            st.altair_chart(probability_chart(pred), width="stretch")


def probability_chart(pred):
    """Horizontal bars on a fixed 0-100 % axis (st.bar_chart scales the axis to the largest bar, which made
    "dog 53 %" look certain), in the model's class order (web.common.bars: every class up to 12, else the top
    10 and "other"). ``pred``: a Result (its classes), or bare probabilities in CIFAR-10's class order."""
    import altair as alt

    if not isinstance(pred, Result):
        pred = Result.from_probabilities("", pred)
    rows = bars(pred)
    names = [name for name, _, _ in rows]
    frame = pd.DataFrame({"class": names, "probability": [p for _, p, _ in rows]})
    return (alt.Chart(frame, height=max(120, 30 * len(rows)))
            .mark_bar()
            .encode(x=alt.X("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1], clamp=True),
                            axis=alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1])),
                    y=alt.Y("class:N", title=None, sort=names),
                    tooltip=["class", alt.Tooltip("probability:Q", format=".1%")]))


def main() -> None:
    st.set_page_config(page_title=page_title(), page_icon=":frame_with_picture:", layout="wide")
    st.title(page_title())
    if page_description():
        st.write(page_description())
    models, errors = list_models(tuple(str(d) for d in model_dirs()))
    with st.sidebar:
        st.header("Model")
        if not models:
            st.error("No models found. Train and export one (`cifar10 train`), or put a `<name>.onnx` + "
                     "`<name>.json` pair in `exported_models/` (or set `CIFAR10_MODELS_DIR`).")
        else:
            best = default_model(models)
            names = [m.name for m in models]
            by_name = {m.name: m for m in models}
            chosen = st.selectbox("Model", names, index=names.index(best.name), key="model",
                                  format_func=lambda n: model_choice_label(by_name[n]))
            model = by_name[chosen]
            if model.test_accuracy is not None:
                st.metric("Test accuracy", f"{model.test_accuracy:.1%}",
                          help=(f"On the {model.dataset} test images (from the model card)"
                                if model.dataset != contract.CIFAR10_DATASET
                                else "On the 10,000 CIFAR-10 test images (from the model card)"))
            st.caption(f"Knows {model.knows} at {model.image_size}x{model.image_size} px")
            if model.summary:
                st.caption(model.summary)
        for error in errors:
            st.warning(f"Skipped a model: {error}")
    st.caption(intro(model if models else None))
    if not models:
        return

    uploads = st.file_uploader("Upload one or several images", type=UPLOAD_EXTENSIONS,
                               accept_multiple_files=True, key="uploads")

    samples = sample_images()
    if samples:
        st.write("Or click an example:")
        columns = st.columns(min(len(samples), 5))
        for i, path in enumerate(samples):
            with columns[i % len(columns)]:
                st.image(preview(path, 96), width=96)
                if st.button(sample_label(path), key=f"sample_{path.stem}", width="stretch"):
                    st.session_state[EXAMPLES_KEY] = [str(path)]
    else:
        st.caption("(No example images: resources/samples is empty.)")

    sources: list[tuple[str, object]] = []
    if uploads:
        st.session_state.pop(EXAMPLES_KEY, None)  # a new upload replaces the clicked example
        sources = [(u.name, u.getvalue()) for u in uploads]
    else:
        sources = [(Path(p).name, p) for p in st.session_state.get(EXAMPLES_KEY, [])]
    if not sources:
        st.info("Upload one or more images, or click an example, to see the predictions.")
        return

    try:
        classifier = classifier_for(model)
    except Exception as exc:  # a model that passed discovery but cannot start: say so, no traceback
        st.error(f"Could not load the model {model.name}: {exc}")
        return
    predictions = classify_sources(classifier, sources)
    ok = [p for p in predictions if p.ok]
    st.subheader(f"{len(ok)} of {len(predictions)} image(s) classified with {model.name}")
    for pred, (_, source) in zip(predictions, sources):
        show_prediction(pred, source)


main()
