"""The ONNX contract between training and every app: the one place that defines it.

An exported model is ``exported_models/<name>.onnx`` plus a model card ``<name>.json``.
Input: float32 NHWC ``[N, S, S, 3]``, raw RGB values 0..255 (normalisation lives in the graph).
Output: ``[N, C]`` probabilities in the order of the model's class names.

Version 1 and 2 files are CIFAR-10 models: ``S = 32``, ``C = 10``, classes ``CLASS_NAMES``.

Version 3 (issue 11: the user's own classes) lets a model say what it knows:

- ``S`` is any fixed size in the graph (``MIN_IMAGE_SIZE``..``MAX_IMAGE_SIZE``; 32 for CIFAR-10 models,
  e.g. 128 for photo datasets); every app reads it from the graph and resizes with the one preprocessing
  function (:func:`cifar10.preprocess.load_image` with ``size=S``).
- ``C >= 2`` classes; the metadata ``class_names`` (JSON list, the dataset's folder names, output order),
  optional ``display_names`` (what apps show, e.g. Animals-10's ``cane`` -> ``dog``) and ``dataset`` (its name).
  The card repeats them (``dataset``, ``class_names``, ``display_names``, ``image_size``) and the registry
  checks that graph, metadata and card agree. Build the metadata with :func:`model_metadata`.

Version 2 (issue 12) adds optional outputs (version 3 keeps them, with ``C`` for 10); a version-1 file
(``probabilities`` only) still works everywhere, it just has no "unsure" flag and no class activation map:

- ``logits`` ``[N, 10]``: the pre-softmax scores (averaged over the test-time-augmentation views with
  the same weights as the probabilities). ``probabilities`` are then *calibrated*: the graph applies
  ``softmax(log(p) / T)`` to the (view-averaged) probabilities ``p``, with the temperature ``T`` fitted on
  held-out images. That is a monotone map of ``p``, so the predicted class never changes.
- ``ood_score`` ``[N]``: one "how unlike CIFAR-10 is this image" number, larger = less like it. The card's
  ``open_set.threshold`` turns it into the "unsure: may be none of the 10 classes" flag
  (``ood_score > threshold``); see :func:`is_unsure`.
- ``cam`` ``[N, h, w, 10]``: class activation maps (models whose head is global average pooling + Dense):
  the per-class logit contribution of each cell of the last feature map of the un-augmented view; the mean
  over ``h, w`` of ``cam[..., k]`` is that view's logit ``k``, exactly.
"""

import json
import math
import unicodedata

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 32          # CIFAR-10 models (contract versions 1 and 2 always)
CIFAR10_DATASET = "CIFAR-10"
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # version 3: the input sizes a model may have
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# Optional outputs (contract version 2).
LOGITS_NAME = "logits"
OOD_SCORE_NAME = "ood_score"
CAM_NAME = "cam"
OPTIONAL_OUTPUTS = (LOGITS_NAME, OOD_SCORE_NAME, CAM_NAME)

# Keys written into the ONNX model's metadata_props by the exporter.
META_CLASS_NAMES = "class_names"  # JSON list, must equal CLASS_NAMES
META_MODEL_NAME = "model_name"
META_CONTRACT = "cifar10_contract"
META_TEMPERATURE = "temperature"  # version 2: the temperature folded into `probabilities`
META_OOD_SCORE = "ood_score"      # version 2: which score `ood_score` is (e.g. "energy")
META_DISPLAY_NAMES = "display_names"  # version 3, optional: JSON list, what apps show for each class
META_DATASET = "dataset"              # version 3: the dataset's name ("CIFAR-10", "my-pets")
CONTRACT_VERSION = "3"
SUPPORTED_CONTRACT_VERSIONS = ("1", "2", "3")

# Model card keys (version 2). card["calibration"] = {"temperature", "ece_before", "ece_after", "source", ...};
# card["open_set"] = {"score", "threshold", "target_pass_rate", "source", measured rates ...}.
CARD_CALIBRATION = "calibration"
CARD_OPEN_SET = "open_set"
# Model card keys (version 3): what the model knows, repeated from the graph and its metadata.
CARD_DATASET = "dataset"
CARD_CLASS_NAMES = "class_names"
CARD_DISPLAY_NAMES = "display_names"
CARD_IMAGE_SIZE = "image_size"

# Names a class may not have: the result files' own columns (a class is also a probability column).
RESERVED_CLASS_NAMES = ("path", "label", "confidence", "error", "unsure", "ood_score", "model",
                        "model_test_accuracy", "date", "top_k")


def class_name_problem(names) -> str | None:
    """Why ``names`` cannot be a model's class (or display) names, or None: at least 2, unique (ignoring
    case), non-empty strings without control characters, none a result column's name."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return "must be a list of strings"
    if len(names) < 2:
        return f"needs at least 2 classes, found {len(names)}"
    for name in names:
        if not name.strip() or any(unicodedata.category(ch).startswith("C") for ch in name):
            return f"{name!r} is not a usable class name (empty or with control characters)"
        if name.casefold() in RESERVED_CLASS_NAMES:
            return (f"{name!r} is also a column of the results files ({', '.join(RESERVED_CLASS_NAMES)}); "
                    "rename the class")
    folded = [n.casefold() for n in names]
    twice = sorted({n for n in names if folded.count(n.casefold()) > 1})
    if twice:
        return f"the names must be unique (ignoring case): {', '.join(twice)}"
    return None


def model_metadata(*, model_name: str, class_names, display_names=None, dataset: str = CIFAR10_DATASET) -> dict:
    """The ONNX metadata_props of a version-3 export (exporters stamp exactly these keys)."""
    class_names = [unicodedata.normalize("NFC", n) for n in class_names]
    problem = class_name_problem(class_names)
    if problem:
        raise ValueError(f"class names: {problem}")
    meta = {META_CONTRACT: CONTRACT_VERSION, META_MODEL_NAME: model_name, META_DATASET: dataset,
            META_CLASS_NAMES: json.dumps(class_names, ensure_ascii=False)}
    if display_names is not None:
        display_names = [unicodedata.normalize("NFC", n) for n in display_names]
        problem = class_name_problem(display_names)
        if problem or len(display_names) != len(class_names):
            raise ValueError(f"display names: {problem or 'one per class is needed'}")
        meta[META_DISPLAY_NAMES] = json.dumps(display_names, ensure_ascii=False)
    return meta


def unsure_text(num_classes: int = NUM_CLASSES) -> str:
    """What every app shows instead of a confident label when the open-set flag is raised."""
    return f"unsure: may be none of the {num_classes} classes"


def knows_text(dataset: str, num_classes: int) -> str:
    """What a model knows, as pickers show it: ``CIFAR-10 · 10 classes``."""
    return f"{dataset} · {num_classes} classes"


def open_set_threshold(card: dict) -> float | None:
    """The card's open-set threshold on ``ood_score``, or None (a v1 card, or a malformed entry)."""
    entry = card.get(CARD_OPEN_SET) if isinstance(card, dict) else None
    value = entry.get("threshold") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def is_unsure(ood_score: float, threshold: float | None) -> bool:
    """The open-set flag: True when the score is above the model's threshold (never for a v1 model)."""
    return threshold is not None and math.isfinite(ood_score) and ood_score > threshold
