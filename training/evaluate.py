"""Independent evaluation of an exported ONNX model on the CIFAR-10 test set (no Keras involved)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from cifar10.inference import Classifier
from cifar10.registry import ModelInfo, validate_onnx
from training.data import load_cifar10
from training.metrics import classification_metrics


def onnx_probabilities(onnx_path: Path, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Run the exported graph over uint8 images [N,32,32,3] in batches; returns [N,10] probabilities.

    Uses the apps' own contract check and onnxruntime session (the card may not exist yet)."""
    onnx_path = Path(onnx_path)
    validate_onnx(onnx_path)
    classifier = Classifier(ModelInfo(name=onnx_path.stem, onnx_path=onnx_path), provider="cpu")
    return np.concatenate([classifier.predict(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def evaluate_onnx_file(onnx_path: Path, *, data_dir=None, limit: int | None = None) -> dict:
    data = load_cifar10(data_dir, limit=limit)
    metrics = classification_metrics(data.test.y, onnx_probabilities(onnx_path, data.test.x))
    card_path = Path(onnx_path).with_suffix(".json")
    card_accuracy = json.loads(card_path.read_text()).get("test_accuracy") if card_path.exists() else None
    print(f"{Path(onnx_path).name}: accuracy {metrics['accuracy']:.4f} on {metrics['n']} test images, "
          f"macro F1 {metrics['f1_macro']:.4f}, ECE {metrics['ece']:.4f}; card says {card_accuracy}")
    return metrics
