"""ONNX probabilities for training's export checks (no Keras involved); ``cifar10 evaluate`` is
:mod:`cifar10.evaluation`, which the apps' install runs too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifar10.inference import Classifier
from cifar10.registry import ModelInfo, validate_onnx


def onnx_probabilities(onnx_path: Path, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Run the exported graph over uint8 images [N,S,S,3] in batches; returns [N,C] probabilities.

    Uses the apps' own contract check and onnxruntime session (the card may not exist yet)."""
    onnx_path = Path(onnx_path)
    facts = validate_onnx(onnx_path)  # what the graph knows: its classes and input size
    classifier = Classifier(ModelInfo(name=onnx_path.stem, onnx_path=onnx_path, **facts), provider="cpu")
    return np.concatenate([classifier.predict(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
