"""Building blocks every model uses: the contract's input and the classifier head.

Every model takes raw RGB 0..255 ``[N, S, S, 3]`` (the ONNX contract's input, named "image"; S = 32 for
CIFAR-10, e.g. 128 for photo folders) and returns softmax probabilities over its C classes, so the
exported graph holds its own normalisation.
"""

from __future__ import annotations

import keras
from keras import layers

from cifar10.contract import IMAGE_SIZE, NUM_CLASSES


def model_input(image_size: int = IMAGE_SIZE) -> keras.KerasTensor:
    """The contract's input: float32 ``[N, S, S, 3]``, raw RGB 0..255, named "image"."""
    if int(image_size) != image_size or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, not {image_size!r}")
    return keras.Input(shape=(int(image_size), int(image_size), 3), name="image")


def classifier_head(inputs, x, name: str, num_classes: int = NUM_CLASSES) -> keras.Model:
    """Dense softmax over the ``num_classes`` classes on top of ``x``; the model from ``inputs`` to it,
    called ``name``."""
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, not {num_classes!r}")
    # float32 softmax even under a mixed-precision policy, so the exported outputs are probabilities.
    outputs = layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
