"""The static Hugging Face Space: exported, served on localhost, driven in headless Debian Chromium.

The page must predict what the Python core predicts (`cifar10 classify` / Classifier + load_image):
the 32x32 model input is compared byte for byte (PNG) or within 1-2 levels (JPEG, whose DCT-scaled
draft decode Pillow uses is approximated by an area average), and the labels must agree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10.inference import Classifier
from cifar10.preprocess import load_image
from onnx_fixtures import MAPPING_B, expected_label, write_model
from web.space import ORT_FILES, export_space
from web_browser import js, keep_screenshot, require_chromium
from web_fixtures import (add_shipped_models, build_pixel_model, cifar_split, have_cifar, jpeg_with_orientation, sample_dir,
                          write_pngs, write_upscaled)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, request) -> Path:
    directory = tmp_path_factory.mktemp("models")
    write_model(directory, "colour_a", test_accuracy=0.5)
    write_model(directory, "colour_b", test_accuracy=0.4, mapping=MAPPING_B)
    add_shipped_models(directory)  # trained models, once exported, for the screenshot
    if have_cifar():  # cached between runs: fitting takes a second or two
        cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
        folder = Path(cache.mkdir("cifar10-web-pixel-model")) if cache else tmp_path_factory.mktemp("pixel")
        cached = build_pixel_model(folder)
        for suffix in (".onnx", ".json"):
            (directory / f"pixel_ridge{suffix}").write_bytes(cached.with_suffix(suffix).read_bytes())
    return directory


@pytest.fixture(scope="module")
def space(tmp_path_factory, models_dir) -> Path:
    out = tmp_path_factory.mktemp("space") / "static"
    export_space("static", out, models_dir=models_dir, samples_dir=sample_dir(tmp_path_factory.mktemp("samples")))
    return out


def test_export_static_layout(space: Path, models_dir: Path):
    readme = (space / "README.md").read_text()
    front = readme.split("---")[1]
    for line in ("sdk: static", "app_file: index.html", "colorFrom: indigo", "colorTo: blue", "title: "):
        assert line in front
    assert "emoji:" in front
    html = (space / "index.html").read_text()
    assert '<script src="ort/ort.wasm.min.js">' in html
    import re

    sources = re.findall(r'<script[^>]*src="([^"]+)"', html) + re.findall(r'<link[^>]*href="([^"]+)"', html)
    assert sources and all("//" not in s for s in sources), f"everything must be served by the Space: {sources}"
    assert "://" not in (space / "app.js").read_text().replace("https://onnxruntime.ai", "")
    for name in ORT_FILES:
        assert (space / "ort" / name).stat().st_size > 10_000
    manifest = json.loads((space / "models.json").read_text())
    names = [m["name"] for m in manifest["models"]]
    assert {"colour_a", "colour_b"} <= set(names)
    for m in manifest["models"]:
        assert (space / m["file"]).is_file() and (space / m["card"]).is_file()
        assert json.loads((space / m["card"]).read_text())["name"] == m["name"]
    assert manifest["samples"] and all((space / s).is_file() for s in manifest["samples"])
    assert "*.wasm filter=lfs" in (space / ".gitattributes").read_text()
    assert "numThreads = 1" in (space / "app.js").read_text()


@pytest.fixture(scope="module")
def page(space):
    require_chromium()
    from web.testing import chromium, serve_directory

    with serve_directory(space) as base, chromium() as driver:
        driver.set_script_timeout(120)
        driver.get(base + "?model=colour_a")
        ready = js(driver, "window.cifar10.ready")
        assert ready is True, ready
        driver.base_url = base
        yield driver


def _cards(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#results .card")


def _wait_cards(driver, count: int, previous=None, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d):
        cards = _cards(d)
        return len(cards) == count and (previous is None or cards[0].id != previous) and cards
    return WebDriverWait(driver, timeout).until(done)


def test_upload_shows_labels_bars_and_errors(page, space, tmp_path):
    from selenium.webdriver.common.by import By

    red = tmp_path / "red.png"
    Image.new("RGB", (300, 200), (220, 30, 30)).save(red)
    cat = space / "samples" / "cat.png"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    page.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in (red, cat, broken)))
    cards = _wait_cards(page, 3)

    assert cards[0].get_attribute("data-label") == expected_label((220, 30, 30)) == "airplane"
    python = Classifier(space / "models" / "colour_a.onnx").predict_image(cat)
    assert cards[1].get_attribute("data-label") == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                    "horse", "ship", "truck"][int(np.argmax(python))]
    bars = cards[1].find_elements(By.CSS_SELECTOR, ".bar-row")
    assert len(bars) == 10
    shown = np.array([float(b.get_attribute("data-p")) for b in bars])
    assert shown.sum() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(shown, python, atol=1e-4)  # onnxruntime-web == onnxruntime
    assert "%" in cards[1].find_element(By.CSS_SELECTOR, ".confidence").text
    assert not cards[2].get_attribute("data-label")
    assert "Could not classify this file" in cards[2].find_element(By.CSS_SELECTOR, ".error").text
    assert "2 of 3 image(s) classified" in page.find_element(By.ID, "status").text

    # Switching the model re-runs the same uploads with the other model.
    from selenium.webdriver.support.ui import Select

    first = cards[0].id
    Select(page.find_element(By.ID, "model")).select_by_value("colour_b")
    cards = _wait_cards(page, 3, previous=first)
    assert cards[0].get_attribute("data-label") == expected_label((220, 30, 30), MAPPING_B) == "horse"


def test_click_example_and_screenshot(page, space, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from web.testing import full_page_screenshot

    manifest = json.loads((space / "models.json").read_text())
    trained = [m["name"] for m in manifest["models"] if m["name"] not in ("colour_a", "colour_b", "pixel_ridge")]
    model = (trained or ["pixel_ridge" if (space / "models" / "pixel_ridge.onnx").is_file() else "colour_a"])[0]
    Select(page.find_element(By.ID, "model")).select_by_value(model)
    before = _cards(page)[0].id if _cards(page) else None
    examples = page.find_elements(By.CSS_SELECTOR, "#examples .example")
    assert examples, "the example images are missing"
    examples[3].click()
    cards = _wait_cards(page, 1, previous=before)
    assert cards[0].get_attribute("data-name") == Path(examples[3].get_attribute("data-path")).name
    assert cards[0].get_attribute("data-label")

    # The docs screenshot: several examples at once, as a visitor would upload them.
    shown = sorted((space / "samples").iterdir())[:3]
    page.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in shown))
    cards = _wait_cards(page, len(shown), previous=cards[0].id)
    assert all(c.get_attribute("data-label") for c in cards)
    time.sleep(0.6)  # let the thumbnails paint (and the scroll to the results end)
    page.execute_script("window.scrollTo(0, 0)")
    shot = full_page_screenshot(page, tmp_path / "space.png", max_height=1400)
    keep_screenshot(shot, "space_screenshot.png")


def test_browser_input_matches_python(page, space, tmp_path_factory):
    """The 32x32 model input from preprocess.js vs cifar10.preprocess.load_image, for awkward files."""
    bench = space / "bench-inputs"
    bench.mkdir()
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)
    big = Image.fromarray(base).resize((733, 411), Image.Resampling.BILINEAR)
    files = {}
    big.save(bench / "odd.png"); files["odd.png"] = 0
    big.resize((25, 3000)).save(bench / "tall.png"); files["tall.png"] = 0
    big.convert("L").save(bench / "grey.png"); files["grey.png"] = 0
    big.quantize(64).save(bench / "palette.png"); files["palette.png"] = 0
    Image.fromarray(base).resize((20, 14)).save(bench / "tiny.png"); files["tiny.png"] = 0  # upscaled
    rgba = big.convert("RGBA")
    alpha = np.zeros((411, 733), np.uint8)
    alpha[50:350, 100:600] = 255
    rgba.putalpha(Image.fromarray(alpha))  # fully transparent border: must become white
    rgba.save(bench / "alpha.png"); files["alpha.png"] = 0
    big.save(bench / "photo.webp", lossless=True); files["photo.webp"] = 0
    big.save(bench / "photo.jpg", quality=90); files["photo.jpg"] = 4
    big.resize((2000, 1500)).save(bench / "photo_big.jpg", quality=85); files["photo_big.jpg"] = 4
    jpeg_with_orientation(bench / "rotated.jpg", base, 6, size=(480, 320)); files["rotated.jpg"] = 4
    for name, tolerance in files.items():
        ours = js(page, "window.cifar10.preprocessUrl(arguments[0])", f"bench-inputs/{name}")
        assert not isinstance(ours, dict), ours
        ours = np.asarray(ours, np.int16).reshape(32, 32, 3)
        ref = load_image(bench / name).astype(np.int16)
        diff = np.abs(ours - ref)
        assert diff.max() <= tolerance, f"{name}: browser input differs from Python by up to {diff.max()} levels"
        # JPEG: libjpeg's DCT-scaled draft decode vs our area average; measured mean 0.15-0.55 levels.
        assert diff.mean() <= tolerance / 4, f"{name}: browser input differs from Python by {diff.mean():.2f} on average"


@pytest.mark.skipif(not have_cifar(), reason="CIFAR-10 test batch not found (shared/data/cifar-10-batches-py): set CIFAR10_DIR to a cifar-10-batches-py folder to run it")
def test_predictions_agree_with_python_on_cifar_files(page, space):
    """A 300-image slice of the agreement benchmark (benchmarks/web_agreement.py runs all 10,000)."""
    test = cifar_split("test_batch")
    pngs = write_pngs(space / "bench" / "png", test.x[:300])
    jpegs = write_upscaled(space / "bench" / "jpg", test.x[:24], (256, 256))
    model_path = space / "models" / "pixel_ridge.onnx"
    classifier = Classifier(model_path)
    for files, minimum in ((pngs, 1.0), (jpegs, 0.98)):
        python = [int(np.argmax(classifier.predict_image(f))) for f in files]
        urls = [str(f.relative_to(space)) for f in files]
        browser = js(page, "window.cifar10.classifyUrls(arguments[0], 'pixel_ridge')", urls)
        assert not isinstance(browser, dict), browser
        agree = np.mean([b["index"] == p for b, p in zip(browser, python)])
        assert agree >= minimum, f"{files[0].suffix}: browser and Python agree on only {agree:.1%}"


@pytest.mark.skipif(not have_cifar(), reason="CIFAR-10 test batch not found (shared/data/cifar-10-batches-py): set CIFAR10_DIR to a cifar-10-batches-py folder to run it")
def test_an_int8_model_agrees_with_python_on_cifar_files(page, space):
    """Issue 26: onnxruntime-web runs the shipped int8 (QDQ) files; its labels must match onnxruntime's on the
    same PNGs (the int8 kernels of WebAssembly and x86 may round a near tie differently: 99 % at least)."""
    from training.quantize import is_quantized

    int8 = sorted(p for p in (space / "models").glob("*.onnx") if is_quantized(p))
    if not int8:
        pytest.skip("no int8 model among the shipped ones (cifar10 quantize)")
    model_path = min(int8, key=lambda p: p.stat().st_size)  # the smallest: quickest in the browser
    test = cifar_split("test_batch")
    pngs = write_pngs(space / "bench" / "png_int8", test.x[:300])
    classifier = Classifier(model_path)
    python = [int(np.argmax(classifier.predict_image(f))) for f in pngs]
    urls = [str(f.relative_to(space)) for f in pngs]
    browser = js(page, "window.cifar10.classifyUrls(arguments[0], arguments[1])", urls, model_path.stem)
    assert not isinstance(browser, dict), browser
    agree = np.mean([b["index"] == p for b, p in zip(browser, python)])
    assert agree >= 0.99, f"{model_path.stem} (int8): browser and Python agree on only {agree:.1%}"
    accuracy = np.mean([b["index"] == y for b, y in zip(browser, test.y[:300])])
    assert accuracy >= 0.8, f"{model_path.stem} (int8) in the browser: {accuracy:.1%} on 300 test images"


def test_the_static_space_of_the_shipped_models_fits_25_mb(tmp_path):
    """Issue 26: with the int8 models, every file of the static Space (onnxruntime-web's wasm included) totals
    at most 25 MB."""
    from cifar10.paths import shipped_models_dir

    out = tmp_path / "static"
    summary = export_space("static", out, models_dir=shipped_models_dir())
    assert len(summary["models"]) == 4
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert total <= 25_000_000, f"the static Space is {total / 1e6:.1f} MB"
