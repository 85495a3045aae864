"""Hugging Face Space entry point (sdk: gradio): the CIFAR-10 classifier studio's Gradio app.

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
