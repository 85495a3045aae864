"""Calibration, the open-set score and class activation maps, added to an exported ONNX graph.

One function, :func:`add_trust_outputs`, turns a contract-v1 graph (``probabilities`` only, test-time
augmentation averaged inside) into a contract-v2 graph (see :mod:`cifar10.contract`):

- ``logits``: the per-view pre-softmax logits pushed through the same (linear) averaging as the
  probabilities, i.e. the TTA-weighted mean logits;
- ``probabilities`` = ``softmax(log(p) / T)`` of the old averaged probabilities ``p``: temperature
  scaling that keeps the argmax (a monotone map of ``p``), so accuracy is unchanged to the last image;
- ``ood_score``: the open-set score chosen by measurement (``benchmarks/trust.py``);
- ``cam``: class activation maps when the un-augmented view's head is GlobalAveragePool + (Squeeze|
  Reshape|Flatten) + MatMul + Add.

``cifar10 export`` uses it for every new export (temperature and threshold fitted on the validation split),
and ``benchmarks/trust.py`` used it to upgrade the shipped models in place (their Keras checkpoints are not
kept in git). Only numpy, scipy and onnx: no TensorFlow.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cifar10 import contract

SCORES = ("knn", "energy", "max_logit", "msp")
DEFAULT_SCORE = "knn"
KNN_K = 10            # the k-th nearest training feature (Sun et al. 2022, "deep nearest neighbours")
KNN_BANK_SIZE = 1000  # training images whose features the graph keeps (bank x feature-width float32)
TARGET_PASS_RATE = 0.95  # share of held-out in-distribution images that must pass the open-set threshold
_LINEAR_OPS = {"Add", "Sub", "Mul", "Div", "Identity"}
_AUGMENT_OPS = {"ReverseSequence", "Pad", "Slice"}  # ops that only the flipped / shifted TTA views go through


class GraphError(ValueError):
    """The graph does not have the shape this module knows how to extend."""


def _producers(graph) -> dict:
    return {out: node for node in graph.node for out in node.output}


# Ops whose inputs after the first are shapes, indices or sizes, not image data: not followed when looking
# for the augmentation ops an image went through (a Flatten's shape arithmetic may well use a Slice).
_DATA_FIRST_OPS = {"Reshape", "Expand", "Slice", "Tile", "Resize", "Squeeze", "Unsqueeze", "Pad", "Gather",
                   "ReverseSequence", "TopK", "ReduceMean", "ReduceSum", "ReduceMax", "Clip"}


def _ancestor_ops(graph, tensor: str) -> set[str]:
    """The op types on the data paths that lead to ``tensor``."""
    producers, seen, ops, stack = _producers(graph), set(), set(), [tensor]
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        ops.add(node.op_type)
        stack.extend(node.input[:1] if node.op_type in _DATA_FIRST_OPS else node.input)
    return ops


def _tail(graph, starts: set[str], output: str) -> list:
    """Nodes (in graph order) on a path from any tensor in ``starts`` to ``output``."""
    downstream, tensors = [], set(starts)
    for node in graph.node:  # graph.node is topologically sorted
        if any(i in tensors for i in node.input):
            downstream.append(node)
            tensors.update(node.output)
    needed, wanted = [], {output}
    for node in reversed(downstream):
        if any(o in wanted for o in node.output):
            needed.append(node)
            wanted.update(node.input)
    return list(reversed(needed))


def plain_features(model: onnx.ModelProto) -> str:
    """The un-augmented view's penultimate features [N, D]: the input of the MatMul that makes its logits."""
    graph = model.graph
    producers = _producers(graph)
    plain = _plain_softmax(graph, [n for n in graph.node if n.op_type == "Softmax"])
    if plain is None:
        raise GraphError("cannot tell the un-augmented view's Softmax apart from the TTA views'")
    node = producers.get(plain.input[0])
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    while node is not None and node.op_type in ("Add", "Mul", "Div", "Identity"):
        data = [i for i in node.input if i not in constants]
        if len(data) != 1:
            break
        node = producers.get(data[0])
    if node is None or node.op_type not in ("MatMul", "Gemm"):
        raise GraphError("the logits do not come from a MatMul / Gemm (a Dense layer)")
    return node.input[0]


def _plain_softmax(graph, softmaxes: list):
    plain = [s for s in softmaxes if not (_ancestor_ops(graph, s.input[0]) & _AUGMENT_OPS)]
    return plain[0] if len(plain) == 1 else None


def num_classes(model_or_graph) -> int:
    """C: the width of the graph's ``probabilities`` output (tf2onnx writes it), else of its Softmax's MatMul."""
    graph = getattr(model_or_graph, "graph", model_or_graph)
    for output in graph.output:
        if output.name == contract.OUTPUT_NAME:
            dims = output.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value > 0:
                return int(dims[1].dim_value)
    inits = {i.name: i for i in graph.initializer}
    widths = [numpy_helper.to_array(inits[node.input[1]]).shape[-1] for node in graph.node
              if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in inits]
    if not widths:
        raise GraphError("cannot tell the number of classes of the graph")
    return int(widths[-1])  # the last Dense layer: the classifier head


def _cam_nodes(graph, softmaxes: list, classes: int) -> tuple[list, list, tuple] | None:
    """Nodes computing ``cam`` [N, h, w, C] for the un-augmented view, or None if the head is not GAP + Dense."""
    producers = _producers(graph)
    inits = {i.name: i for i in graph.initializer}
    plain = _plain_softmax(graph, softmaxes)
    if plain is None:
        return None
    add = producers.get(plain.input[0])
    if add is None or add.op_type != "Add":
        return None
    matmul, bias = None, None
    for a, b in (add.input, reversed(add.input)):
        if a in producers and producers[a].op_type == "MatMul" and b in inits:
            matmul, bias = producers[a], b
    if matmul is None or matmul.input[1] not in inits:
        return None
    weights = numpy_helper.to_array(inits[matmul.input[1]])
    if weights.ndim != 2 or weights.shape[1] != classes:
        return None
    squeeze = producers.get(matmul.input[0])
    if squeeze is None or squeeze.op_type not in ("Squeeze", "Reshape", "Flatten"):
        return None
    pool = producers.get(squeeze.input[0])
    if pool is None or pool.op_type != "GlobalAveragePool":
        return None
    feature = pool.input[0]  # NCHW
    nodes = [helper.make_node("Transpose", [feature], ["cam__nhwc"], perm=[0, 2, 3, 1], name="cam__transpose"),
             helper.make_node("MatMul", ["cam__nhwc", matmul.input[1]], ["cam__matmul"], name="cam__matmul"),
             helper.make_node("Add", ["cam__matmul", bias], [contract.CAM_NAME], name="cam__bias")]
    return nodes, [], (feature,)


def add_trust_outputs(model: onnx.ModelProto, temperature: float = 1.0, score: str = DEFAULT_SCORE,
                      cam: bool = True, bank: np.ndarray | None = None, k: int = KNN_K,
                      expose_features: bool = False) -> onnx.ModelProto:
    """A copy of a contract graph with ``logits``, calibrated ``probabilities``, ``ood_score`` and (when the
    head allows it) ``cam`` outputs, stamped as contract version 2 (a version-3 graph from ``to_onnx``, any
    class count and input size, stays version 3). Works on graphs with ``probabilities`` only.

    ``score="knn"`` needs ``bank``: L2-normalised penultimate features of training images ``[B, D]``
    (:func:`feature_bank`); the score is minus the cosine similarity to the k-th nearest of them.
    ``expose_features`` adds a ``features`` output (for fitting; never in a shipped file)."""
    if not (temperature > 0 and np.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive number, not {temperature!r}")
    if score not in SCORES:
        raise ValueError(f"unknown open-set score {score!r}: one of {', '.join(SCORES)}")
    if score == "knn" and (bank is None or len(bank) < k):
        raise ValueError(f"the knn score needs a feature bank of at least k={k} rows")
    features = plain_features(model) if (score == "knn" or expose_features) else None
    classes = num_classes(model)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    outputs = [o.name for o in graph.output]
    if contract.OUTPUT_NAME not in outputs:
        raise GraphError(f"the graph has no '{contract.OUTPUT_NAME}' output")
    if set(outputs) & set(contract.OPTIONAL_OUTPUTS):
        raise GraphError("the graph already has contract-v2 outputs (calibrate the v1 graph)")
    softmaxes = [n for n in graph.node if n.op_type == "Softmax"]
    if not softmaxes:
        raise GraphError("the graph has no Softmax node: cannot find the logits")

    # 1. Rename the old output tensor (everything below reads "probabilities_tta") and any internal tensor
    #    whose name the new outputs need (a v1 graph may well call its pre-softmax tensor "logits").
    averaged = "probabilities_tta"
    renames = {contract.OUTPUT_NAME: averaged}
    renames.update({name: f"{name}__v1" for name in (*contract.OPTIONAL_OUTPUTS, averaged)})
    for node in graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    soft_out = {s.output[0]: s.input[0] for s in softmaxes}

    # 2. logits: the tail that averages the views' probabilities, replayed on the views' logits.
    tail = _tail(graph, set(soft_out), averaged)
    if averaged in soft_out:  # no TTA: the Softmax is the output
        new_nodes = [helper.make_node("Identity", [soft_out[averaged]], [contract.LOGITS_NAME], name="logits__out")]
    else:
        bad = sorted({n.op_type for n in tail} - _LINEAR_OPS)
        if bad:
            raise GraphError(f"the views are combined with non-linear ops ({', '.join(bad)}): cannot average logits")
        renamed = dict(soft_out)
        new_nodes = []
        for node in tail:
            for out in node.output:
                renamed[out] = contract.LOGITS_NAME if out == averaged else f"{out}__logits"
            copy = helper.make_node(node.op_type, [renamed.get(i, i) for i in node.input],
                                    [renamed[o] for o in node.output], name=f"{node.name or node.output[0]}__logits")
            copy.attribute.extend(node.attribute)
            new_nodes.append(copy)

    # 3. Calibrated probabilities: softmax(log(p) / T); p is clipped so that log(0) cannot appear.
    inits = [numpy_helper.from_array(np.array(1e-30, np.float32), "calib__eps"),
             numpy_helper.from_array(np.array(temperature, np.float32), "calib__temperature")]
    new_nodes += [helper.make_node("Clip", [averaged, "calib__eps"], ["calib__clipped"], name="calib__clip"),
                  helper.make_node("Log", ["calib__clipped"], ["calib__log"], name="calib__log"),
                  helper.make_node("Div", ["calib__log", "calib__temperature"], ["calib__scaled"], name="calib__div"),
                  helper.make_node("Softmax", ["calib__scaled"], [contract.OUTPUT_NAME], axis=-1, name="calib__softmax")]

    # 4. The open-set score, larger = less like CIFAR-10.
    if features is not None:
        features = renames.get(features, features)
    if score == "knn":  # -(cosine similarity to the k-th nearest training feature)
        bank = np.asarray(bank, np.float32)
        inits += [numpy_helper.from_array(np.ascontiguousarray(bank.T), "knn__bank_t"),
                  numpy_helper.from_array(np.array(1e-12, np.float32), "knn__eps"),
                  numpy_helper.from_array(np.array([k], np.int64), "knn__k")]
        new_nodes += [helper.make_node("Flatten", [features], ["knn__flat"], axis=1),
                      helper.make_node("ReduceL2", ["knn__flat"], ["knn__norm"], axes=[1], keepdims=1),
                      helper.make_node("Add", ["knn__norm", "knn__eps"], ["knn__norm_eps"]),
                      helper.make_node("Div", ["knn__flat", "knn__norm_eps"], ["knn__unit"]),
                      helper.make_node("MatMul", ["knn__unit", "knn__bank_t"], ["knn__sims"]),
                      helper.make_node("TopK", ["knn__sims", "knn__k"], ["knn__top", "knn__top_idx"], axis=1),
                      helper.make_node("ReduceMin", ["knn__top"], ["knn__kth"], axes=[1], keepdims=0),
                      helper.make_node("Neg", ["knn__kth"], [contract.OOD_SCORE_NAME])]
    elif score == "energy":  # -T * logsumexp(logits / T)  (Liu et al. 2020), on the calibrated scale
        new_nodes += [helper.make_node("Div", [contract.LOGITS_NAME, "calib__temperature"], ["ood__scaled"]),
                      helper.make_node("ReduceLogSumExp", ["ood__scaled"], ["ood__lse"], axes=[1], keepdims=0),
                      helper.make_node("Mul", ["ood__lse", "calib__temperature"], ["ood__energy"]),
                      helper.make_node("Neg", ["ood__energy"], [contract.OOD_SCORE_NAME])]
    elif score == "max_logit":
        new_nodes += [helper.make_node("ReduceMax", [contract.LOGITS_NAME], ["ood__max"], axes=[1], keepdims=0),
                      helper.make_node("Neg", ["ood__max"], [contract.OOD_SCORE_NAME])]
    else:  # msp: 1 - the calibrated top probability
        inits.append(numpy_helper.from_array(np.array(1.0, np.float32), "ood__one"))
        new_nodes += [helper.make_node("ReduceMax", [contract.OUTPUT_NAME], ["ood__max"], axes=[1], keepdims=0),
                      helper.make_node("Sub", ["ood__one", "ood__max"], [contract.OOD_SCORE_NAME])]

    graph.node.extend(new_nodes)
    graph.initializer.extend(inits)
    del graph.output[:]
    n, k = "N", classes
    graph.output.extend([helper.make_tensor_value_info(contract.OUTPUT_NAME, TensorProto.FLOAT, [n, k]),
                         helper.make_tensor_value_info(contract.LOGITS_NAME, TensorProto.FLOAT, [n, k]),
                         helper.make_tensor_value_info(contract.OOD_SCORE_NAME, TensorProto.FLOAT, [n])])
    if expose_features:
        graph.node.append(helper.make_node("Flatten", [features], ["features"], axis=1, name="features__out"))
        graph.output.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, [n, "d"]))

    # 5. Class activation maps (exact: GAP + Dense head), from the un-augmented view.
    found = _cam_nodes(graph, softmaxes, classes) if cam else None
    if found is not None:
        cam_nodes, cam_inits, _ = found
        graph.node.extend(cam_nodes)
        graph.initializer.extend(cam_inits)
        graph.output.append(helper.make_tensor_value_info(contract.CAM_NAME, TensorProto.FLOAT, [n, "h", "w", k]))

    meta = {p.key: p.value for p in model.metadata_props}
    # A version-3 graph (any classes and size) stays version 3; a version-1 graph becomes version 2.
    version = contract.CONTRACT_VERSION if meta.get(contract.META_CONTRACT) == contract.CONTRACT_VERSION else "2"
    meta.update({contract.META_CONTRACT: version, contract.META_TEMPERATURE: repr(float(temperature)),
                 contract.META_OOD_SCORE: score if score != "knn" else f"knn (k={k}, {len(bank)} training images)"})
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model


# --- fitting -----------------------------------------------------------------------------------------------

def calibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """What the v2 graph computes from the averaged probabilities: ``softmax(log(p) / T)`` (float64)."""
    z = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-30, None)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``calibrated(p, T)`` on held-out images."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels).astype(int)

    def nll(log_t: float) -> float:
        p = calibrated(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-300, None)).mean())
    result = minimize_scalar(nll, bounds=(np.log(0.02), np.log(50.0)), method="bounded",
                             options={"xatol": 1e-5})
    return float(np.exp(result.x))


def normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, np.float32).reshape(len(features), -1)
    return features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)


def knn_scores(features: np.ndarray, bank: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """Minus the cosine similarity of each row to its k-th nearest bank row (what the graph computes)."""
    sims = normalise(features) @ np.asarray(bank, np.float32).T
    return -np.partition(sims, -k, axis=1)[:, -k].astype(np.float64)


def ood_scores(score: str, probabilities: np.ndarray, logits: np.ndarray, temperature: float,
               features: np.ndarray | None = None, bank: np.ndarray | None = None, k: int = KNN_K) -> np.ndarray:
    """The graph's ``ood_score`` in numpy (for measuring candidates before one is baked in)."""
    logits = np.asarray(logits, np.float64)
    if score == "knn":
        if features is None or bank is None:
            raise ValueError("the knn score needs features and a bank")
        return knn_scores(features, bank, k)
    if score == "energy":
        z = logits / temperature
        m = z.max(axis=1)
        return -temperature * (m + np.log(np.exp(z - m[:, None]).sum(axis=1)))
    if score == "max_logit":
        return -logits.max(axis=1)
    if score == "msp":
        return 1.0 - calibrated(probabilities, temperature).max(axis=1)
    raise ValueError(f"unknown open-set score {score!r}")


def threshold_for(scores_in: np.ndarray, pass_rate: float = TARGET_PASS_RATE) -> float:
    """The threshold that lets ``pass_rate`` of these in-distribution scores pass (score <= threshold)."""
    return float(np.quantile(np.asarray(scores_in, np.float64), pass_rate, method="higher"))


def open_set_rates(scores_in: np.ndarray, scores_out: np.ndarray, threshold: float) -> dict:
    """Flag rates at ``threshold`` plus threshold-free AUROC and FPR at 95 % TPR (OOD = positive class)."""
    from sklearn.metrics import roc_auc_score

    scores_in, scores_out = np.asarray(scores_in, np.float64), np.asarray(scores_out, np.float64)
    y = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    s = np.r_[scores_in, scores_out]
    # FPR at 95 % TPR: the threshold that flags 95 % of the OOD images; how many in-distribution ones it flags.
    cut = np.quantile(scores_out, 0.05, method="lower")
    return {"in_distribution_flagged": float((scores_in > threshold).mean()),
            "ood_flagged": float((scores_out > threshold).mean()),
            "auroc": float(roc_auc_score(y, s)),
            "fpr_at_95_tpr": float((scores_in >= cut).mean()),
            "n_in": int(len(scores_in)), "n_out": int(len(scores_out))}


def graph_metadata(model: onnx.ModelProto) -> dict:
    return {p.key: p.value for p in model.metadata_props}


def describe(model: onnx.ModelProto) -> str:
    meta = graph_metadata(model)
    return json.dumps({"outputs": [o.name for o in model.graph.output], "temperature": meta.get(contract.META_TEMPERATURE),
                       "ood_score": meta.get(contract.META_OOD_SCORE)})


# --- the whole step, as export and the benchmark use it --------------------------------------------------

def raw_outputs(model: onnx.ModelProto, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
    """``p`` (view-averaged probabilities), ``z`` (logits) and ``f`` (un-augmented view's penultimate
    features) of a v1 (or plain v3) graph over uint8/float images [N, S, S, 3], with onnxruntime."""
    import onnxruntime as ort

    probe = add_trust_outputs(model, 1.0, score="energy", cam=False, expose_features=True)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [contract.OUTPUT_NAME, contract.LOGITS_NAME, "features"]
    parts = {key: [] for key in "pzf"}
    for start in range(0, len(images), batch_size):
        feed = np.ascontiguousarray(images[start:start + batch_size], np.float32)
        for key, value in zip("pzf", session.run(names, {contract.INPUT_NAME: feed})):
            parts[key].append(value)
    return {key: np.concatenate(values) for key, values in parts.items()}


def bank_indices(n_train: int, size: int = KNN_BANK_SIZE, seed: int = 0) -> np.ndarray:
    """Which training images make the kNN feature bank: a fixed random sample."""
    return np.sort(np.random.default_rng(seed).choice(n_train, size=min(size, n_train), replace=False))


def fit_trust(probabilities: np.ndarray, logits: np.ndarray, labels: np.ndarray, score: str = DEFAULT_SCORE,
              features: np.ndarray | None = None, bank: np.ndarray | None = None) -> dict:
    """Temperature, ECE before/after and the open-set threshold, all fitted on the same held-out images."""
    from cifar10.metrics import expected_calibration_error

    temperature = fit_temperature(probabilities, labels)
    scores = ood_scores(score, probabilities, logits, temperature, features, bank)
    threshold = threshold_for(scores)
    return {"temperature": temperature,
            "ece_before": expected_calibration_error(labels, probabilities),
            "ece_after": expected_calibration_error(labels, calibrated(probabilities, temperature)),
            "threshold": threshold, "flagged": float((scores > threshold).mean()), "n": int(len(labels))}


def cross_fit(probabilities: np.ndarray, logits: np.ndarray, labels: np.ndarray, score: str = DEFAULT_SCORE,
              features: np.ndarray | None = None, bank: np.ndarray | None = None) -> dict:
    """For a model with no held-out images: split the test set in two halves, fit on each half and measure on
    the other (ECE and flag rate out of sample); the shipped values are fitted on all of it."""
    from cifar10.metrics import expected_calibration_error

    n = len(labels)
    halves = (np.arange(n) < n // 2, np.arange(n) >= n // 2)
    report = []
    for fit_on, measure_on in (halves, halves[::-1]):
        sub = (lambda a, m: None if a is None else a[m])
        fitted = fit_trust(probabilities[fit_on], logits[fit_on], labels[fit_on], score, sub(features, fit_on), bank)
        p, y = probabilities[measure_on], labels[measure_on]
        s = ood_scores(score, p, logits[measure_on], fitted["temperature"], sub(features, measure_on), bank)
        report.append({"temperature": fitted["temperature"], "threshold": fitted["threshold"],
                       "other_half_ece_before": expected_calibration_error(y, p),
                       "other_half_ece_after": expected_calibration_error(y, calibrated(p, fitted["temperature"])),
                       "other_half_flagged": float((s > fitted["threshold"]).mean())})
    whole = fit_trust(probabilities, logits, labels, score, features, bank)
    whole["cross_fit"] = report
    return whole


def feature_bank(model: onnx.ModelProto, train_images: np.ndarray) -> np.ndarray:
    """L2-normalised penultimate features of the bank's training images (:func:`bank_indices`)."""
    return normalise(raw_outputs(model, train_images[bank_indices(len(train_images))])["f"])


def upgrade(model: onnx.ModelProto, images: np.ndarray, labels: np.ndarray, *, score: str = DEFAULT_SCORE,
            source: str, crossfit: bool = False, train_images: np.ndarray | None = None,
            held_out: dict | None = None, bank: np.ndarray | None = None) -> tuple[onnx.ModelProto, dict]:
    """Fit on ``images``/``labels`` and return the v2 graph plus the card's ``calibration`` and ``open_set``.

    ``train_images``: where the knn score's bank comes from (or pass ``bank``); ``held_out``: the
    :func:`raw_outputs` of ``images`` when the caller already has them."""
    if score == "knn" and bank is None:
        if train_images is None:
            raise ValueError("the knn score needs train_images (its feature bank)")
        bank = feature_bank(model, train_images)
    raw = held_out if held_out is not None else raw_outputs(model, images)
    fitted = (cross_fit if crossfit else fit_trust)(raw["p"], raw["z"], np.asarray(labels).astype(int), score,
                                                    raw["f"], bank)
    upgraded = add_trust_outputs(model, fitted["temperature"], score, bank=bank)
    has_cam = any(o.name == contract.CAM_NAME for o in upgraded.graph.output)
    return upgraded, trust_card(fitted, score, source=source, crossfit=crossfit, bank=bank, has_cam=has_cam)


def trust_card(fitted: dict, score: str, *, source: str, crossfit: bool, bank: np.ndarray | None,
               has_cam: bool) -> dict:
    """The card's ``calibration`` and ``open_set`` entries for what :func:`fit_trust` / :func:`cross_fit`
    fitted (also used when an int8 twin is re-fitted: training.quantize)."""
    card = {
        contract.CARD_CALIBRATION: {
            "method": "temperature scaling of the view-averaged probabilities: softmax(log(p) / T)",
            "temperature": round(fitted["temperature"], 4), "ece_before": round(fitted["ece_before"], 4),
            "ece_after": round(fitted["ece_after"], 4), "fitted_on": source, "images": fitted["n"]},
        contract.CARD_OPEN_SET: {
            "score": score, "threshold": float(np.float32(fitted["threshold"])),
            **({"k": KNN_K, "bank_images": int(len(bank)), "bank": "a fixed random sample of the training images "
                "(seed 0); their L2-normalised penultimate features are stored in the graph"} if score == "knn" else {}),
            "target_pass_rate": TARGET_PASS_RATE, "fitted_on": source,
            "held_out_flagged": round(fitted["flagged"], 4)},
    }
    if crossfit:
        card[contract.CARD_CALIBRATION]["cross_fit"] = [
            {k: round(v, 4) for k, v in half.items()} for half in fitted["cross_fit"]]
    card[contract.CARD_CALIBRATION]["has_cam"] = has_cam
    return card

