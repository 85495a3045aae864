"""The static Space with a contract-v3 model (3 non-CIFAR classes, 64 px) next to a v1 CIFAR-10 model, in
headless Chromium: models.json says what each model knows, the page decodes uploads at the selected model's
input size, names the result and its bars with the model's classes, reports a corrupt file, describes the
model; switching to the v1 model brings CIFAR-10's ten classes at 32 px back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10.inference import Classifier
from cifar10.preprocess import load_image
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED, write_model
from web.space import export_space
from web_browser import js, require_chromium
from web_fixtures import sample_dir

CLASSES = ("gatto", "cane", "cavallo")          # folder names, e.g. from `cifar10 train --data` (no classes.json)
SIZE = 64


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("models")
    write_model(models, "pets", class_names=CLASSES, image_size=SIZE, dataset="my-pets", test_accuracy=0.9)
    write_model(models, "colour_a", test_accuracy=0.5)
    out = tmp_path_factory.mktemp("space") / "static"
    export_space("static", out, models_dir=models, samples_dir=sample_dir(tmp_path_factory.mktemp("samples")))
    return out


def test_manifest_and_readme_say_what_each_model_knows(space):
    manifest = json.loads((space / "models.json").read_text(encoding="utf-8"))
    entries = {m["name"]: m for m in manifest["models"]}
    pets, cifar = entries["pets"], entries["colour_a"]
    assert pets["class_names"] == pets["labels"] == list(CLASSES) and pets["image_size"] == SIZE
    assert pets["dataset"] == "my-pets" and pets["knows"] == "my-pets · 3 classes"
    assert cifar["image_size"] == 32 and len(cifar["labels"]) == 10 and cifar["dataset"] == "CIFAR-10"
    readme = (space / "README.md").read_text(encoding="utf-8")
    assert "| pets | my-pets · 3 classes: gatto, cane, cavallo | 64x64 |" in readme
    assert "the classes each model knows" in readme


@pytest.fixture(scope="module")
def page(space):
    require_chromium()
    from web.testing import chromium, serve_directory

    with serve_directory(space) as base, chromium() as driver:
        driver.set_script_timeout(120)
        driver.get(base + "?model=pets")
        assert js(driver, "window.cifar10.ready") is True
        yield driver


def _wait_cards(driver, count, previous=None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d):
        cards = d.find_elements(By.CSS_SELECTOR, "#results .card")
        return len(cards) == count and (previous is None or cards[0].id != previous) and cards
    return WebDriverWait(driver, 60).until(done)


def test_upload_labels_bars_and_input_size_follow_the_model(page, space, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    files = [solid(tmp_path / "r.jpg", RED, size=(160, 120), quality=95), solid(tmp_path / "g.png", GREEN, size=(96, 96)),
             solid(tmp_path / "b.png", BLUE, size=(128, 100))]
    broken = tmp_path / "corrupt.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    intro = page.find_element(By.ID, "intro").text
    assert "my-pets" in intro and "gatto, cane, cavallo" in intro and "64×64" in intro and "CIFAR-10" not in intro
    assert "my-pets · 3 classes" in page.find_element(By.ID, "model-info").text
    page.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in (*files, broken)))
    cards = _wait_cards(page, 4)
    onnx = space / "models" / "pets.onnx"
    python = Classifier(onnx, provider="cpu")
    for card, path in zip(cards, files):
        expected = python.predict_image(path)
        assert card.get_attribute("data-label") == CLASSES[int(np.argmax(expected))]
        bars = card.find_elements(By.CSS_SELECTOR, ".bar-row")
        assert [b.get_attribute("data-cls") for b in bars] == list(CLASSES)
        np.testing.assert_allclose([float(b.get_attribute("data-p")) for b in bars], expected, atol=1e-4)
    assert [c.get_attribute("data-label") for c in cards[:3]] == list(CLASSES)  # red, green, blue
    assert not cards[3].get_attribute("data-label") and "Could not classify" in cards[3].text
    assert "3 of 4 image(s) classified with pets" in page.find_element(By.ID, "status").text

    # The decoded model input is at the model's size, byte for byte Python's for a PNG.
    (space / "inputs").mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)).save(space / "inputs" / "noise.png")
    ours = js(page, "window.cifar10.preprocessUrl(arguments[0])", "inputs/noise.png")
    assert not isinstance(ours, dict), ours
    assert len(ours) == SIZE * SIZE * 3
    assert np.array_equal(np.asarray(ours, np.uint8).reshape(SIZE, SIZE, 3), load_image(space / "inputs" / "noise.png", SIZE))
    assert len(js(page, "window.cifar10.preprocessUrl(arguments[0], 'colour_a')", "inputs/noise.png")) == 32 * 32 * 3

    # The heatmap (occlusion: the fixture has no CAM) lies on the model's 64x64 input.
    page.find_element(By.ID, "heatmap").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, 60).until(lambda d: d.find_element(By.ID, "results").get_attribute("data-heatmaps") == "done")
    row, col = map(int, cards[0].get_attribute("data-heat-peak").split(","))
    assert 0 <= row < SIZE and 0 <= col < SIZE
    page.find_element(By.ID, "heatmap").click()

    # The v1 CIFAR-10 model: ten bars, CIFAR-10 labels, the intro back to CIFAR-10 at 32x32.
    Select(page.find_element(By.ID, "model")).select_by_value("colour_a")
    cards = _wait_cards(page, 4, previous=cards[0].id)
    assert cards[0].get_attribute("data-label") == "airplane"
    assert len(cards[0].find_elements(By.CSS_SELECTOR, ".bar-row")) == 10
    intro = page.find_element(By.ID, "intro").text
    assert "CIFAR-10" in intro and "airplane" in intro and "32×32" in intro
