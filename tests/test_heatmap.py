"""Where the model looked (issue 12): an object pasted on a flat background gets the heatmap's peak."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10 import heatmap
from cifar10.inference import Classifier
from cifar10.registry import load_model_info
from onnx_fixtures import GREEN, RED, write_model, write_v2_model


def pasted(colour, y: int, x: int, size: int = 8) -> np.ndarray:
    image = np.full((32, 32, 3), 128, np.uint8)
    image[y:y + size, x:x + size] = colour
    return image


@pytest.fixture()
def v2(tmp_path):
    return Classifier(load_model_info(write_v2_model(tmp_path, "cam_colour", threshold=-3.0)))


@pytest.fixture()
def v1(tmp_path):
    return Classifier(load_model_info(write_model(tmp_path / "v1", "colour_a")))


@pytest.mark.parametrize("where", [(2, 3), (20, 22), (12, 1)])
@pytest.mark.parametrize("method", ["cam", "occlusion"])
def test_peak_on_the_object(v2, where, method):
    y, x = where
    for colour in (RED, GREEN):
        result = heatmap.explain(v2, pasted(colour, y, x), method=method)
        py, px = result.peak
        # CAM is per pixel here; occlusion's resolution is its 4-pixel stride.
        slack = 0 if method == "cam" else heatmap.STRIDE
        assert y - slack <= py < y + 8 + slack and x - slack <= px < x + 8 + slack, (method, colour, where, result.peak)
        inside = np.zeros((32, 32), bool)
        inside[y:y + 8, x:x + 8] = True
        assert result.heat[inside].mean() > 3 * result.heat[~inside].mean()
        assert result.heat.shape == (32, 32) and 0 <= result.heat.min() and result.heat.max() == pytest.approx(1)
        assert result.method == method and result.class_name == ("airplane" if colour == RED else "automobile")


def test_auto_picks_cam_when_the_graph_has_it_else_occlusion(v2, v1):
    image = pasted(RED, 4, 4)
    assert heatmap.explain(v2, image).method == "cam"
    result = heatmap.explain(v1, image)  # the v1 mean-colour model: occlusion still finds the red square
    assert result.method == "occlusion" and result.class_name == "airplane"
    py, px = result.peak
    assert 3 <= py <= 12 and 3 <= px <= 12
    with pytest.raises(ValueError, match="no 'cam' output"):
        heatmap.explain(v1, image, method="cam")


def test_occlusion_batch_positions():
    batch, positions = heatmap.occlusion_batch(np.zeros((32, 32, 3), np.uint8))
    assert len(positions) == 49 and batch.shape == (50, 32, 32, 3)
    assert (batch[0] == 0).all() and (batch[1, :8, :8] == heatmap.GREY).all() and (batch[1, 8:, 8:] == 0).all()


def test_overlay_keeps_size_and_colours_the_hot_area():
    picture = np.full((120, 200, 3), 200, np.uint8)
    heat = np.zeros((32, 32), np.float32)
    heat[:8, :8] = 1
    out = heatmap.overlay(picture, heat)
    assert out.shape == picture.shape and out.dtype == np.uint8
    assert np.abs(out[5, 5].astype(int) - 200).sum() > 60      # hot corner recoloured
    assert np.abs(out[110, 190].astype(int) - 200).sum() < 5   # cold area untouched
