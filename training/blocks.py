"""Building blocks every model uses: the contract's input and the classifier head.

Every model takes raw RGB 0..255 ``[N, 32, 32, 3]`` (the ONNX contract's input, named "image") and
returns softmax probabilities, so the exported graph holds its own normalisation.
"""

from __future__ import annotations

import keras
from keras import layers

from cifar10.contract import IMAGE_SIZE, NUM_CLASSES


def model_input() -> keras.KerasTensor:
    """The contract's input: float32 ``[N, 32, 32, 3]``, raw RGB 0..255, named "image"."""
    return keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")


def classifier_head(inputs, x, name: str) -> keras.Model:
    """Dense softmax over the classes on top of ``x``; the model from ``inputs`` to it, called ``name``."""
    # float32 softmax even under a mixed-precision policy, so the exported outputs are probabilities.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
