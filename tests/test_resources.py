"""resources/ (samples, icon) and the screenshot script."""

import numpy as np
import pytest
from PIL import Image

from cifar10.contract import CLASS_NAMES
from cifar10.paths import project_root
from cifar10.preprocess import load_image
from cifar_fixtures import SHARED_CIFAR
from onnx_fixtures import write_model

RESOURCES = project_root() / "resources"


def test_one_sample_per_class_with_label_and_test_index_in_the_name():
    samples = sorted((RESOURCES / "samples").glob("*.png"))
    labels = [p.stem.rsplit("_", 1)[0] for p in samples]
    assert sorted(labels) == sorted(CLASS_NAMES)
    for path in samples:
        assert int(path.stem.rsplit("_", 1)[1]) >= 0
        assert Image.open(path).size == (32, 32)


@pytest.mark.skipif(not (SHARED_CIFAR / "test_batch").is_file(), reason="CIFAR-10 test batch not available: set CIFAR10_DIR to a cifar-10-batches-py folder to run it")
def test_samples_are_the_exact_test_set_pixels():
    from training.data import load_batch

    test = load_batch(SHARED_CIFAR / "test_batch")
    for path in (RESOURCES / "samples").glob("*.png"):
        label, index = path.stem.rsplit("_", 1)
        assert CLASS_NAMES[test.y[int(index)]] == label
        np.testing.assert_array_equal(load_image(path), test.x[int(index)])  # preprocessing is the identity here


def test_icon_files():
    assert Image.open(RESOURCES / "icon.png").size == (256, 256)
    assert Image.open(RESOURCES / "icon.ico").format == "ICO"
    assert (RESOURCES / "icon.svg").read_text().startswith("<svg")


def test_screenshot_script(tmp_path, qapp):
    from desktop_app.screenshot import main

    models = tmp_path / "models"
    write_model(models, "colour_a", test_accuracy=0.6)
    out = tmp_path / "shot.png"
    assert main(["--models-dir", str(models), "--out", str(out), "--size", "900x600"]) == 0
    shot = Image.open(out)
    assert shot.size == (900, 600)
    assert len({tuple(p) for p in np.asarray(shot.convert("RGB")).reshape(-1, 3)[::97]}) > 20  # not blank


def test_no_absolute_paths_in_shipped_cards_or_the_leaderboard():
    """Cards and the leaderboard ship to other machines: this machine's folders mean nothing there."""
    import re

    from cifar10.paths import project_root

    absolute = re.compile(r"(?<![\w.~:/-])(?:/(?:work|home|tmp|root|Users|mnt|var|opt)/|[A-Za-z]:\\)")
    shipped = [*sorted((project_root() / "exported_models").glob("*.json")),
               *sorted((project_root() / "exported_models" / "study").glob("*.json")),
               *sorted((project_root() / "exported_models" / "float").glob("*.json")),
               project_root() / "reports" / "leaderboard.md"]
    for path in shipped:
        found = absolute.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name} holds absolute paths: {found}"
        assert "……" not in path.read_text(encoding="utf-8"), f"{path.name}: a path shortened twice"


def test_portable_paths_keeps_urls_and_shortens_paths():
    from cifar10.paths import portable_paths, project_root

    card = {"cmd": "cifar10 train --out /somewhere/runs --export-dir " + str(project_root() / "exported_models"),
            "data": ["/data/cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
            "n": 3, "ratio": "1/255"}
    assert portable_paths(card) == {"cmd": "cifar10 train --out …/runs --export-dir exported_models",
                                    "data": ["…/cifar-10-batches-py",
                                             "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
                                    "n": 3, "ratio": "1/255"}


def test_leaderboard_only_models_are_valid_but_not_in_the_apps():
    """exported_models/study/ holds the study's columns: each passes the registry's contract checks (graph,
    metadata and card agree), and none of them is among the models the apps discover."""
    from cifar10.paths import project_root
    from cifar10.registry import discover_models, load_model_info

    study = sorted((project_root() / "exported_models" / "study").glob("*.onnx"))
    assert len(study) >= 4
    for path in study:
        info = load_model_info(path)
        assert info.dataset == "CIFAR-10" and info.test_accuracy is not None and info.card["study"]["column"]
    shipped, problems = discover_models([project_root() / "exported_models"])
    assert not problems
    assert {m.name for m in shipped}.isdisjoint({p.stem for p in study})
    assert len(shipped) == 4


def test_shipped_int8_models_name_their_float_twins():
    """Issue 26: a shipped int8 model names its float twin in exported_models/float/ (same SHA-256), loses at
    most 0.3 points of test accuracy, and its calibration and open-set threshold were re-fitted on the int8 graph;
    the twins pass the contract checks but are not among the models the apps discover."""
    import json

    from cifar10.registry import discover_models, load_model_info
    from training.quantize import float_twin_path, is_quantized, sha256

    folder = project_root() / "exported_models"
    shipped, problems = discover_models([folder])
    assert not problems
    for model in shipped:
        if not is_quantized(model.onnx_path):
            assert "quantization" not in model.card or model.card["quantization"]["int8"] == "not shipped"
            continue
        q = model.card["quantization"]
        twin = float_twin_path(model.onnx_path)
        assert q["source"] == f"float/{model.name}.onnx" and sha256(twin) == q["source_sha256"]
        float_card = json.loads(twin.with_suffix(".json").read_text())
        assert model.test_accuracy >= float_card["test_accuracy"] - 0.003 - 1e-9
        assert q["float_test_accuracy"] == float_card["test_accuracy"] and q["meets_accuracy_bar"]
        assert "re-fitted on the int8 graph" in model.card["calibration"]["fitted_on"]
        assert "re-fitted on the int8 graph" in model.card["open_set"]["fitted_on"]
        assert load_model_info(twin).name == model.name and not is_quantized(twin)
    twins = sorted((folder / "float").glob("*.onnx"))
    assert all(t.stem in {m.name for m in shipped} for t in twins)
