"""Static int8 quantization of an exported model (issue 26): the same contract, a quarter of the size, about
twice the CPU speed.

``quantize_model`` takes any contract file (version 2/3 with the optional outputs, or a plain version-1/3 graph)
and writes an int8 twin next to it or into ``--output``:

1. The *backbone* (everything that computes the view-averaged probabilities ``probabilities_tta``) is quantized
   with onnxruntime's static QDQ quantizer: per-channel int8 weights, uint8 activations whose ranges are
   calibrated on held-out *training* images (the validation split; never the test set), with a calibration
   method (MinMax / Entropy / Percentile) chosen by measurement (``benchmarks/quantize.py``).
2. The trust arithmetic that contract v2 adds (calibrated probabilities, logits, ``ood_score``, ``cam``) and,
   by default, the classifier head (the last Dense of each view and its Softmax) stay float32: they are a few
   hundred multiply-adds per image, and log/softmax/kNN on 8-bit values would cost calibration and open-set
   quality for no speed.
3. The temperature, the open-set threshold (95 % pass on the held-out images) and the kNN feature bank are
   re-fitted on the *quantized* graph's own outputs with the functions of :mod:`training.calibration`, and the
   card is re-measured on the quantized file (test accuracy, ECE, open-set rates, throughput); its
   ``quantization`` entry records the float source (path and SHA-256) and how it was quantized.

onnxruntime.quantization needs the ``onnx`` package (the training extra): quantizing is a training-side step;
the apps only *run* the int8 files (plain onnxruntime, any execution provider that has the QDQ kernels).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from cifar10 import contract

METHODS = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = "percentile"      # chosen by measurement (docs/quantization.md): best on efficientnet_lite0
DEFAULT_CALIBRATION_IMAGES = 512
MAX_ACCURACY_DROP = 0.003          # issue 26: a shipped model may lose at most 0.3 points of test accuracy
FLOAT_SUBDIR = "float"             # exported_models/float/: the float twins of shipped int8 models (leaderboard)
AVERAGED = "probabilities_tta"     # the v2 graph's view-averaged probabilities (training.calibration)
QUANTIZED_OP_TYPES = ("Conv", "MatMul", "Gemm", "Add", "Mul", "Relu", "Clip", "MaxPool", "GlobalAveragePool",
                      "AveragePool", "Concat", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten",
                      "Resize", "Pad", "Slice", "Sigmoid", "LeakyRelu")


LOG = logging.getLogger(__name__)


class QuantizeError(ValueError):
    """The model cannot be quantized (not a contract graph we know, no calibration images, ...)."""


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_quantized(model_or_path) -> bool:
    """True for a graph that holds QDQ / integer ops (an int8 file); cheap (no weights are decoded)."""
    model = model_or_path if isinstance(model_or_path, onnx.ModelProto) else onnx.load(
        os.fspath(model_or_path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                             "ConvInteger", "MatMulInteger") for n in model.graph.node)


# --- which nodes stay float --------------------------------------------------------------------------------

def _name_nodes(model: onnx.ModelProto) -> None:
    """Give every node a unique name (the quantizer excludes nodes by name; tf2onnx and the trust step leave
    a few unnamed)."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"q{i}__{node.op_type}"
        seen.add(node.name)


def _ancestors(graph, tensors: set[str]) -> set[int]:
    """Indices of the nodes needed to compute ``tensors``."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    needed, stack = set(), list(tensors)
    while stack:
        i = producer.get(stack.pop())
        if i is None or i in needed:
            continue
        needed.add(i)
        stack.extend(graph.node[i].input)
    return needed


def backbone_output(model: onnx.ModelProto) -> str:
    """The tensor the backbone ends in: ``probabilities_tta`` in a v2 graph, ``probabilities`` in a plain one."""
    produced = {out for node in model.graph.node for out in node.output}
    if AVERAGED in produced:
        return AVERAGED
    if contract.OUTPUT_NAME in produced:
        return contract.OUTPUT_NAME
    raise QuantizeError(f"the graph computes neither '{AVERAGED}' nor '{contract.OUTPUT_NAME}'")


def head_nodes(model: onnx.ModelProto) -> set[str]:
    """Names of each view's classifier head: the Softmax, the MatMul/Gemm (+ bias Add) feeding it, and what
    averages the views' probabilities after it (8-bit probabilities would spoil ``log(p) / T``)."""
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    names, after = set(), set()
    for node in graph.node:  # topologically sorted
        if node.op_type == "Softmax" or any(i in after for i in node.input):
            names.add(node.name)
            after.update(node.output)
        if node.op_type != "Softmax":
            continue
        current = producer.get(node.input[0])
        for _ in range(3):  # Softmax <- (Add bias) <- MatMul / Gemm
            if current is None:
                break
            names.add(current.name)
            if current.op_type in ("MatMul", "Gemm"):
                break
            current = next((producer[i] for i in current.input if i in producer), None)
    return names


def float_nodes(model: onnx.ModelProto, keep_head_float: bool = True) -> list[str]:
    """The nodes that stay float32: everything outside the backbone (the trust outputs) and, by default,
    the classifier head."""
    graph = model.graph
    backbone = _ancestors(graph, {backbone_output(model)})
    keep = {node.name for i, node in enumerate(graph.node) if i not in backbone}
    if keep_head_float:
        keep |= head_nodes(model)
    return sorted(keep)


# --- calibration ---------------------------------------------------------------------------------------------

class _Reader:
    """onnxruntime's CalibrationDataReader over uint8 images [N, S, S, 3] (fed as float32 0..255)."""

    def __init__(self, images: np.ndarray, batch_size: int = 32):
        self.images, self.batch_size, self.start = images, batch_size, 0

    def get_next(self):
        if self.start >= len(self.images):
            return None
        batch = np.ascontiguousarray(self.images[self.start:self.start + self.batch_size], np.float32)
        self.start += self.batch_size
        return {contract.INPUT_NAME: batch}

    def rewind(self):
        self.start = 0


class _ListReader:
    def __init__(self, items: list):
        self.items = list(items)

    def get_next(self):
        return self.items.pop(0) if self.items else None


@contextlib.contextmanager
def _histograms_in_chunks(batches: int = 1):
    """onnxruntime's histogram calibrators (entropy, percentile) keep every activation of every calibration image
    in memory before histogramming them (15 GB for efficientnet_lite0 at 512 images); this feeds them ``batches``
    reader batches at a time instead; their collector merges the histograms (bins of the first chunk's width).
    A chunk holds batches of one size only: onnxruntime stacks a chunk's activations into one array (the last,
    smaller batch of 45 images in batches of 32 made it fail)."""
    from onnxruntime.quantization import calibrate

    original = calibrate.HistogramCalibrater.collect_data

    def collect_data(self, data_reader):
        while True:
            chunk = [item for item in (data_reader.get_next() for _ in range(batches)) if item]
            if not chunk:
                return
            for _, same in itertools.groupby(chunk, key=lambda item: item[contract.INPUT_NAME].shape):
                original(self, _ListReader(list(same)))
    calibrate.HistogramCalibrater.collect_data = collect_data
    try:
        yield
    finally:
        calibrate.HistogramCalibrater.collect_data = original


def calibration_sample(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A fixed random sample of ``n`` of ``images`` (all of them when there are fewer)."""
    if n >= len(images):
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))]


def quantize_graph(float_path: Path, out_path: Path, calibration_images: np.ndarray, *,
                   method: str = DEFAULT_METHOD, per_channel: bool = True, keep_head_float: bool = True,
                   preprocess: bool = True) -> dict:
    """Write the QDQ int8 graph of ``float_path`` to ``out_path`` (trust outputs kept float, untouched: call
    :func:`refit` next). Returns what was done, for the card."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    if method not in METHODS:
        raise QuantizeError(f"unknown calibration method {method!r}: one of {', '.join(METHODS)}")
    if not len(calibration_images):
        raise QuantizeError("no calibration images")
    model = onnx.load(os.fspath(float_path))
    if is_quantized(model):
        raise QuantizeError(f"{float_path} is already quantized")
    with tempfile.TemporaryDirectory(prefix="cifar10-quantize-") as tmp:
        tmp = Path(tmp)
        named = tmp / "named.onnx"
        _name_nodes(model)
        onnx.save(model, named)
        source = named
        if preprocess:  # symbolic shape inference + graph optimisation (what onnxruntime recommends)
            source = tmp / "pre.onnx"
            quant_pre_process(str(named), str(source), skip_symbolic_shape=False)
            pre = onnx.load(source)
            _name_nodes(pre)
            onnx.save(pre, source)
        pre = onnx.load(source)
        excluded = float_nodes(pre, keep_head_float)
        calibrate_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                            "percentile": CalibrationMethod.Percentile}[method]
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial = out_path.with_name(out_path.name + ".part")
        chatter = io.StringIO()  # the calibrators print their progress ("Percentile : (...)") on stdout
        with _histograms_in_chunks(batches=2), contextlib.redirect_stdout(chatter):
            quantize_static(str(source), str(partial), _Reader(calibration_images), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=calibrate_method, nodes_to_exclude=excluded,
                            op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                            extra_options={"CalibTensorRangeSymmetric": False, "WeightSymmetric": True,
                                           "CalibMovingAverage": False},
                            calibration_providers=["CPUExecutionProvider"])
        for line in filter(str.strip, chatter.getvalue().splitlines()):
            LOG.info("onnxruntime.quantization: %s", line)  # `cifar10 --verbose` shows them (on stderr)
        quantized = onnx.load(partial)
        # quantize_static keeps the metadata of the graph it read; carry over the contract's keys to be sure.
        meta = {p.key: p.value for p in model.metadata_props}
        del quantized.metadata_props[:]
        for key, value in meta.items():
            quantized.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
        quantized.producer_name = "cifar10-studio (onnxruntime.quantization)"
        onnx.save(quantized, partial)
        partial.replace(out_path)
    return {"method": method, "per_channel": per_channel, "weights": "int8 (symmetric, per output channel)"
            if per_channel else "int8 (symmetric, per tensor)", "activations": "uint8 (asymmetric, per tensor)",
            "format": "QDQ", "preprocessed": preprocess, "calibration_images": int(len(calibration_images)),
            "float_nodes": len(excluded), "head_float": keep_head_float}


# --- re-fitting the trust outputs on the int8 graph ----------------------------------------------------------

def open_set_score(model: onnx.ModelProto) -> str | None:
    """Which open-set score the graph bakes in (``knn``, ``energy``, ...), None for a graph without one."""
    value = {p.key: p.value for p in model.metadata_props}.get(contract.META_OOD_SCORE)
    if not value:
        return None
    return "knn" if value.startswith("knn") else value


def _knn_input(model: onnx.ModelProto) -> str | None:
    """The penultimate-feature tensor the kNN score reads (the input of its Flatten ``knn__flat``)."""
    return next((n.input[0] for n in model.graph.node if "knn__flat" in n.output), None)


def run_graph(model: onnx.ModelProto | str | os.PathLike, images: np.ndarray, names: list[str],
              batch_size: int = 500) -> dict[str, np.ndarray]:
    """``names`` (graph outputs or any internal float tensor) over uint8 images, with onnxruntime on the CPU."""
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model))
    probe = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in probe.graph.output}
    for name in names:
        if name not in present:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    parts = {name: [] for name in names}
    for start in range(0, len(images), batch_size):
        feed = np.ascontiguousarray(images[start:start + batch_size], np.float32)
        for name, value in zip(names, session.run(names, {contract.INPUT_NAME: feed})):
            parts[name].append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in parts.items()}


def _set_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))
            return
    raise QuantizeError(f"the graph has no initializer '{name}' to re-fit")


def refit(model: onnx.ModelProto, images: np.ndarray, labels: np.ndarray, *, source: str, crossfit: bool = False,
          train_images: np.ndarray | None = None, bank_dtype: str = "int8") -> tuple[onnx.ModelProto, dict]:
    """Re-fit the temperature, the open-set threshold and (kNN) the feature bank on the *int8* graph's own
    outputs, with :mod:`training.calibration`'s functions; returns the graph and the card's ``calibration`` /
    ``open_set`` entries (empty for a graph without trust outputs). ``bank_dtype``: how the kNN bank is stored
    (``int8``: per-image symmetric scales, a quarter of the float32 bytes)."""
    from training import calibration

    score = open_set_score(model)
    if score is None:
        return model, {}
    features = _knn_input(model) if score == "knn" else None
    names = [AVERAGED, contract.LOGITS_NAME] + ([features] if features else [])
    raw = run_graph(model, images, names)
    bank = None
    if score == "knn":
        if train_images is None:
            raise QuantizeError("the kNN score needs the training images (its feature bank)")
        picked = train_images[calibration.bank_indices(len(train_images))]
        bank = calibration.normalise(run_graph(model, picked, [features])[features])
        if bank_dtype == "int8":  # fit on exactly the values the graph will hold
            bank = int8_bank(bank)[2]
    fit = calibration.cross_fit if crossfit else calibration.fit_trust
    fitted = fit(raw[AVERAGED], raw[contract.LOGITS_NAME], np.asarray(labels).astype(int), score,
                 raw.get(features) if features else None, bank)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _set_initializer(model, "calib__temperature", np.array(fitted["temperature"], np.float32))
    if bank is not None:
        if bank_dtype == "int8":
            store_bank_int8(model, bank)
        else:
            _set_initializer(model, "knn__bank_t", np.ascontiguousarray(bank.T))
    for prop in model.metadata_props:
        if prop.key == contract.META_TEMPERATURE:
            prop.value = repr(float(fitted["temperature"]))
    has_cam = any(o.name == contract.CAM_NAME for o in model.graph.output)
    return model, calibration.trust_card(fitted, score, source=source, crossfit=crossfit, bank=bank,
                                         has_cam=has_cam)


def int8_bank(bank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bank [B, D] as int8 ``q`` [D, B] with one symmetric scale per bank image [B], and what
    the graph computes from them [B, D] (idempotent: an already-rounded bank comes back unchanged)."""
    bank_t = np.ascontiguousarray(np.asarray(bank, np.float32).T)
    scale = (np.maximum(np.abs(bank_t).max(axis=0), 1e-12) / 127.0).astype(np.float32)
    q = np.clip(np.round(bank_t / scale), -127, 127).astype(np.int8)
    return q, scale, np.ascontiguousarray((q.astype(np.float32) * scale).T)


def store_bank_int8(model: onnx.ModelProto, bank: np.ndarray) -> None:
    """Replace the float32 ``knn__bank_t`` [D, B] by int8 values with one symmetric scale per bank image (the kNN
    arithmetic itself stays float32: cosine similarities of unit vectors)."""
    q, scale, _ = int8_bank(bank)
    graph = model.graph
    kept = [init for init in graph.initializer if init.name != "knn__bank_t"]
    if len(kept) == len(graph.initializer):
        raise QuantizeError("the graph has no initializer 'knn__bank_t' to re-fit")
    del graph.initializer[:]
    graph.initializer.extend(kept + [numpy_helper.from_array(q, "knn__bank_t_int8"),
                                     numpy_helper.from_array(scale.reshape(1, -1), "knn__bank_t_scale")])
    # Cast + Mul, not DequantizeLinear: onnxruntime would fuse DequantizeLinear + MatMul into an integer MatMul
    # that quantizes the features too; Cast + Mul of constants is folded into the float32 bank at load time.
    graph.node.insert(0, onnx.helper.make_node("Mul", ["knn__bank_t_float", "knn__bank_t_scale"], ["knn__bank_t"],
                                               name="knn__bank_scale"))
    graph.node.insert(0, onnx.helper.make_node("Cast", ["knn__bank_t_int8"], ["knn__bank_t_float"],
                                               to=onnx.TensorProto.FLOAT, name="knn__bank_cast"))


# --- measuring ---------------------------------------------------------------------------------------------

def measure(path: str | os.PathLike, test_x: np.ndarray, test_y: np.ndarray, *, threshold: float | None,
            class_names=contract.CLASS_NAMES, ood_x: np.ndarray | None = None) -> dict:
    """Test accuracy and the card's metrics, ECE before/after the temperature, and the open-set rates at
    ``threshold`` (test images flagged; with ``ood_x``, OOD images flagged, AUROC, FPR at 95 % TPR)."""
    from cifar10.metrics import classification_metrics, expected_calibration_error
    from training.calibration import open_set_rates

    model = onnx.load(os.fspath(path))
    outputs = [o.name for o in model.graph.output]
    has_trust = contract.OOD_SCORE_NAME in outputs
    names = [contract.OUTPUT_NAME] + ([AVERAGED, contract.OOD_SCORE_NAME] if has_trust else [])
    got = run_graph(model, test_x, names)
    metrics = classification_metrics(test_y, got[contract.OUTPUT_NAME], class_names=tuple(class_names))
    out = {"metrics": metrics, "accuracy": float(metrics["accuracy"]), "ece": float(metrics["ece"]),
           "probabilities": got[contract.OUTPUT_NAME]}
    if has_trust:
        out["test_ece_before"] = float(expected_calibration_error(test_y, got[AVERAGED]))
        scores = got[contract.OOD_SCORE_NAME].astype(np.float64)
        out["test_scores"] = scores
        if threshold is not None:
            out["test_flagged"] = float((scores > threshold).mean())
            if ood_x is not None and len(ood_x):
                ood = run_graph(model, ood_x, [contract.OOD_SCORE_NAME])[contract.OOD_SCORE_NAME]
                out["open_set"] = open_set_rates(scores, ood.astype(np.float64), threshold)
    return out


def throughput(path: str | os.PathLike, images: np.ndarray, batch_size: int, *, min_seconds: float = 3.0,
               threads: int | None = None, clock: str = "wall") -> float:
    """Images per second of raw onnxruntime (the apps' outputs: probabilities, logits, ood_score) at
    ``batch_size`` on the CPU, after one warm-up batch; at least ``min_seconds`` of work. ``clock="cpu"``
    (with ``threads=1``): per second of this process's CPU time, which other jobs on a shared machine do not
    inflate the way they inflate wall-clock time."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs() if o.name != contract.CAM_NAME]
    batches = [np.ascontiguousarray(images[i:i + batch_size], np.float32)
               for i in range(0, len(images) - batch_size + 1, batch_size)] or [
        np.ascontiguousarray(images[:batch_size], np.float32)]
    session.run(names, {contract.INPUT_NAME: batches[0]})
    now = time.process_time if clock == "cpu" else time.perf_counter
    done, started = 0, now()
    while True:
        for batch in batches:
            session.run(names, {contract.INPUT_NAME: batch})
            done += len(batch)
        elapsed = now() - started
        if elapsed >= min_seconds:
            return done / elapsed


# --- the whole step: quantize, re-fit, re-measure, write (and ship) --------------------------------------------

def held_out(data, card: dict) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """Images, labels, cross-fit?, description: where the trust values are re-fitted — the same images as the
    float model's (its validation split; a model without one is cross-fitted on the test halves, docs/trust.md)."""
    if len(data.val):
        cifar = getattr(data, "name", contract.CIFAR10_DATASET) == contract.CIFAR10_DATASET
        source = (f"the validation split: the last {len(data.val):,} training images, never trained on" if cifar
                  else f"the validation split: {len(data.val):,} images held out from training, never trained on")
        return data.val.x, data.val.y, False, source + " (re-fitted on the int8 graph)"
    fitted_on = (card.get(contract.CARD_CALIBRATION) or {}).get("fitted_on") or (
        f"the {len(data.test):,} test images, cross-fitted on their two halves")
    return data.test.x, data.test.y, True, fitted_on + " (re-fitted on the int8 graph)"


def calibration_pool(data) -> tuple[np.ndarray, str]:
    """Where the activation ranges are calibrated: held-out training images (the validation split), never the
    test set; a model trained on every training image has none held out, so a sample of its training images."""
    if len(data.val):
        return data.val.x, "the validation split (held-out training images)"
    return data.train.x, "the training images (this model trained on all of them: none are held out)"


def _relative_source(float_path: Path, out_dir: Path) -> str:
    from cifar10.paths import portable_paths

    try:
        return Path(os.path.relpath(float_path.resolve(), out_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return portable_paths(str(float_path))


def quantize_model(float_path: str | os.PathLike, out_path: str | os.PathLike, data, *,
                   method: str = DEFAULT_METHOD, calibration: int = DEFAULT_CALIBRATION_IMAGES,
                   keep_head_float: bool = True, ood_x: np.ndarray | None = None, timing: bool = True,
                   command: str | None = None, source_path: str | os.PathLike | None = None,
                   max_drop: float = MAX_ACCURACY_DROP, final_dir: str | os.PathLike | None = None,
                   bank_dtype: str = "int8", log=None) -> tuple[Path, dict]:
    """Quantize the float model ``float_path`` (with its card ``<name>.json``) into ``out_path`` (+ its card),
    calibrated and re-fitted on ``data`` (a :class:`training.data.Dataset` split like the model's training);
    the card is re-measured on the written file. ``source_path``: where the float file will live (the card's
    ``quantization.source``, relative to ``final_dir``, where the int8 file will live: default its folder;
    default ``float_path``). Returns the int8 path and its card."""
    from cifar10.machine import machine
    from cifar10.paths import portable_paths
    from cifar10.registry import read_card

    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    float_path, out_path = Path(float_path), Path(out_path)
    float_card = read_card(float_path.with_suffix(".json"))
    class_names = tuple(getattr(data, "class_names", None) or contract.CLASS_NAMES)
    pool, pool_text = calibration_pool(data)
    calib = calibration_sample(pool, calibration)
    images, labels, crossfit, source = held_out(data, float_card)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.stem}.int8-", dir=out_path.parent))
    try:
        work = staging / out_path.name
        started = time.perf_counter()
        log(f"Quantizing {float_path.name}: {method} calibration on {len(calib):,} images of {pool_text} ...")
        done = quantize_graph(float_path, work, calib, method=method, keep_head_float=keep_head_float)
        quantized, trust = refit(onnx.load(work), images, labels, source=source, crossfit=crossfit,
                                 train_images=data.train.x, bank_dtype=bank_dtype)
        onnx.save(quantized, work)
        seconds = time.perf_counter() - started
        threshold = trust.get(contract.CARD_OPEN_SET, {}).get("threshold")
        log("Measuring the float and the int8 model on the test images ...")
        measured = measure(work, data.test.x, data.test.y, threshold=threshold, class_names=class_names, ood_x=ood_x)
        float_measured = measure(float_path, data.test.x, data.test.y, class_names=class_names,
                                 threshold=contract.open_set_threshold(float_card), ood_x=ood_x)
        float_probs, int8_probs = float_measured["probabilities"], measured["probabilities"]
        drop = float_measured["accuracy"] - measured["accuracy"]
        speed = {}
        if timing:
            log("Timing float vs int8 (raw onnxruntime, CPU) ...")
            sample = data.test.x[:1024]
            for batch, secs in ((256, 3.0), (1, 2.0)):
                f_rate = throughput(float_path, sample, batch, min_seconds=secs)
                q_rate = throughput(work, sample, batch, min_seconds=secs)
                speed[f"batch_{batch}"] = {"float_img_per_s": round(f_rate, 1), "int8_img_per_s": round(q_rate, 1),
                                           "speedup": round(q_rate / f_rate, 2)}
        card = _int8_card(float_card, out_path.name, measured, trust, ood_x)
        card["quantization"] = {
            "source": _relative_source(Path(source_path or float_path), Path(final_dir or out_path.parent)),
            "source_sha256": sha256(float_path),
            **done,
            "method": method,
            "calibration_images": int(len(calib)),
            "calibration_from": pool_text + ", a fixed random sample (seed 0)",
            **({"knn_bank": "int8, one symmetric scale per bank image (Cast + Mul, folded at load); kNN arithmetic float32"
                if bank_dtype == "int8" else "float32"} if open_set_score(quantized) == "knn" else {}),
            "float_test_accuracy": round(float_measured["accuracy"], 4),
            "int8_test_accuracy": round(measured["accuracy"], 4),
            "accuracy_drop": round(drop, 4),
            "max_accuracy_drop": max_drop,
            "meets_accuracy_bar": bool(drop <= max_drop + 1e-12),
            "float_test_ece": round(float_measured["ece"], 4),
            "prediction_agreement_with_float": round(float((float_probs.argmax(1) == int8_probs.argmax(1)).mean()), 4),
            "max_abs_probability_diff_vs_float": round(float(np.abs(float_probs - int8_probs).max()), 4),
            "float_size_bytes": float_path.stat().st_size,
            "int8_size_bytes": work.stat().st_size,
            **({"throughput": speed} if speed else {}),
            "cpu": machine(),
            "seconds": round(seconds, 1),
            "command": command,
        }
        if "open_set" in float_measured:
            card["quantization"]["float_open_set"] = {k: round(v, 4) if isinstance(v, float) else v
                                                      for k, v in float_measured["open_set"].items()}
        card_path = staging / out_path.with_suffix(".json").name
        # Only the new entry needs it: the float card's text is already portable (applying it twice would turn
        # "…/runs" into "……/runs").
        card["quantization"] = portable_paths(card["quantization"])
        card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        card_path.replace(out_path.with_suffix(".json"))
        work.replace(out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"int8 {out_path.name}: test accuracy {measured['accuracy']:.4f} (float {float_measured['accuracy']:.4f}, "
        f"drop {drop * 100:+.2f} points), {out_path.stat().st_size / 1e6:.1f} MB "
        f"(float {float_path.stat().st_size / 1e6:.1f} MB)"
        + (f", batch 256: {speed['batch_256']['speedup']}x" if speed else ""))
    return out_path, card


def _int8_card(float_card: dict, file_name: str, measured: dict, trust: dict, ood_x) -> dict:
    """The float card with every measured figure replaced by the int8 file's."""
    metrics = measured["metrics"]
    card = dict(float_card)
    summary = str(float_card.get("summary") or "")
    card["summary"] = summary if summary.endswith("(int8)") else f"{summary} (int8)"
    card.update({"test_accuracy": round(metrics["accuracy"], 4), "precision_macro": round(metrics["precision_macro"], 4),
                 "recall_macro": round(metrics["recall_macro"], 4), "f1_macro": round(metrics["f1_macro"], 4),
                 "ece": round(metrics["ece"], 4), "test_metrics": metrics})
    if trust:
        calib = dict(trust[contract.CARD_CALIBRATION])
        calib.update({"test_ece_after": round(measured["ece"], 4),
                      "test_ece_before": round(measured.get("test_ece_before", float("nan")), 4)})
        open_set = dict(trust[contract.CARD_OPEN_SET])
        rates = {"test_flagged": round(measured.get("test_flagged", float("nan")), 4)}
        if "open_set" in measured:
            found = measured["open_set"]
            rates.update({"ood_flagged": round(found["ood_flagged"], 4), "auroc": round(found["auroc"], 4),
                          "fpr_at_95_tpr": round(found["fpr_at_95_tpr"], 4), "ood_images": found["n_out"],
                          "ood_set": "benchmarks/ood_set.py (docs/trust.md)"})
        open_set["measured"] = rates
        card[contract.CARD_CALIBRATION], card[contract.CARD_OPEN_SET] = calib, open_set
    card["onnx"] = {**dict(float_card.get("onnx") or {}), "file": file_name, "format": "int8 (QDQ)"}
    card["exported"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        import onnxruntime
        card["libraries"] = {**dict(float_card.get("libraries") or {}), "onnxruntime": onnxruntime.__version__}
    except ImportError:
        pass
    return card


def load_model_data(card: dict, *, data_dir=None, data_folder=None):
    """The dataset a model was trained on, split as in training: CIFAR-10 (its validation size from the card)
    or, for an own-class model, ``data_folder`` re-split with the card's settings (same seed and size)."""
    if card.get(contract.CARD_DATASET, contract.CIFAR10_DATASET) == contract.CIFAR10_DATASET and data_folder is None:
        from training.data import VALIDATION_SIZE, load_cifar10

        validation = (card.get("data") or {}).get("validation")
        return load_cifar10(data_dir, validation_size=VALIDATION_SIZE if validation is None else int(validation))
    if data_folder is None:
        raise QuantizeError(f"{card.get('name')} was trained on {card.get(contract.CARD_DATASET)!r}: pass its "
                            "images folder with --data PATH (split again exactly as in training)")
    from training.export import load_run_data

    settings = dict((card.get("training") or {}).get("settings") or {})
    settings["data"] = str(data_folder)
    settings.setdefault("image_size", card.get(contract.CARD_IMAGE_SIZE))
    return load_run_data({"settings": settings}, data_dir)


def float_twin_path(onnx_path: Path) -> Path:
    """Where the float twin of a shipped int8 model lives: ``<folder>/float/<name>.onnx``."""
    return onnx_path.parent / FLOAT_SUBDIR / onnx_path.name


def quantize_in_place(onnx_path: str | os.PathLike, data, *, max_drop: float = MAX_ACCURACY_DROP,
                      force: bool = False, **kwargs) -> tuple[bool, Path, dict]:
    """Replace ``<folder>/<name>.onnx`` by its int8 twin when the test accuracy drops by at most ``max_drop``
    (the float model, card and plots move to ``<folder>/float/``: leaderboard and ``evaluate`` only); otherwise
    keep the float model and say why in its card (``quantization.int8``: "not shipped").
    Returns (shipped?, the model path the apps now use, the card of that path)."""
    onnx_path = Path(onnx_path)
    if is_quantized(onnx_path):
        raise QuantizeError(f"{onnx_path} is already int8 (its float source: "
                            f"{FLOAT_SUBDIR}/{onnx_path.name}, when it was quantized here)")
    twin = float_twin_path(onnx_path)
    staging = Path(tempfile.mkdtemp(prefix=f".{onnx_path.stem}.quantize-", dir=onnx_path.parent))
    try:
        int8_path, card = quantize_model(onnx_path, staging / onnx_path.name, data, source_path=twin,
                                         final_dir=onnx_path.parent,
                                         max_drop=max_drop, **kwargs)
        q = card["quantization"]
        if not (q["meets_accuracy_bar"] or force):
            float_card_path = onnx_path.with_suffix(".json")
            float_card = json.loads(float_card_path.read_text(encoding="utf-8"))
            float_card["quantization"] = {
                "int8": "not shipped",
                "reason": (f"static int8 quantization ({q['method']}, {q['calibration_images']} calibration images) "
                           f"lost {q['accuracy_drop'] * 100:.2f} points of test accuracy ({q['float_test_accuracy']:.4f} "
                           f"-> {q['int8_test_accuracy']:.4f}); the bar is {max_drop * 100:.1f} points"),
                **{k: q[k] for k in ("method", "calibration_images", "float_test_accuracy", "int8_test_accuracy",
                                     "accuracy_drop", "max_accuracy_drop", "int8_size_bytes", "throughput", "cpu",
                                     "command") if k in q}}
            partial = float_card_path.with_name(float_card_path.name + ".part")
            partial.write_text(json.dumps(float_card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            partial.replace(float_card_path)
            return False, onnx_path, float_card
        twin.parent.mkdir(parents=True, exist_ok=True)
        stem = onnx_path.stem
        for plot in (f"{stem}.curves.png", f"{stem}.confusion_matrix.png"):  # the plots stay beside both
            if (onnx_path.parent / plot).exists():
                shutil.copy2(onnx_path.parent / plot, twin.parent / plot)
        onnx_path.with_suffix(".json").replace(twin.with_suffix(".json"))
        onnx_path.replace(twin)
        int8_path.with_suffix(".json").replace(onnx_path.with_suffix(".json"))
        int8_path.replace(onnx_path)
        return True, onnx_path, card
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def quantize_after_export(onnx_path: Path, card: dict, data, *, command: str | None = None,
                          log=None) -> tuple[Path, dict]:
    """`cifar10 export --int8` and own-class `cifar10 train --data`: quantize the model just exported (in
    place, within the accuracy bar); a quantization that fails leaves the float export as it is."""
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    try:
        shipped, path, new_card = quantize_in_place(onnx_path, data, command=command, log=log)
    except Exception as exc:  # never lose a finished float export to a quantization problem
        log(f"int8 quantization failed, the float model stays: {type(exc).__name__}: {exc}")
        return onnx_path, card
    if not shipped:
        log(f"kept the float model: {new_card['quantization']['reason']}")
    return path, new_card
