"""Tiny ONNX models that honour (or deliberately break) the cifar10 ONNX contract, built with onnx.helper.

The "colour" model classifies by mean colour: ``logits = sharpness * mean_rgb/255 @ W`` where W sends
red, green and blue to the classes in ``mapping``. Two models with different mappings therefore give
different labels for the same image, which makes "switching the model changes the results" testable.
``slow_layers`` adds real convolutions whose result is multiplied by 0: same outputs, more compute
(for cancel tests). Every keyword that breaks the contract is there for the registry tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cifar10 import contract

RED, GREEN, BLUE = (220, 30, 30), (30, 220, 30), (30, 30, 220)
# Default mappings: model "a" calls red/green/blue airplane/automobile/bird; model "b" horse/ship/truck.
MAPPING_A = (0, 1, 2)
MAPPING_B = (7, 8, 9)


def build_colour_model(name: str = "colour_a", *, mapping=MAPPING_A, sharpness: float = 12.0,
                       input_name: str = contract.INPUT_NAME, output_name: str = contract.OUTPUT_NAME,
                       input_shape=("N", 32, 32, 3), input_type=TensorProto.FLOAT, num_classes: int = 10,
                       metadata: dict | None = None, slow_layers: int = 0, slow_channels: int = 48) -> onnx.ModelProto:
    nodes, inits = [], []
    nchw = list(input_shape[1:]) == [3, 32, 32]
    x = input_name
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["x_float"], to=TensorProto.FLOAT))
        x = "x_float"
    nodes.append(helper.make_node("ReduceMean", [x], ["mean_rgb"], axes=[2, 3] if nchw else [1, 2], keepdims=0))
    weights = np.zeros((3, num_classes), np.float32)
    for channel, cls in enumerate(mapping):
        weights[channel, cls % num_classes] = sharpness / 255.0
    bias = (-0.001 * np.arange(num_classes)).astype(np.float32)  # ties (grey images) go to class 0
    inits += [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")]
    nodes += [helper.make_node("MatMul", ["mean_rgb", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["logits"])]
    logits = "logits"
    if slow_layers:
        rng = np.random.default_rng(0)
        src = x
        if not nchw:
            nodes.append(helper.make_node("Transpose", [x], ["x_nchw"], perm=[0, 3, 1, 2]))
            src = "x_nchw"
        channels = 3
        for i in range(slow_layers):
            w = (rng.standard_normal((slow_channels, channels, 3, 3)) * 0.01).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"conv{i}_w"))
            nodes.append(helper.make_node("Conv", [src, f"conv{i}_w"], [f"conv{i}"], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
            src, channels = f"relu{i}", slow_channels
        inits.append(numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero"))
        nodes += [helper.make_node("ReduceMean", [src], ["slow_mean"], axes=[1, 2, 3], keepdims=0),
                  helper.make_node("Unsqueeze", ["slow_mean", "one_axis"], ["slow_col"]),
                  helper.make_node("Mul", ["slow_col", "zero"], ["slow_zero"]),
                  helper.make_node("Add", ["logits", "slow_zero"], ["logits_slow"])]
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "one_axis"))
        logits = "logits_slow"
    nodes.append(helper.make_node("Softmax", [logits], [output_name], axis=1))

    return contract_model(name, nodes, inits, input_name=input_name, output_name=output_name,
                          input_shape=input_shape, input_type=input_type, num_classes=num_classes, metadata=metadata)


def contract_model(name: str, nodes: list, initializers: list, *, input_name: str = contract.INPUT_NAME,
                   output_name: str = contract.OUTPUT_NAME, input_shape=("N", 32, 32, 3),
                   input_type=TensorProto.FLOAT, num_classes: int = 10, metadata: dict | None = None) -> onnx.ModelProto:
    """Wrap ``nodes`` into a checked model with the contract's signature and metadata (None values dropped)."""
    dims = [d if isinstance(d, int) else "N" for d in input_shape]
    graph = helper.make_graph(
        nodes, f"{name}_graph",
        [helper.make_tensor_value_info(input_name, input_type, dims)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", num_classes])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="cifar10-tests")
    model.ir_version = 8
    meta = {contract.META_CLASS_NAMES: json.dumps(list(contract.CLASS_NAMES)),
            contract.META_MODEL_NAME: name, contract.META_CONTRACT: "1"}  # v1: the shipped models before issue 12
    meta.update(metadata or {})
    for key, value in meta.items():
        if value is not None:
            model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model


def write_model(directory: Path, name: str = "colour_a", *, test_accuracy: float | None = 0.5,
                card: dict | None = None, write_card: bool = True, class_names=None, display_names=None,
                image_size: int | None = None, dataset: str | None = None, **build) -> Path:
    """``<directory>/<name>.onnx`` + its card; returns the .onnx path.

    With ``class_names`` (and optionally ``display_names``, ``image_size``, ``dataset``): a contract-v3 model
    of those classes at that input size (red/green/blue -> ``mapping``'s classes, modulo the class count), its
    card saying the same; without: a v1 CIFAR-10 model."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.onnx"
    v3 = {}
    if class_names is not None:
        size = image_size or contract.IMAGE_SIZE
        dataset = dataset or "test-dataset"
        meta = contract.model_metadata(model_name=name, class_names=class_names, display_names=display_names,
                                       dataset=dataset)
        build = {"input_shape": ("N", size, size, 3), "num_classes": len(class_names),
                 "metadata": {**meta, **build.pop("metadata", {})}, **build}
        v3 = {contract.CARD_DATASET: dataset, contract.CARD_CLASS_NAMES: list(class_names),
              contract.CARD_IMAGE_SIZE: size,
              **({contract.CARD_DISPLAY_NAMES: list(display_names)} if display_names else {})}
    onnx.save(build_colour_model(name, **build), path)
    if write_card:
        content = {"name": name, "test_accuracy": test_accuracy,
                   "summary": f"test model {name}: classifies by mean colour",
                   "parameters": 40, "training": {"epochs_run": 0, "settings": {"optimizer": "none"}}, **v3}
        content.update(card or {})
        path.with_suffix(".json").write_text(json.dumps(content, indent=2))
    return path


def expected_label(rgb, mapping=MAPPING_A) -> str:
    """What the colour model predicts for a solid colour ``rgb``."""
    logits = np.zeros(10)
    for channel, cls in enumerate(mapping):
        logits[cls] += rgb[channel]
    logits -= 0.001 * 255 / 12.0 * np.arange(10)
    return contract.CLASS_NAMES[int(np.argmax(logits))]


def build_cam_model(name: str = "cam_colour", *, mapping=MAPPING_A, sharpness: float = 12.0,
                    flip_tta: bool = False) -> onnx.ModelProto:
    """A v1 contract model whose head is GlobalAveragePool + Dense (so contract v2 can add a CAM).

    Features (NCHW, 3 channels): how much each pixel's red / green / blue exceeds the mean of the other two
    (ReLU), so a grey background gives 0 and a coloured object lights up its own channel. ``flip_tta``
    averages the probabilities of the image and its mirror image (a Slice with step -1), like ``--tta flip``.
    """
    dominance = np.array([[1, -0.5, -0.5], [-0.5, 1, -0.5], [-0.5, -0.5, 1]], np.float32) / 255.0
    weights = np.zeros((3, num_classes := contract.NUM_CLASSES), np.float32)
    for channel, cls in enumerate(mapping):
        weights[channel, cls] = sharpness
    inits = [numpy_helper.from_array(dominance.reshape(3, 3, 1, 1), "conv_w"),
             numpy_helper.from_array(weights, "W"),
             numpy_helper.from_array((-0.001 * np.arange(num_classes)).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "squeeze_axes")]
    nodes = []

    def view(src: str, tag: str) -> str:
        nodes.extend([helper.make_node("Transpose", [src], [f"{tag}_nchw"], perm=[0, 3, 1, 2]),
                      helper.make_node("Conv", [f"{tag}_nchw", "conv_w"], [f"{tag}_conv"]),
                      helper.make_node("Relu", [f"{tag}_conv"], [f"{tag}_feat"]),
                      helper.make_node("GlobalAveragePool", [f"{tag}_feat"], [f"{tag}_gap"]),
                      helper.make_node("Squeeze", [f"{tag}_gap", "squeeze_axes"], [f"{tag}_pooled"]),
                      helper.make_node("MatMul", [f"{tag}_pooled", "W"], [f"{tag}_xw"]),
                      helper.make_node("Add", [f"{tag}_xw", "b"], [f"{tag}_logits"]),
                      helper.make_node("Softmax", [f"{tag}_logits"], [f"{tag}_probs"], axis=1)])
        return f"{tag}_probs"

    plain = view(contract.INPUT_NAME, "plain")
    if not flip_tta:
        nodes.append(helper.make_node("Identity", [plain], [contract.OUTPUT_NAME]))
    else:
        inits += [numpy_helper.from_array(np.array([-1], np.int64), "flip_start"),
                  numpy_helper.from_array(np.array([-(2 ** 62)], np.int64), "flip_end"),
                  numpy_helper.from_array(np.array([2], np.int64), "flip_axis"),
                  numpy_helper.from_array(np.array([-1], np.int64), "flip_step"),
                  numpy_helper.from_array(np.array(0.5, np.float32), "half")]
        nodes.append(helper.make_node("Slice", [contract.INPUT_NAME, "flip_start", "flip_end", "flip_axis", "flip_step"],
                                      ["mirrored"]))
        mirror = view("mirrored", "mirror")
        nodes += [helper.make_node("Add", [plain, mirror], ["sum"]),
                  helper.make_node("Mul", ["sum", "half"], [contract.OUTPUT_NAME])]
    return contract_model(name, nodes, inits)


def write_v2_model(directory: Path, name: str = "cam_colour", *, temperature: float = 1.0, threshold: float = 0.0,
                   flip_tta: bool = True, test_accuracy: float = 0.5, score: str = "energy", **build) -> Path:
    """A contract-v2 model (calibrated, logits, ood_score, cam) + a card with its open-set threshold.

    ``score="knn"``: the bank is the features of 64 random coloured-square scenes (fixed seed)."""
    from training.calibration import add_trust_outputs, feature_bank

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.onnx"
    v1 = build_cam_model(name, flip_tta=flip_tta, **build)
    bank = None
    if score == "knn":
        rng = np.random.default_rng(7)
        scenes = np.full((64, 32, 32, 3), 128, np.float32)
        for i in range(64):
            y, x = rng.integers(0, 22, 2)
            scenes[i, y:y + 10, x:x + 10] = (RED, GREEN, BLUE)[i % 3]
        bank = feature_bank(v1, scenes)
    onnx.save(add_trust_outputs(v1, temperature, score=score, bank=bank), path)
    path.with_suffix(".json").write_text(json.dumps({
        "name": name, "test_accuracy": test_accuracy, "summary": f"test model {name}: colour dominance, GAP + Dense",
        contract.CARD_CALIBRATION: {"temperature": temperature, "ece_before": 0.1, "ece_after": 0.01},
        contract.CARD_OPEN_SET: {"score": score, "threshold": threshold}}, indent=2))
    return path
