"""The ONNX contract between training and every app: the one place that defines it.

An exported model is ``exported_models/<name>.onnx`` plus a model card ``<name>.json``.
Input: float32 NHWC ``[N, 32, 32, 3]``, raw RGB values 0..255 (normalisation lives in the graph).
Output: ``[N, 10]`` probabilities in ``CLASS_NAMES`` order.
"""

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

# Keys written into the ONNX model's metadata_props by the exporter.
META_CLASS_NAMES = "class_names"  # JSON list, must equal CLASS_NAMES
META_MODEL_NAME = "model_name"
META_CONTRACT = "cifar10_contract"
CONTRACT_VERSION = "1"
