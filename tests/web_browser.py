"""pytest glue for the browser tests: skip only when Debian's chromium is truly absent; screenshots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from web.testing import chromium_paths

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Set CIFAR10_DOCS_SCREENSHOTS=1 to refresh docs/*_screenshot.png from the browser tests.
UPDATE_DOCS = os.environ.get("CIFAR10_DOCS_SCREENSHOTS") == "1"

INSTALL_HINT = "apt-get install -y chromium chromium-driver"


def require_chromium() -> None:
    if chromium_paths() is None:
        pytest.skip(f"Debian chromium / chromedriver not installed ({INSTALL_HINT})")
    pytest.importorskip("selenium", reason="selenium not installed (pip install -e '.[dev]')")


def keep_screenshot(path: Path, docs_name: str) -> None:
    """Screenshots always land in the test's tmp folder; copied to docs/ only when asked to."""
    assert path.is_file() and path.stat().st_size > 10_000, f"screenshot {path} missing or blank"
    if UPDATE_DOCS:
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / docs_name)


def js(driver, body: str, *args):
    """Run an async snippet: ``body`` is an expression giving a Promise; its value comes back."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"Promise.resolve().then(() => {body}).then(done, e => done({{__error__: String(e && e.stack || e)}}));",
        *args)
