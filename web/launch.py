"""``cifar10 web --ui streamlit|gradio``: start one of the web apps on localhost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cifar10.paths import MODELS_DIR_ENV

DEFAULT_PORTS = {"streamlit": 8501, "gradio": 7860}
STREAMLIT_SCRIPT = Path(__file__).resolve().with_name("streamlit_app.py")


def streamlit_command(port: int, host: str = "127.0.0.1", script: Path = STREAMLIT_SCRIPT) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", "true",  # no e-mail prompt, no browser launch: the URL is printed
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]


def run_web(ui: str, port: int | None = None, host: str = "127.0.0.1", models_dir: str | os.PathLike | None = None) -> int:
    if ui not in DEFAULT_PORTS:
        raise ValueError(f"unknown ui '{ui}': use streamlit or gradio")
    port = port or DEFAULT_PORTS[ui]
    if models_dir:
        os.environ[MODELS_DIR_ENV] = str(Path(models_dir).resolve())
    if ui == "streamlit":
        print(f"Streamlit app on http://{host}:{port} (Ctrl+C stops it)", flush=True)
        try:
            return subprocess.call(streamlit_command(port, host))
        except KeyboardInterrupt:
            return 0
    from web.gradio_app import launch

    print(f"Gradio app on http://{host}:{port} (Ctrl+C stops it)", flush=True)
    launch(port, host)
    return 0
