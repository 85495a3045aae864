"""`cifar10 export-space` for your own models (issue 27): --models / --title / --description / --examples, the
user's models folder searched by default, examples only of classes the models know, the lightest good model
loaded first, the Python Spaces' title, and an export that works without PyYAML (the app-only install)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper
import numpy as np

from onnx_fixtures import write_model
from web.space import SpaceExportError, export_space, lightest_good_model
from web_fixtures import sample_dir

ROOT = Path(__file__).resolve().parents[1]
OWN = ("cat", "ship", "truck")


def padded_model(directory: Path, name: str, megabytes: float, **card) -> Path:
    """A colour model carrying ``megabytes`` of unused weights: a big download that still runs."""
    path = write_model(directory, name, **card)
    model = onnx.load(path)
    model.graph.initializer.append(numpy_helper.from_array(
        np.random.default_rng(0).standard_normal(int(megabytes * 1e6 / 4)).astype(np.float32), "unused_padding"))
    onnx.save(model, path)
    return path


def user_env(tmp_path: Path) -> dict:
    """An environment whose user models folder (platformdirs: $XDG_DATA_HOME/cifar10-studio/models) is in tmp_path."""
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "PYTHONPATH": str(ROOT)}


def user_models(tmp_path: Path) -> Path:
    return tmp_path / "xdg" / "cifar10-studio" / "models"


def run_cli(args, env, *, no_yaml: bool = False, cwd=None):
    """`cifar10 export-space ...` in a fresh interpreter; no_yaml: as the app-only install, where `import yaml` fails."""
    prelude = "import sys; sys.modules['yaml'] = None; " if no_yaml else "import sys; "
    code = prelude + "from cifar10_cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=180)


def test_own_model_from_the_user_folder_with_title_no_yaml(tmp_path):
    """The user's own 3-class model (where `cifar10 train --data` puts it), published by name, without PyYAML."""
    write_model(user_models(tmp_path), "my_photos", class_names=OWN, dataset="my-photos", test_accuracy=0.91)
    out = tmp_path / "space"
    title = 'My photos: cats, ships & "trucks"'
    done = run_cli(["export-space", out, "--models", "my_photos", "--title", title,
                    "--description", "Three classes from my own pictures"], user_env(tmp_path), no_yaml=True)
    assert done.returncode == 0, done.stderr
    assert "my_photos" in done.stdout and "ModuleNotFoundError" not in done.stderr
    manifest = json.loads((out / "models.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in manifest["models"]] == ["my_photos"] and manifest["default"] == "my_photos"
    assert manifest["title"] == title and manifest["description"] == "Three classes from my own pictures"
    # Examples: only the studio samples of classes the model knows (no airplane for a cat/ship/truck model).
    shown = sorted(Path(s).stem.split("_")[0] for s in manifest["samples"])
    assert shown == ["cat", "ship", "truck"]
    page = (out / "index.html").read_text(encoding="utf-8")
    escaped = "My photos: cats, ships &amp; &quot;trucks&quot;"
    assert f"<title>{escaped}</title>" in page and f"<h1>{escaped}</h1>" in page
    assert page.count(escaped) == 3 and "CIFAR-10 image classifier" not in page  # tab, heading, footer
    assert "Three classes from my own pictures" in page
    # The YAML header, written by hand, reads back exactly (PyYAML is there in the test environment).
    import yaml

    front = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert front["title"] == title and front["sdk"] == "static" and front["pinned"] is False
    assert front["short_description"] == "Three classes from my own pictures"


def test_plain_export_includes_the_user_folder(tmp_path):
    write_model(user_models(tmp_path), "my_photos", class_names=OWN, dataset="my-photos", test_accuracy=0.91)
    shipped = tmp_path / "shipped"
    write_model(shipped, "colour_a", test_accuracy=0.5)
    env = {**user_env(tmp_path), "CIFAR10_MODELS_DIR": str(shipped)}
    done = run_cli(["export-space", tmp_path / "space", "--kind", "static"], env)
    assert done.returncode == 0, done.stderr
    names = [m["name"] for m in json.loads((tmp_path / "space" / "models.json").read_text())["models"]]
    assert names == ["my_photos", "colour_a"]
    # --models-dir still means that folder only.
    done = run_cli(["export-space", tmp_path / "only", "--models-dir", shipped], env)
    assert done.returncode == 0, done.stderr
    assert [m["name"] for m in json.loads((tmp_path / "only" / "models.json").read_text())["models"]] == ["colour_a"]


def test_unknown_model_name_fails_in_one_line_before_writing(tmp_path):
    write_model(user_models(tmp_path), "my_photos", class_names=OWN, dataset="my-photos")
    out = tmp_path / "space"
    done = run_cli(["export-space", out, "--models", "my_photo"], user_env(tmp_path), no_yaml=True)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'my_photos'" in lines[0] and "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", ["gradio", "streamlit"])
def test_python_spaces_take_models_title_and_examples(kind, tmp_path):
    models = tmp_path / "models"
    write_model(models, "my_photos", class_names=OWN, dataset="my-photos", test_accuracy=0.9)
    write_model(models, "colour_a", test_accuracy=0.5)
    examples = tmp_path / "mine"
    examples.mkdir()
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 30, 30)).save(examples / "my_cat.jpg")
    out = tmp_path / kind
    summary = export_space(kind, out, models_dir=models, models=["my_photos"], title="My photos",
                           description="Cats, ships and trucks", examples_dir=examples)
    assert summary["models"] == ["my_photos"] and summary["samples"] == ["my_cat.jpg"]
    assert not (out / "exported_models" / "colour_a.onnx").exists()
    assert (out / "resources" / "samples" / "my_cat.jpg").is_file()
    config = json.loads((out / "web" / "space_config.json").read_text())
    assert config == {"title": "My photos", "description": "Cats, ships and trucks"}
    code = "import sys; sys.path.insert(0, '.'); import web.common as c; print(c.page_title()); print(c.page_description())"
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=out, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["My photos", "Cats, ships and trucks"]
    assert "# My photos" in (out / "README.md").read_text()


def test_lightest_good_model_goes_first(tmp_path):
    models = tmp_path / "models"
    padded_model(models, "big_best", 2.0, test_accuracy=0.95)
    write_model(models, "small_close", test_accuracy=0.945)   # within a point: the page starts with this one
    write_model(models, "small_worse", test_accuracy=0.80)
    summary = export_space("static", tmp_path / "s", models_dir=models, samples_dir=sample_dir(tmp_path / "samples"))
    manifest = json.loads((tmp_path / "s" / "models.json").read_text())
    assert summary["default"] == manifest["default"] == "small_close"
    assert [m["name"] for m in manifest["models"]][0] == "big_best"  # the picker still lists the best first
    sizes = {m["name"]: m["bytes"] for m in manifest["models"]}
    assert sizes["big_best"] > 2_000_000 > sizes["small_close"] == (tmp_path / "s/models/small_close.onnx").stat().st_size
    from cifar10.registry import discover_models

    found, _ = discover_models([models])
    assert lightest_good_model([m for m in found if m.name != "small_close"]).name == "big_best"


def test_accept_list_is_what_browsers_decode(tmp_path):
    models = tmp_path / "models"
    write_model(models, "colour_a")
    export_space("static", tmp_path / "s", models_dir=models, samples_dir=sample_dir(tmp_path / "samples"))
    accept = json.loads((tmp_path / "s" / "models.json").read_text())["accept"].split(",")
    assert {".jpg", ".png", ".webp", ".gif", ".bmp", "image/jpeg"} <= set(accept)
    assert not {".tif", ".tiff", ".ppm", ".pgm", ".tga", ".qoi", "image/*"} & set(accept)


def test_missing_examples_folder_stops_before_writing(tmp_path):
    models = tmp_path / "models"
    write_model(models, "colour_a")
    with pytest.raises(SpaceExportError, match="--examples"):
        export_space("static", tmp_path / "s", models_dir=models, examples_dir=tmp_path / "nope")
    assert not (tmp_path / "s").exists()
