"""The Gradio app for real: `cifar10 web --ui gradio` on a free port, called through gradio_client,
then driven in headless Chromium (upload, example click, screenshot); and the exported Gradio Space's
app.py, run from its own folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10.contract import CLASS_NAMES
from cifar10.inference import Classifier
from onnx_fixtures import MAPPING_B, RED, expected_label, write_model
from web.testing import free_port, wait_for_http
from web_browser import keep_screenshot, require_chromium
from web_fixtures import add_shipped_models, sample_dir, write_colour_models

V3_CLASSES, V3_LABELS = ("rosso", "verde", "blu"), ("red thing", "green thing", "blue/other")
ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("gradio")
    models = write_colour_models(root / "models")
    real = add_shipped_models(models)  # trained models, when exported, make the screenshot meaningful
    # A contract-v3 model of 3 non-CIFAR classes at 64 px (lowest accuracy: never the default).
    write_model(models, "colours", class_names=V3_CLASSES, display_names=V3_LABELS, image_size=64,
                dataset="colours", test_accuracy=0.2)
    samples = sample_dir(root / "samples")
    red = root / "red.png"
    Image.new("RGB", (640, 480), RED).save(red)
    broken = root / "broken.webp"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WEBPnope")
    return {"root": root, "models": models, "samples": samples, "red": red, "broken": broken, "real": real}


def _start(cmd, cwd, extra_env) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **ENV, **extra_env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of the process this test started, nothing else
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.stdout.read().decode(errors="replace") if proc.stdout else ""


@pytest.fixture(scope="module")
def server(setup):
    port = free_port()
    proc = _start([sys.executable, "-m", "cifar10_cli", "web", "--ui", "gradio", "--port", str(port),
                   "--models-dir", str(setup["models"])], Path.cwd(), {"CIFAR10_SAMPLES_DIR": str(setup["samples"])})
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, timeout=120)
        yield url
    finally:
        output = _stop(proc)
        assert "Traceback" not in output, output


def test_gradio_client_classifies_and_reports_errors(server, setup):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    files = [handle_file(str(setup["red"])), handle_file(str(setup["broken"]))]
    cards, result = client.predict("colour_a", files, api_name="/classify")
    assert result["model"] == "colour_a" and result["test_accuracy"] == pytest.approx(0.61)
    good, bad = (dict(zip(result["columns"], row)) for row in result["results"])
    assert good["label"] == expected_label(RED) and good["confidence"] > 0.5
    assert sum(good[name] for name in CLASS_NAMES) == pytest.approx(1, abs=1e-4)  # the CLI's JSON row layout
    assert not bad["label"] and "not an image" in bad["error"]
    assert "Could not classify this file" in cards and cards.count("class='c10-row") == 10

    _, result_b = client.predict("colour_b", files[:1], api_name="/classify")
    label_b = result_b["results"][0][result_b["columns"].index("label")]
    assert label_b == expected_label(RED, MAPPING_B) != good["label"]

    cards, result = client.predict("colour_a", [], api_name="/classify")  # nothing uploaded: no error
    assert result["results"] == [] and "Upload" in cards


def test_gradio_api_follows_a_v3_models_classes_and_size(server, setup):
    from gradio_client import Client, handle_file

    from cifar10.results import columns
    from web.gradio_app import describe

    client = Client(server, verbose=False)
    cards, result = client.predict("colours", [handle_file(str(setup["red"])), handle_file(str(setup["broken"]))],
                                   api_name="/classify")
    assert result["columns"] == list(columns(V3_LABELS)) and result["classes"] == list(V3_LABELS)
    assert result["image_size"] == 64 and result["dataset"] == "colours"
    good, bad = (dict(zip(result["columns"], row)) for row in result["results"])
    assert good["label"] == "red thing" and good["red thing"] > 0.5 and "airplane" not in good
    assert bad["error"] and bad["red thing"] is None
    assert cards.count("class='c10-row") == 3 and "blue/other" in cards
    _, empty = client.predict("colours", [], api_name="/classify")
    assert empty["columns"] == list(columns(V3_LABELS)) and empty["results"] == []
    text = describe(setup["models"])("colours")
    assert "red thing, green thing, blue/other" in text and "64x64" in text and "CIFAR-10" not in text
    assert "10 classes" in describe(setup["models"])("colour_a")


def test_gradio_in_browser_upload_example_screenshot(server, setup, tmp_path):
    require_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from web.common import default_model, find_models
    from web.testing import chromium, full_page_screenshot

    model = default_model(find_models(setup["models"])[0])
    cat = sorted(setup["samples"].glob("cat*.png"))[0]
    expected = [CLASS_NAMES[int(np.argmax(Classifier(model).predict_image(p)))] for p in (cat, setup["red"])]
    with chromium(width=1280, height=1000) as driver:
        driver.get(server)
        wait = WebDriverWait(driver, 90)
        upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
        upload.send_keys("\n".join(str(p) for p in (cat, setup["red"], setup["broken"])))
        cards = wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".c10-card")) == 3
                           and d.find_elements(By.CSS_SELECTOR, ".c10-card"))
        assert [c.get_attribute("data-label") for c in cards[:2]] == expected
        assert "Could not classify this file" in cards[2].text

        # Click the first example: the cards are replaced by that one image's prediction.
        thumbs = driver.find_elements(By.CSS_SELECTOR, "button.thumbnail-item")
        assert thumbs, "example gallery not found"
        thumbs[0].click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".c10-card")) == 1)
        first = sorted(setup["samples"].glob("*.png"))[0]
        card = driver.find_element(By.CSS_SELECTOR, ".c10-card")
        assert card.get_attribute("data-label") == CLASS_NAMES[int(np.argmax(Classifier(model).predict_image(first)))]

        # The screenshot for the docs: a fresh page, a few uploads side by side (gr.File adds to its list).
        driver.refresh()
        upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
        shown = sorted(setup["samples"].glob("*.png"))[:3] + [setup["broken"]]
        upload.send_keys("\n".join(str(p) for p in shown))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".c10-card")) == len(shown))
        time.sleep(0.5)
        shot = full_page_screenshot(driver, tmp_path / "gradio.png", max_height=1600)
    keep_screenshot(shot, "gradio_screenshot.png")


def test_exported_gradio_space_app_runs_standalone(setup, tmp_path):
    from gradio_client import Client, handle_file

    from web.space import export_space

    out = tmp_path / "space"
    export_space("gradio", out, models_dir=setup["models"], samples_dir=setup["samples"])
    port = free_port()
    proc = _start([sys.executable, "app.py"], out, {"GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
                                                      "CIFAR10_MODELS_DIR": "", "CIFAR10_SAMPLES_DIR": ""})
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, timeout=120)
        _, result = Client(url, verbose=False).predict("colour_b", [handle_file(str(setup["red"]))],
                                                       api_name="/classify")
        assert result["results"][0][result["columns"].index("label")] == expected_label(RED, MAPPING_B)
    finally:
        output = _stop(proc)
    assert "Traceback" not in output, output
