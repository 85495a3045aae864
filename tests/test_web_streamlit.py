"""The Streamlit app: AppTest for the interactions, then real `streamlit run` servers on free ports.

1. ``streamlit.testing.v1.AppTest``: model picker with test accuracy, example click, upload of good
   and broken files (an error message, never a traceback), model switch.
2. ``cifar10 web --ui streamlit`` for real: the health endpoint, then (with Debian chromium) a
   browser uploads two files and the page shows the prediction; screenshot.
3. The exported Docker Space: its Dockerfile's ENTRYPOINT command, run from the Space folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnx_fixtures import MAPPING_B, RED, expected_label
from web.testing import free_port, wait_for_http
from web_browser import keep_screenshot, require_chromium
from web_fixtures import add_shipped_models, png_bytes, sample_dir, write_colour_models

APP = Path(__file__).resolve().parents[1] / "web" / "streamlit_app.py"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("streamlit")
    models = write_colour_models(root / "models")
    return {"CIFAR10_MODELS_DIR": str(models), "CIFAR10_SAMPLES_DIR": str(sample_dir(root / "samples")),
            "root": root}


def test_apptest_pick_model_click_example_upload(env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CIFAR10_MODELS_DIR", env["CIFAR10_MODELS_DIR"])
    monkeypatch.setenv("CIFAR10_SAMPLES_DIR", env["CIFAR10_SAMPLES_DIR"])
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    picker = at.selectbox(key="model")
    assert picker.value == "colour_a"  # best test accuracy first
    assert picker.options == ["colour_a — CIFAR-10 · 10 classes — 61.0% test accuracy",
                              "colour_b — CIFAR-10 · 10 classes — 42.0% test accuracy"]
    assert any(m.value == "61.0%" for m in at.sidebar.metric)
    assert "click an example" in at.info[0].value

    at.button(key="sample_cat").click().run()
    assert not at.exception
    assert any(m.value.startswith("### ") for m in at.markdown)
    assert any(m.label == "Confidence" and m.value.endswith("%") for m in at.metric)

    red = png_bytes(np.full((48, 64, 3), RED, np.uint8))
    at.file_uploader(key="uploads").set_value([("red.png", red, "image/png"),
                                              ("broken.jpg", b"\xff\xd8\xff garbage", "image/jpeg")]).run()
    assert not at.exception
    assert f"### {expected_label(RED)}" in [m.value for m in at.markdown]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "broken.jpg" in errors[0] and "could not classify" in errors[0]
    assert any("1 of 2 image(s) classified with colour_a" in s.value for s in at.subheader)

    at.selectbox(key="model").set_value("colour_b").run()
    assert f"### {expected_label(RED, MAPPING_B)}" in [m.value for m in at.markdown]


def test_apptest_v3_model_of_other_classes_and_size(tmp_path, monkeypatch):
    """A contract-v3 model (3 classes, 64 px): the page describes it, the bars and the label are its classes, the
    model input is 64x64, a broken upload is an error row; switching to a v1 model brings CIFAR-10 back."""
    from streamlit.testing.v1 import AppTest

    from onnx_fixtures import write_model

    models = write_colour_models(tmp_path / "models")
    write_model(models, "colours", class_names=("rosso", "verde", "blu"),
                display_names=("red thing", "green thing", "blue/other"), image_size=64, dataset="colours",
                test_accuracy=0.9)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("CIFAR10_SAMPLES_DIR", str(tmp_path / "none"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception and at.selectbox(key="model").value == "colours"
    captions = " ".join(c.value for c in at.caption)
    assert "red thing, green thing, blue/other" in captions and "64x64 pixels" in captions
    assert "Knows colours · 3 classes at 64x64 px" in captions
    red = png_bytes(np.full((48, 64, 3), RED, np.uint8))
    at.file_uploader(key="uploads").set_value([("red.png", red, "image/png"),
                                              ("broken.jpg", b"\xff\xd8\xff garbage", "image/jpeg")]).run()
    assert not at.exception
    assert "### red thing" in [m.value for m in at.markdown]
    assert len(at.error) == 1 and "broken.jpg" in at.error[0].value
    (chart,) = at.get("vega_lite_chart")  # the bars, sorted in the model's class order
    assert '["red thing", "green thing", "blue/other"]' in chart.proto.spec and "airplane" not in chart.proto.spec
    captions = [i.caption for image in at.get("image") for i in image.proto.imgs]
    assert "what the model sees (64x64)" in captions
    at.selectbox(key="model").set_value("colour_a").run()
    assert f"### {expected_label(RED)}" in [m.value for m in at.markdown]
    assert any("airplane" in c.value for c in at.caption)


def test_apptest_no_models(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("CIFAR10_SAMPLES_DIR", str(tmp_path / "none"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception and "No models found" in at.sidebar.error[0].value


def _start(cmd: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    full_env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
                **{k: v for k, v in env.items() if isinstance(v, str)}}
    return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group only (the CLI runs streamlit as a child)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.stdout.read().decode(errors="replace") if proc.stdout else ""


def test_cifar10_web_streamlit_server_and_browser(env, tmp_path):
    # The test models plus the real exported ones, if any: the screenshot then shows a trained network.
    models = tmp_path / "models"
    for p in Path(env["CIFAR10_MODELS_DIR"]).iterdir():
        (models / p.name).parent.mkdir(exist_ok=True)
        (models / p.name).write_bytes(p.read_bytes())
    add_shipped_models(models)
    port = free_port()
    cli = [sys.executable, "-m", "cifar10_cli", "web", "--ui", "streamlit", "--port", str(port),
           "--models-dir", str(models)]
    proc = _start(cli, Path.cwd(), env)
    try:
        base = f"http://127.0.0.1:{port}/"
        assert wait_for_http(base + "_stcore/health", timeout=90) == b"ok"
        assert b"<div id=\"root\">" in wait_for_http(base)
        require_chromium()
        _browser_upload(base, env, models, tmp_path)
    finally:
        output = _stop(proc)
    assert "Traceback" not in output, output


def _browser_upload(base: str, env: dict, models: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from web.testing import chromium, full_page_screenshot

    photo = tmp_path / "red_photo.jpg"
    Image.new("RGB", (1600, 1200), RED).save(photo, quality=92)
    broken = tmp_path / "not_an_image.png"
    broken.write_text("hello")
    cat = sorted(Path(env["CIFAR10_SAMPLES_DIR"]).glob("cat*.png"))[0]
    from cifar10.inference import Classifier
    from web.common import default_model, find_models

    model = default_model(find_models(models)[0])
    from cifar10.preprocess import load_image

    outputs = Classifier(model).predict_all(np.stack([load_image(p) for p in (cat, photo)]))
    # An "unsure" prediction (contract v2) shows a warning, not a class heading.
    expected = [int(p.argmax()) for p, unsure in zip(outputs.probabilities, outputs.unsure) if not unsure]
    from cifar10.contract import CLASS_NAMES
    with chromium(width=1280, height=1000) as driver:
        driver.get(base)
        wait = WebDriverWait(driver, 60)
        upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
        upload.send_keys("\n".join(str(p) for p in (cat, photo, broken)))
        wait.until(lambda d: "could not classify this file" in d.find_element(By.TAG_NAME, "body").text)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert f"2 of 3 image(s) classified with {model.name}" in body
        headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "h3")]
        assert [CLASS_NAMES[i] for i in expected] == [h for h in headings if h in CLASS_NAMES]
        assert "could not classify this file" in body
        assert "Traceback" not in body
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart'] canvas, "
                                                                   "[data-testid='stVegaLiteChart'] svg")) >= 2)
        time.sleep(1.0)  # charts finish drawing
        shot = full_page_screenshot(driver, tmp_path / "streamlit.png", max_height=1800)
    keep_screenshot(shot, "streamlit_screenshot.png")


def test_exported_docker_space_entrypoint_runs(env, tmp_path):
    """What the Docker Space runs (its ENTRYPOINT), from the exported folder, with only its own files."""
    from web.space import export_space

    out = tmp_path / "space"
    export_space("streamlit", out, models_dir=env["CIFAR10_MODELS_DIR"], samples_dir=env["CIFAR10_SAMPLES_DIR"])
    dockerfile = (out / "Dockerfile").read_text()
    entry = dockerfile.split("ENTRYPOINT", 1)[1].replace("\\\n", " ")
    cmd = json.loads(entry.strip())
    assert cmd[:3] == ["streamlit", "run", "web/streamlit_app.py"]
    port = free_port()
    cmd = [sys.executable, "-m", *cmd]
    cmd = [a.replace("8501", str(port)).replace("0.0.0.0", "127.0.0.1") for a in cmd]
    space_env = {"CIFAR10_MODELS_DIR": "", "CIFAR10_SAMPLES_DIR": "", "PYTHONSAFEPATH": "1"}
    proc = _start(cmd, out, space_env)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90) == b"ok"
    finally:
        output = _stop(proc)
    assert "Traceback" not in output, output
    # And the script itself, on the Space's own copies of cifar10/ and web/ (not this checkout's).
    check = ("import json, sys; from streamlit.testing.v1 import AppTest;"
             "at = AppTest.from_file(sys.argv[1], default_timeout=60); at.run();"
             "import cifar10, web.common;"
             "print(json.dumps([cifar10.__file__, web.common.__file__, [str(e.value) for e in at.exception],"
             " at.selectbox(key='model').options, [b.label for b in at.button]]))")
    done = subprocess.run([sys.executable, "-c", check, str(out / "web" / "streamlit_app.py")], cwd=out,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CIFAR10_MODELS_DIR": "", "CIFAR10_SAMPLES_DIR": "", "PYTHONSAFEPATH": "1"})
    assert done.returncode == 0, done.stderr
    core, common, exceptions, options, buttons = json.loads(done.stdout.strip().splitlines()[-1])
    assert not exceptions
    assert Path(core).resolve().is_relative_to(out.resolve()) and Path(common).resolve().is_relative_to(out.resolve())
    assert options == ["colour_a — CIFAR-10 · 10 classes — 61.0% test accuracy",
                       "colour_b — CIFAR-10 · 10 classes — 42.0% test accuracy"]
    assert "cat" in buttons


def test_probability_bars_use_a_fixed_0_to_100_percent_axis():
    """Issue 12: "dog 53 %" must not fill the chart; the axis is 0..1 whatever the largest bar."""
    sys.path.insert(0, str(APP.parent.parent))
    import importlib

    streamlit_app = importlib.import_module("web.streamlit_app")
    spec = streamlit_app.probability_chart(np.array([0.53, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01, 0.01, 0.01])).to_dict()
    x = spec["encoding"]["x"]
    assert x["scale"]["domain"] == [0, 1] and x["axis"]["format"] == "%"
    assert spec["encoding"]["y"]["sort"][0] == "airplane"


def test_apptest_unsure_state_with_a_v2_model(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from onnx_fixtures import write_v2_model

    models = tmp_path / "models"
    write_v2_model(models, "cam_colour", threshold=-3.0, test_accuracy=0.9)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    samples = tmp_path / "samples"
    samples.mkdir()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(samples / "cat_0.png")  # flat grey: nothing like a class
    monkeypatch.setenv("CIFAR10_SAMPLES_DIR", str(samples))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.button(key="sample_cat_0").click().run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("unsure: may be none of the 10 classes" in w for w in warnings), warnings
    assert any(m.label.startswith("Most like:") for m in at.metric)
