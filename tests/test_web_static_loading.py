"""The static Space as a new visitor meets it (issue 27), in headless Chromium on a throttled network (DevTools
protocol): streamed download progress before "Ready", an upload during the download, a model switch, an own
3-class model published with --models/--title, the phone-width layout, a Git LFS pointer / corrupt model, the
keyboard path, drops anywhere and files browsers cannot decode."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PIL import Image

from onnx_fixtures import MAPPING_B, RED, expected_label, write_model
from test_web_space_export import OWN, padded_model, run_cli, user_env, user_models
from web.space import export_space
from web_browser import js, keep_screenshot, require_chromium
from web_fixtures import sample_dir

MBIT = 1e6 / 8


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    """colour_big (6 MB of weights, the best: loaded first) and colour_b (tiny, 42 %), plus the trained models
    when exported (for the screenshots); a copy of colour_b as an LFS pointer and a corrupt file."""
    models = tmp_path_factory.mktemp("models")
    padded_model(models, "colour_big", 6.0, test_accuracy=0.99)
    write_model(models, "colour_b", test_accuracy=0.42, mapping=MAPPING_B)
    write_model(models, "lfs_pointer", test_accuracy=0.30)
    write_model(models, "corrupt", test_accuracy=0.20)
    out = tmp_path_factory.mktemp("space") / "static"
    export_space("static", out, models_dir=models, samples_dir=sample_dir(tmp_path_factory.mktemp("samples")))
    # What a `git push` without Git LFS leaves on the Hub, and a damaged file of the right size.
    (out / "models" / "lfs_pointer.onnx").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 2345\n")
    corrupt = out / "models" / "corrupt.onnx"
    corrupt.write_bytes(bytes(range(256)) * (corrupt.stat().st_size // 256) + b"\0" * (corrupt.stat().st_size % 256))
    return out


@pytest.fixture(scope="module")
def server(space):
    require_chromium()
    from web.testing import serve_directory

    with serve_directory(space) as base:
        yield base


def _driver(width=1280, height=900):
    from web.testing import chromium

    return chromium(width, height)


def throttle(driver, mbit: float | None, connection: str = "wifi") -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    if mbit:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 40, "downloadThroughput": mbit * MBIT, "uploadThroughput": mbit * MBIT,
            "connectionType": connection})


def status(driver) -> str:
    return driver.execute_script("return document.getElementById('status').textContent")


def wait(driver, condition, timeout=120):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def result_cards(driver, model: str | None = None):
    return driver.execute_script("return Array.from(document.querySelectorAll('#results .card'))"
                                 ".filter(c => !arguments[0] || c.dataset.model === arguments[0])", model)


def test_progress_upload_during_download_and_model_switch(server, space, tmp_path):
    """At 24 Mbit/s: the runtime and colour_big stream in parallel with "x / y MB" progress, "Ready" only after;
    an upload meanwhile shows its thumbnail at once and is classified when the model is there, with a time that
    leaves the download out; switching model dims the old cards until the new ones replace them."""
    from selenium.webdriver.common.by import By

    red = tmp_path / "red.png"
    Image.new("RGB", (300, 200), RED).save(red)
    with _driver() as driver:
        driver.set_script_timeout(180)
        throttle(driver, 24)
        driver.get(server)
        seen, uploaded, pending = [], False, None
        started = time.monotonic()
        while time.monotonic() - started < 150:
            text = status(driver)
            if not seen or seen[-1] != text:
                seen.append(text)
            if not uploaded and re.search(r"runtime \d+\.\d / 14\.\d MB", text) and "model colour_big" in text:
                if time.monotonic() - started > 1.0:
                    driver.find_element(By.ID, "files").send_keys(str(red))
                    uploaded = time.monotonic()
            if uploaded and pending is None:
                pending = driver.execute_script(
                    "const c = document.querySelector('#results .pending-card');"
                    "return c && {img: c.querySelector('img').complete && c.querySelector('img').naturalWidth,"
                    "             note: c.querySelector('.pending-note').textContent,"
                    "             status: document.getElementById('status').textContent}")
                if pending and pending["img"]:  # the docs screenshot: progress and a queued upload
                    time.sleep(0.3)
                    driver.execute_script("window.scrollTo(0, 0)")
                    path = tmp_path / "space_loading.png"
                    driver.save_screenshot(str(path))
                    keep_screenshot(path, "space_loading_screenshot.png")
                else:
                    pending = None
            if result_cards(driver):
                break
            time.sleep(0.1)
        downloads = [t for t in seen if t.startswith("Downloading")]
        assert downloads, seen
        # Both downloads in flight at once, each with its own "x / y MB".
        both = [t for t in downloads if re.search(r"model colour_big \d+\.\d / 6\.\d MB · runtime \d+\.\d / 14\.\d MB", t)]
        assert both, downloads
        first = re.search(r"model colour_big (\d+\.\d) / 6\.\d MB · runtime (\d+\.\d)", both[-1])
        assert float(first.group(1)) > 0 and float(first.group(2)) > 0, both[-1]
        assert uploaded, f"no upload during the download: {seen}"
        # The upload: a thumbnail at once, the status says it waits for the model.
        assert pending and pending["img"] and "waiting for the model colour_big" in pending["note"], pending
        assert "1 image(s) waiting" in pending["status"], pending
        assert not any(t.startswith("Ready") for t in seen[:seen.index(both[0])]), seen
        card = wait(driver, lambda d: result_cards(d, "colour_big"))[0]
        assert card.get_attribute("data-label") == expected_label(RED) == "airplane"
        done = status(driver)
        took = int(re.search(r"classified with colour_big in (\d+) ms", done).group(1))
        assert took < (time.monotonic() - uploaded) * 1000 / 2, (took, done)  # not the download's time
        assert took < 5000, done
        # Switch model: the old card is dimmed at once, then replaced by colour_b's.
        stale = driver.execute_script(
            "const s = document.getElementById('model'); s.value = 'colour_b';"
            "s.dispatchEvent(new Event('change'));"
            "return Array.from(document.querySelectorAll('#results .card')).map(c => c.classList.contains('stale'))")
        assert stale == [True]
        assert float(driver.execute_script(
            "return getComputedStyle(document.querySelector('#results .card.stale')).opacity")) < 0.6
        card = wait(driver, lambda d: result_cards(d, "colour_b"))[0]
        assert card.get_attribute("data-label") == expected_label(RED, MAPPING_B) == "horse"
        assert not driver.find_elements(By.CSS_SELECTOR, "#results .card.stale")
        # The wasm came once, as the page's own download (ort got the bytes, it did not fetch again).
        wasm = driver.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('.wasm')).length")
        assert wasm == 1


def test_lfs_pointer_and_corrupt_model_are_named_at_load(server):
    with _driver() as driver:
        throttle(driver, None)
        driver.get(server + "?model=lfs_pointer")
        wait(driver, lambda d: "Cannot use" in status(d), timeout=90)
        text = status(driver)
        assert "Git LFS pointer" in text and "git lfs install" in text and "hf upload" in text, text
        assert not text.startswith("Ready")
        assert driver.execute_script("return document.body.dataset.loadError") == "lfs_pointer"
        driver.execute_script("const s = document.getElementById('model'); s.value = 'corrupt';"
                              "s.dispatchEvent(new Event('change'));")
        wait(driver, lambda d: "Cannot use the model corrupt" in status(d), timeout=90)
        assert "damaged or not an ONNX model" in status(driver) and "Export the Space again" in status(driver)
        # A good model still loads afterwards.
        driver.execute_script("const s = document.getElementById('model'); s.value = 'colour_b';"
                              "s.dispatchEvent(new Event('change'));")
        wait(driver, lambda d: status(d).startswith("Ready"), timeout=90)


def test_keyboard_drop_anywhere_and_unsupported_files(server, space, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with _driver() as driver:
        driver.set_script_timeout(120)
        throttle(driver, None)
        driver.get(server + "?model=colour_b")
        assert js(driver, "window.cifar10.ready") is True
        # Count picker openings instead of opening the native dialog.
        driver.execute_script("window.__picked = 0; document.getElementById('files').addEventListener('click',"
                              " e => { window.__picked++; e.preventDefault(); });")
        body = driver.find_element(By.TAG_NAME, "body")
        focused = []
        for _ in range(12):
            body.send_keys(Keys.TAB) if not focused else driver.switch_to.active_element.send_keys(Keys.TAB)
            focused.append(driver.execute_script("return document.activeElement.id || document.activeElement.tagName"))
            if focused[-1] == "drop":
                break
        assert "drop" in focused and "files" not in focused, focused
        ring = driver.execute_script("const s = getComputedStyle(document.activeElement);"
                                     "return [s.outlineStyle, parseFloat(s.outlineWidth)]")
        assert ring[0] != "none" and ring[1] >= 2, ring
        assert driver.execute_script("return document.activeElement.tagName") == "BUTTON"
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        driver.switch_to.active_element.send_keys(Keys.SPACE)
        wait(driver, lambda d: d.execute_script("return window.__picked") == 2, timeout=10)

        # A drop on the footer (outside the drop area) is classified, and the page stays.
        prevented = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const c = document.createElement('canvas'); c.width = 40; c.height = 30;
            const g = c.getContext('2d'); g.fillStyle = 'rgb(220,30,30)'; g.fillRect(0, 0, 40, 30);
            c.toBlob(blob => {
              const dt = new DataTransfer();
              dt.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
              const ev = new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true});
              document.querySelector('footer').dispatchEvent(ev);
              done(ev.defaultPrevented);
            }, 'image/png');""")
        assert prevented is True
        card = wait(driver, lambda d: result_cards(d, "colour_b"))[0]
        assert card.get_attribute("data-name") == "dropped.png" and card.get_attribute("data-label") == "horse"

        # Files browsers cannot decode, a cut-off JPEG: each says what it is.
        Image.new("RGB", (20, 20), RED).save(tmp_path / "photo.tif")
        Image.new("RGB", (20, 20), RED).save(tmp_path / "photo.ppm")
        Image.new("RGB", (20, 20), RED).save(tmp_path / "photo.tga")
        Image.new("RGB", (300, 200), RED).save(tmp_path / "whole.jpg", quality=90)
        data = (tmp_path / "whole.jpg").read_bytes()
        (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
        files = [tmp_path / n for n in ("photo.tif", "photo.ppm", "photo.tga", "cut.jpg")]
        previous = card.id
        driver.find_element(By.ID, "files").send_keys("\n".join(map(str, files)))
        cards = wait(driver, lambda d: (c := result_cards(d)) and len(c) == 4 and c[0].id != previous and c)
        errors = [c.get_attribute("data-error") for c in cards]
        assert errors[0].startswith("unsupported format: TIFF") and "JPG or PNG" in errors[0], errors
        assert errors[1].startswith("unsupported format: PPM"), errors
        assert errors[2].startswith("unsupported format: TGA"), errors
        assert "cut off (truncated)" in errors[3], errors
        accept = driver.execute_script("return document.getElementById('files').accept")
        assert ".png" in accept and ".tif" not in accept and "image/*" not in accept


def test_own_three_class_model_with_models_and_title(tmp_path):
    """`cifar10 export-space --models my_photos --title ...` from the user's models folder: the title in the tab,
    heading and footer, cat/ship/truck examples only, the model's own classes on the cards."""
    require_chromium()
    from selenium.webdriver.common.by import By

    from web.testing import full_page_screenshot, serve_directory

    write_model(user_models(tmp_path), "my_photos", class_names=OWN, dataset="my-photos", test_accuracy=0.91)
    out = tmp_path / "space"
    done = run_cli(["export-space", out, "--models", "my_photos", "--title", "My photos: cat, ship or truck?",
                    "--description", "A 3-class model trained on my own pictures with cifar10 train --data."],
                   user_env(tmp_path))
    assert done.returncode == 0, done.stderr
    with serve_directory(out) as base, _driver() as driver:
        driver.set_script_timeout(120)
        driver.get(base)
        assert js(driver, "window.cifar10.ready") is True
        assert driver.title == "My photos: cat, ship or truck?"
        assert driver.find_element(By.TAG_NAME, "h1").text == "My photos: cat, ship or truck?"
        assert "My photos: cat, ship or truck?" in driver.find_element(By.TAG_NAME, "footer").text
        assert "CIFAR-10 image classifier" not in driver.page_source
        examples = [e.get_attribute("data-path") for e in driver.find_elements(By.CSS_SELECTOR, "#examples .example")]
        assert sorted(Path(p).stem.split("_")[0] for p in examples) == ["cat", "ship", "truck"]
        driver.find_elements(By.CSS_SELECTOR, "#examples .example")[0].click()
        card = wait(driver, lambda d: result_cards(d, "my_photos"))[0]
        assert card.get_attribute("data-label") in OWN
        bars = [b.get_attribute("data-cls") for b in card.find_elements(By.CSS_SELECTOR, ".bar-row")]
        assert bars == list(OWN)
        red = tmp_path / "red.png"
        Image.new("RGB", (64, 64), RED).save(red)
        previous = card.id
        driver.find_element(By.ID, "files").send_keys(f"{red}\n{out / 'samples' / Path(examples[1]).name}")
        cards = wait(driver, lambda d: (c := result_cards(d)) and len(c) == 2 and c[0].id != previous and c)
        assert cards[0].get_attribute("data-label") == "cat"  # red -> the model's first class
        time.sleep(0.6)
        driver.execute_script("window.scrollTo(0, 0)")
        shot = full_page_screenshot(driver, tmp_path / "own.png", max_height=1300)
        keep_screenshot(shot, "space_own_model_screenshot.png")


def test_phone_width_layout(server, space, tmp_path_factory):
    """390x844 (a phone's CSS pixels, mobile emulation): on a slow (3G-like) line the download size is announced
    as metered; nothing overflows, margins are even, the picker shows the model's name, and the results scroll
    into view after an upload."""
    from selenium.webdriver.common.by import By

    shots = tmp_path_factory.mktemp("phone")
    with _driver(390, 844) as driver:
        driver.set_script_timeout(120)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        throttle(driver, 0.4, connection="cellular3g")
        line = {"offline": False, "latency": 400, "downloadThroughput": 0.4 * MBIT, "uploadThroughput": 0.4 * MBIT,
                "connectionType": "cellular3g"}
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", line)
        driver.get(server)
        wait(driver, lambda d: d.find_element(By.ID, "download-note").is_displayed(), timeout=60)
        # Chromium 150 gives each new document the machine's real navigator.connection ('4g' here) whatever the
        # emulation said before the navigation; emulating again reaches the open page, as a real phone's move to a
        # mobile line does: the page listens for the change while its first download runs.
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", line)
        assert driver.execute_script("return navigator.connection.effectiveType") in ("2g", "3g")
        wait(driver, lambda d: "metered" in d.find_element(By.ID, "download-note").get_attribute("class"), timeout=10)
        note = driver.find_element(By.ID, "download-note")
        assert re.search(r"metered connection: this page downloads \d+\.\d MB once", note.text), note.text
        assert "metered" in note.get_attribute("class")
        throttle(driver, 400)
        driver.get(server)
        assert js(driver, "window.cifar10.ready") is True
        note = driver.find_element(By.ID, "download-note")
        assert note.is_displayed() and re.search(r"downloads \d+\.\d MB", note.text), note.text
        view = driver.execute_script("return document.documentElement.clientWidth")
        geometry = driver.execute_script("""
            const r = s => document.querySelector(s).getBoundingClientRect();
            return {scroll: document.documentElement.scrollWidth, controls: [r('.controls').left, r('.controls').right],
                    h1: r('h1').left, select: [r('#model').left, r('#model').right], drop: [r('#drop').left, r('#drop').right]};""")
        assert geometry["scroll"] <= view, geometry  # no sideways scrolling
        left, right = geometry["controls"]
        assert abs(left - (view - right)) <= 1 and 8 <= left <= 16, geometry  # even margins
        assert geometry["h1"] == pytest.approx(left, abs=1)
        assert geometry["select"][1] <= right and geometry["drop"][1] <= right, geometry
        # The selected model's full name fits in the picker.
        fits = driver.execute_script("""
            const s = document.getElementById('model'), c = document.createElement('canvas').getContext('2d');
            const st = getComputedStyle(s); c.font = `${st.fontSize} ${st.fontFamily}`;
            return c.measureText(s.value).width + 40 < s.getBoundingClientRect().width;""")
        assert fits
        samples = sorted((space / "samples").iterdir())[:2]
        driver.find_element(By.ID, "files").send_keys("\n".join(map(str, samples)))
        wait(driver, lambda d: len(result_cards(d)) == 2)
        wait(driver, lambda d: d.execute_script(
            "const t = document.querySelector('#results .card').getBoundingClientRect().top;"
            "return window.scrollY > 0 && t >= -1 && t < window.innerHeight * 0.5"), timeout=10)
        time.sleep(0.6)  # the smooth scroll settles
        path = shots / "phone.png"
        driver.save_screenshot(str(path))
        keep_screenshot(path, "space_phone_screenshot.png")
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        path = shots / "phone_top.png"
        driver.save_screenshot(str(path))
        keep_screenshot(path, "space_phone_top_screenshot.png")
