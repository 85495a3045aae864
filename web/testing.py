"""Helpers to drive the web apps for real: a localhost static server, headless Debian Chromium, free ports.

Used by tests/test_web_*.py and benchmarks/web_agreement.py. Selenium (the ``dev`` extra) and the
Debian packages ``chromium`` + ``chromium-driver`` are needed for the browser part; no browser is
ever downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver",)
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
                  "--hide-scrollbars", "--mute-audio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) from the Debian packages, or None when either is missing."""
    browser = next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    driver = next((p for p in CHROMEDRIVER_CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
                      ".onnx": "application/octet-stream", ".json": "application/json"}

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@contextlib.contextmanager
def serve_directory(directory: str | os.PathLike, port: int | None = None) -> Iterator[str]:
    """Serve ``directory`` on http://127.0.0.1:PORT/ (plain static hosting: no COOP/COEP headers)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-space", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A headless Selenium Chrome driver on Debian's chromium, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("chromium / chromedriver not installed (apt-get install -y chromium chromium-driver)")
    browser, driver_path = paths
    profile = tempfile.mkdtemp(prefix="cifar10-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_http(url: str, timeout: float = 60.0, expect: bytes | None = None) -> bytes:
    """Poll ``url`` until it answers 200 (and contains ``expect``); returns the body."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
                if response.status == 200 and (expect is None or expect in body):
                    return body
        except Exception as exc:  # connection refused while the server starts
            last = exc
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s ({last})")


def full_page_screenshot(driver, path: str | os.PathLike, width: int = 1280, max_height: int = 2400) -> Path:
    """Resize the window to the page's height (capped), then save a PNG."""
    # Apps like Streamlit scroll inside a container, not the body: take the tallest scrollable thing.
    height = driver.execute_script(
        "let h = Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);"
        "for (const el of document.querySelectorAll('section, main, div')) {"
        "  if (el.scrollHeight > el.clientHeight + 1) h = Math.max(h, el.scrollHeight + el.getBoundingClientRect().top);"
        "}"
        "return h;")
    driver.set_window_size(width, min(max_height, max(600, int(height) + 100)))
    time.sleep(0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
