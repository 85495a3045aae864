"""Gradio app: pick a model, upload images (or click an example), see each prediction with its bars.

Run it with ``cifar10 web --ui gradio`` (or ``python -m web.gradio_app``). One :class:`Classifier`
per model for the whole process (:class:`web.common.ClassifierCache`), shared by all visitors.
The API endpoint ``/classify`` (``gradio_client``) takes ``(model_name, [files])`` and returns the
cards HTML and the results as JSON: ``columns`` are the CLI's row columns for that model
(``cifar10.results.columns(model.labels)``: one probability column per class of the model), ``classes`` its
class names as shown, ``image_size`` its input size.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage pings from a local app

import gradio as gr  # noqa: E402

from cifar10.results import columns, result_row
from web.common import (TITLE, UPLOAD_SUFFIXES, ClassifierCache, cards_html, classify_sources, default_model, find_models,
                        intro, page_description, page_title, model_choice_label, png_data_uri, preview, sample_images, sample_label)

CLASSIFIERS = ClassifierCache(provider="cpu")  # one per model file, per process


def _path_of(item) -> str:
    """gr.File gives str paths (type='filepath'); be lenient with dicts / objects from older clients."""
    if isinstance(item, dict):
        return item.get("path") or item.get("name") or ""
    return str(getattr(item, "path", None) or getattr(item, "name", None) or item)


def make_classify(models_dir: str | os.PathLike | None = None):
    def classify(model_name: str | None, files: Sequence | None):
        models, _ = find_models(models_dir)
        by_name = {m.name: m for m in models}
        model = by_name.get(model_name or "") or default_model(models)
        if model is None:
            raise gr.Error("No models found: train and export one, or set CIFAR10_MODELS_DIR.")
        paths = [_path_of(f) for f in (files or [])]
        about = {"model": model.name, "test_accuracy": model.test_accuracy, "dataset": model.dataset,
                 "classes": list(model.labels), "image_size": model.image_size,
                 "columns": list(columns(model.labels))}
        if not paths:
            return cards_html([]), {**about, "results": []}
        try:
            classifier = CLASSIFIERS.get(model)
        except Exception as exc:
            raise gr.Error(f"Could not load the model {model.name}: {exc}") from None
        predictions = classify_sources(classifier, [(Path(p).name, p) for p in paths])
        thumbs = []
        for p, path in zip(predictions, paths):
            shown = preview(path) if p.ok else None
            thumbs.append(png_data_uri(shown) if shown is not None else None)
        bad = [p for p in predictions if not p.ok]
        if bad and len(bad) == len(predictions):
            gr.Warning(f"None of the {len(bad)} file(s) could be read as an image.")
        # The CLI's row layout (cifar10.results), as value lists under "columns": a row dict's "path" key
        # would make gradio_client take the row for a file to download.
        result = {**about, "results": [list(result_row(p).values()) for p in predictions]}
        return cards_html(predictions, thumbs), result

    return classify


def describe(models_dir: str | os.PathLike | None = None):
    """The page's text about the selected model: what it knows, its classes and input size."""
    def description(model_name: str | None) -> str:
        models, _ = find_models(models_dir)
        model = next((m for m in models if m.name == model_name), None) or default_model(models)
        return intro(model)

    return description


def build_demo(models_dir: str | os.PathLike | None = None, samples: Sequence[str | os.PathLike] | None = None) -> gr.Blocks:
    models, errors = find_models(models_dir)
    samples = [str(p) for p in (sample_images() if samples is None else samples)]
    best = default_model(models)
    classify = make_classify(models_dir)

    title, description = page_title(), page_description()
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}")
        if description:
            gr.Markdown(description)
        about = gr.Markdown(intro(best), elem_id="model-intro")
        if errors:
            gr.Markdown("\n".join(f"- skipped a model: {e}" for e in errors))
        with gr.Row():
            with gr.Column(scale=2, min_width=360):
                model = gr.Dropdown(choices=[(model_choice_label(m), m.name) for m in models],
                                    value=best.name if best else None, label="Model", interactive=True)
                files = gr.File(file_count="multiple", file_types=UPLOAD_SUFFIXES, type="filepath",
                                label="Upload one or several images")
                button = gr.Button("Classify", variant="primary")
                if samples:
                    examples = gr.Gallery(value=[(p, sample_label(p)) for p in samples], label="Examples: click one",
                                          columns=4, height="auto", object_fit="cover",
                                          allow_preview=False, interactive=False, show_label=True)
            with gr.Column(scale=3):
                cards = gr.HTML(cards_html([]), label="Predictions")
                with gr.Accordion("Results as JSON", open=False):
                    raw = gr.JSON(label="results")

        outputs = [cards, raw]
        button.click(classify, [model, files], outputs, api_name="classify")
        files.upload(classify, [model, files], outputs, api_name=False)
        model.change(classify, [model, files], outputs, api_name=False)
        model.change(describe(models_dir), [model], about, api_name=False)
        if samples:
            def pick(evt: gr.SelectData):
                return [samples[evt.index]]

            examples.select(pick, None, files, api_name=False).then(classify, [model, files], outputs, api_name=False)
    return demo


def launch(port: int | None = None, host: str = "127.0.0.1", models_dir: str | os.PathLike | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False):
    demo = build_demo(models_dir)
    allowed = [str(Path(p).parent) for p in sample_images()[:1]]
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
                allowed_paths=allowed, show_error=True, footer_links=["api"])
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=TITLE + " (Gradio)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--models-dir")
    args = parser.parse_args(argv)
    launch(args.port, args.host, args.models_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
