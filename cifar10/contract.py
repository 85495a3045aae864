"""The ONNX contract between training and every app: the one place that defines it.

An exported model is ``exported_models/<name>.onnx`` plus a model card ``<name>.json``.
Input: float32 NHWC ``[N, 32, 32, 3]``, raw RGB values 0..255 (normalisation lives in the graph).
Output: ``[N, 10]`` probabilities in ``CLASS_NAMES`` order.

Version 2 (issue 12) adds optional outputs; a version-1 file (``probabilities`` only) still works
everywhere, it just has no "unsure" flag and no class activation map:

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

import math

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
IMAGE_SIZE = 32
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
CONTRACT_VERSION = "2"
SUPPORTED_CONTRACT_VERSIONS = ("1", "2")

# Model card keys (version 2). card["calibration"] = {"temperature", "ece_before", "ece_after", "source", ...};
# card["open_set"] = {"score", "threshold", "target_pass_rate", "source", measured rates ...}.
CARD_CALIBRATION = "calibration"
CARD_OPEN_SET = "open_set"


def unsure_text(num_classes: int = NUM_CLASSES) -> str:
    """What every app shows instead of a confident label when the open-set flag is raised."""
    return f"unsure: may be none of the {num_classes} classes"


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
