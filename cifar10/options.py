"""Choices that several front ends offer, stated once. Imports nothing heavy, so the ``cifar10`` command
can build its parser before any extra (onnxruntime, Qt, TensorFlow) is loaded."""

# onnxruntime execution providers by their short names; "auto" = CUDA when onnxruntime has it, else CPU.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
PROVIDER_CHOICES = ("auto", *PROVIDERS)

# Test-time augmentation built into an exported graph (training.export): none, the mirror image, or
# airbench's mirror + 1-pixel translations (6 views).
TTA_MODES = ("none", "flip", "flip_shift")


def add_provider_argument(parser, help: str = "onnxruntime execution provider (auto: CUDA when available)") -> None:
    parser.add_argument("--provider", choices=PROVIDER_CHOICES, default="auto", help=help)
