"""A contract-honouring ONNX model that knows the shipped sample images: nearest neighbour over them.

``logits = (2 x·s - |s|^2) / scale`` for each sample ``s`` (the ``-|x|^2`` term is the same for every
class, so it is left out): the class of the closest sample wins. On resources/samples it is 100 %
right, so the self-test can be checked end to end without a trained model (which may miss one).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cifar10 import contract
from cifar10.preprocess import load_image
from cifar10.paths import samples_dir as default_samples_dir
from cifar10_cli.selftest import expected_label
from onnx_fixtures import contract_model


def build_nearest_sample_model(name: str = "nearest_sample", samples_dir: Path | None = None) -> onnx.ModelProto:
    samples = sorted((samples_dir or default_samples_dir()).glob("*.png"))
    vectors = np.zeros((contract.NUM_CLASSES, 32 * 32 * 3), np.float32)
    for path in samples:
        vectors[contract.CLASS_NAMES.index(expected_label(path))] = load_image(path).reshape(-1)
    scale = 1.0 / 20000.0  # squared distances between different 32x32 images are ~1e7..1e8
    weights = (2.0 * vectors.T * scale).astype(np.float32)  # [3072, 10]
    bias = (-(vectors ** 2).sum(axis=1) * scale).astype(np.float32)  # [10]
    nodes = [helper.make_node("Reshape", [contract.INPUT_NAME, "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "W"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], [contract.OUTPUT_NAME], axis=1)]
    inits = [numpy_helper.from_array(np.array([-1, 32 * 32 * 3], np.int64), "flat_shape"),
             numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")]
    return contract_model(name, nodes, inits)


def write_nearest_sample_model(directory: Path, name: str = "nearest_sample", *, test_accuracy: float = 0.99) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.onnx"
    onnx.save(build_nearest_sample_model(name), path)
    path.with_suffix(".json").write_text(json.dumps({
        "name": name, "test_accuracy": test_accuracy,
        "summary": "test model: nearest neighbour over the 10 shipped sample images"}, indent=2))
    return path
