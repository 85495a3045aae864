"""The PyInstaller bundle, end to end: build it from this checkout, unzip it elsewhere, run it.

Opt-in (building takes a minute or more):  CIFAR10_TEST_BUNDLE=1 python -m pytest tests/test_bundle.py
With ``CIFAR10_TEST_BUNDLE_ARCHIVE=dist/cifar10-classifier-....zip`` an archive already built by
``cifar10 bundle`` is tested instead of building a new one. Needs the ``bundle`` extra and ``unzip``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cifar10.paths import project_root
from cifar10.results_io import read_results
from sample_model import write_nearest_sample_model

if os.environ.get("CIFAR10_TEST_BUNDLE") != "1":
    pytest.skip("builds the PyInstaller bundle (minutes): run with CIFAR10_TEST_BUNDLE=1", allow_module_level=True)

ROOT = project_root()
NAME = "cifar10-classifier"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> dict:
    """Build (or take) the zip, unzip it into a fresh folder, drop the test model into its models/ folder."""
    pytest.importorskip("PyInstaller", reason="pip install -e '.[bundle]'")
    if shutil.which("unzip") is None:
        pytest.fail("the bundle test unzips the archive with `unzip` (Python's zipfile drops symlinks)")
    tmp = tmp_path_factory.mktemp("bundle")
    archive = os.environ.get("CIFAR10_TEST_BUNDLE_ARCHIVE")
    if archive:
        archive = Path(archive).resolve()
    else:
        dist = tmp / "dist"
        done = subprocess.run([sys.executable, "-m", "cifar10_cli", "bundle", "--out", str(dist), "--work-dir",
                               str(tmp / "work"), "--archive", "zip"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        (archive,) = dist.glob(f"{NAME}-*.zip")
        print(done.stdout)
    unpacked = tmp / "unpacked"
    unpacked.mkdir()
    subprocess.run(["unzip", "-q", str(archive)], cwd=unpacked, check=True)
    folder = unpacked / NAME
    shipped = sorted(p.stem for p in (folder / "_internal" / "exported_models").glob("*.onnx"))
    # A model a user drops next to the executable; 100 % on the samples by construction.
    write_nearest_sample_model(folder / "models", "dropped_nearest", test_accuracy=1.0)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CIFAR10_MODELS_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(XDG_DATA_HOME=str(tmp / "user-data"), XDG_CONFIG_HOME=str(tmp / "config"), QT_QPA_PLATFORM="offscreen")
    return {"folder": folder, "exe": folder / NAME, "archive": archive, "cwd": elsewhere, "env": env,
            "shipped": shipped, "tmp": tmp}


def run(bundle, *args, timeout=120, **kwargs):
    return subprocess.run([str(bundle["exe"]), *args], cwd=bundle["cwd"], env=bundle["env"], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def test_contents_size_and_no_training_stack(bundle):
    from desktop_app.bundle import SIZE_TARGET_MB, audit_bundle, tree_size

    folder = bundle["folder"]
    audit = audit_bundle(folder)
    assert audit.problems == []
    assert audit.qt_modules == ["QtCore", "QtGui", "QtWidgets"]
    assert {p.split("/")[0] for p in audit.qt_plugins} <= {
        "platforms", "platformthemes", "platforminputcontexts", "xcbglintegrations", "wayland-shell-integration",
        "wayland-decoration-client", "wayland-graphics-integration-client"}
    assert "platforms/libqxcb.so" in audit.qt_plugins and "platforms/libqoffscreen.so" in audit.qt_plugins
    assert tree_size(folder) <= SIZE_TARGET_MB * 1e6
    internal = folder / "_internal"
    for forbidden in ("tensorflow", "keras", "tf2onnx", "torch", "matplotlib", "sklearn", "training"):
        assert not (internal / forbidden).exists()
    assert sorted(p.name for p in (internal / "resources" / "samples").glob("*.png")) == sorted(
        p.name for p in (ROOT / "resources" / "samples").glob("*.png"))
    assert (internal / "resources" / "icon.png").is_file()
    for onnx in (internal / "exported_models").glob("*.onnx"):
        assert onnx.with_suffix(".json").is_file()
    assert (folder / "README.txt").is_file() and (folder / "models" / "README.txt").is_file()
    assert os.access(bundle["exe"], os.X_OK)  # the zip kept the executable bit


def test_self_test_uses_bundle_relative_paths_and_the_dropped_in_model(bundle):
    done = run(bundle, "--self-test", "--model", "dropped_nearest")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    folder = bundle["folder"]
    assert (f"model dropped_nearest (--model; 100.0% test accuracy, {folder / 'models' / 'dropped_nearest.onnx'})"
            in out)
    assert f"from {folder / '_internal' / 'resources' / 'samples'}" in out
    assert str(ROOT) not in out  # nothing from the source checkout
    assert "self-test PASS: 10/10" in out


def test_default_self_test_uses_the_best_shipped_model(bundle):
    """--self-test without --model ignores the dropped-in model (better card accuracy) and tests what was built in."""
    done = run(bundle, "--self-test")
    if not bundle["shipped"]:
        assert done.returncode == 2 and "no shipped models in" in done.stdout
        assert "other folders have: dropped_nearest" in done.stdout
    else:
        assert "(best shipped model;" in done.stdout and "dropped_nearest" not in done.stdout
        assert done.returncode in (0, 1) and ("PASS" in done.stdout) == (done.returncode == 0)


def test_self_test_of_each_shipped_model_agrees_with_the_checkout(bundle):
    """Each shipped model gives the bundle the same per-sample results as `cifar10 self-test` from source."""
    if not bundle["shipped"]:
        pytest.skip("no models in exported_models/ at build time")
    for name in bundle["shipped"]:
        frozen = run(bundle, "self-test", "--model", name)
        source = subprocess.run([sys.executable, "-m", "cifar10_cli", "self-test", "--model", name], cwd=ROOT,
                                capture_output=True, text=True, timeout=120,
                                env={**bundle["env"], "CIFAR10_MODELS_DIR": str(ROOT / "exported_models")})
        assert frozen.returncode == source.returncode, frozen.stdout + source.stdout
        sample_lines = [[line for line in p.stdout.splitlines() if line.startswith("  ")] for p in (frozen, source)]
        assert sample_lines[0] == sample_lines[1] and len(sample_lines[0]) == 10


def test_classify_a_folder_matches_cifar10_classify(bundle):
    images = bundle["tmp"] / "images"
    shutil.copytree(ROOT / "resources" / "samples", images / "samples")
    from PIL import Image

    Image.open(images / "samples" / "cat_0.png").resize((300, 200)).save(images / "big cat.jpg", quality=90)
    (images / "notes.txt").write_text("not an image")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    frozen_csv, source_csv = bundle["tmp"] / "frozen.csv", bundle["tmp"] / "source.csv"
    done = run(bundle, "classify", str(images), "--output", str(frozen_csv))
    assert done.returncode == 1, done.stderr  # notes.txt and broken.png could not be read: exit 1
    assert "model dropped_nearest" in done.stderr
    source = subprocess.run([sys.executable, "-m", "cifar10_cli", "classify", str(images), "--output", str(source_csv),
                             "--model", str(bundle["folder"] / "models" / "dropped_nearest.onnx")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=bundle["env"])
    assert source.returncode == 1, source.stderr
    # Byte for byte, except the date column (the two runs may straddle a second).
    def without_date(path):
        lines = path.read_text().splitlines()
        date = lines[0].split(",").index("date")
        return [re.sub(r"\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d", "DATE", line) for line in lines], date

    assert without_date(frozen_csv) == without_date(source_csv)
    assert frozen_csv.read_text().splitlines()[0] == source_csv.read_text().splitlines()[0]
    rows = read_results(frozen_csv)
    assert len(rows) == 13 and sum(bool(r["error"]) for r in rows) == 2
    assert next(r for r in rows if r["path"].endswith("big cat.jpg"))["label"] == "cat"
    json_out = bundle["tmp"] / "frozen.json"
    assert run(bundle, "classify", str(images / "samples"), "-o", str(json_out), "--top-k", "2").returncode == 0
    assert [len(r["top_k"]) for r in json.loads(json_out.read_text())["rows"]] == [2] * 10


def test_gui_opens_offscreen_and_quits_after_show(bundle):
    done = run(bundle, "--quit-after-show")
    assert done.returncode == 0, done.stderr
    assert "cifar10-app: window shown" in done.stdout


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed (apt-get install xvfb)")
def test_gui_on_a_real_x11_server(bundle):
    """The xcb platform plugin (what a Linux desktop uses) loads with the bundled libraries, under Xvfb."""
    env = {**bundle["env"], "QT_QPA_PLATFORM": "xcb"}
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", str(bundle["exe"]), "--quit-after-show"],
                          cwd=bundle["cwd"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cifar10-app: window shown" in done.stdout


def test_version_and_headless_errors(bundle):
    done = run(bundle, "--version")
    assert done.returncode == 0 and ", frozen)" in done.stdout
    assert str(bundle["folder"] / "models") in done.stdout
    missing = run(bundle, "classify", "does-not-exist.png")
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    training = run(bundle, "train", timeout=30)  # the training side is not in the bundle
    assert training.returncode == 2 and "'train' is not part of this bundle" in training.stderr


def test_a_v3_model_dropped_into_models_is_used(bundle):
    """A contract-v3 model (3 non-CIFAR classes, 64 px) dropped into models/ next to the executable: classify
    writes its classes as the columns, labels are its class names, a corrupt file is reported; the self-test
    says it cannot test it."""
    from cifar10.results import file_columns
    from image_files import solid
    from onnx_fixtures import BLUE, GREEN, RED, write_model

    classes = ("gatto", "cane", "cavallo")
    write_model(bundle["folder"] / "models", "pets_v3", class_names=classes, image_size=64, dataset="my-pets",
                test_accuracy=0.2)
    images = bundle["tmp"] / "v3-images"
    for name, rgb in (("r.png", RED), ("g.jpg", GREEN), ("b.png", BLUE)):
        solid(images / name, rgb, size=(160, 120))
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff nope")
    out = bundle["tmp"] / "v3.csv"
    try:
        done = run(bundle, "classify", str(images), "--model", "pets_v3", "--output", str(out))
        assert done.returncode == 1, done.stderr  # corrupt.jpg
        assert "model pets_v3 (my-pets · 3 classes, 64 px" in done.stderr
        assert out.read_text().splitlines()[0] == ",".join(file_columns(classes))
        labels = {Path(r["path"]).name: r["label"] for r in read_results(out)}
        assert labels == {"r.png": "gatto", "g.jpg": "cane", "b.png": "cavallo", "corrupt.jpg": ""}
        selftest = run(bundle, "--self-test", "--model", "pets_v3")
        assert selftest.returncode == 2 and "cannot self-test pets_v3" in selftest.stdout
    finally:  # the other tests expect dropped_nearest to be the only dropped-in model
        for suffix in (".onnx", ".json"):
            (bundle["folder"] / "models" / f"pets_v3{suffix}").unlink()
