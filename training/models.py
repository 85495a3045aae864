"""Model registry, in the style of timm: one decorated function per model, ``create_model(name)``.

Every model takes raw RGB 0..255 ``[N, 32, 32, 3]`` and returns softmax probabilities, so the
exported ONNX graph holds its own normalisation (the ONNX contract). Data augmentation is not part
of the model: it runs on whole batches in the input pipeline (training/train.py), which keeps the
exported graph free of training-only layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
from keras import layers, ops, regularizers

from cifar10.contract import IMAGE_SIZE, NUM_CLASSES
from cifar10.errors import UserFacingError
from training.data import VALIDATION_SIZE


class UnknownModelError(UserFacingError, KeyError):
    pass


@dataclass(frozen=True)
class TrainingDefaults:
    """The study's hyperparameters for a model; every one can be overridden on the command line."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    augment: bool = False
    shift_px: int = 4  # augmentation: random translation of up to this many pixels (with flips)
    tta: str = "none"  # test-time augmentation built into the exported graph: none | flip | flip_shift
    early_stopping_patience: int = 0  # 0 = off
    lr_schedule: str = "constant"  # constant | plateau | cosine (models with their own recipe: theirs)
    precision: str = "float32"  # or mixed_bfloat16 (fast on CPUs with AVX512-BF16 / AMX)
    validation_size: int = VALIDATION_SIZE  # held out for model selection; 0 = train on all 50,000


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., keras.Model]
    defaults: TrainingDefaults
    summary: str
    study: dict = field(default_factory=dict)  # what the original study reported, for the report
    # A model's own training recipe, fit(model, data, settings, callbacks) -> history dict, used instead
    # of train.py's compile + fit (fast_cnn: its own optimiser, batches and schedule).
    fit: Callable | None = None


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, summary: str, study: dict | None = None, fit: Callable | None = None,
                   **defaults):
    def decorator(build):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, build, TrainingDefaults(**defaults), summary, study or {}, fit)
        return build
    return decorator


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def create_model(name: str, **kwargs) -> keras.Model:
    return get_spec(name).build(**kwargs)


def _inputs():
    return keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")


def _finish(inputs, x, name: str) -> keras.Model:
    # float32 softmax even under a mixed-precision policy, so the exported outputs are probabilities.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


# --- The study's small CNNs -------------------------------------------------------------------------

def small_cnn(name: str, conv_filters: list[int | str], dropout: float) -> keras.Model:
    """Conv(3x3, same padding, relu) stacks with 'P' = MaxPool(2), then Dropout-Flatten-Dense512-Dropout.

    The study does not give the padding; 'same' keeps a 4x4 or 8x8 map for the Dense layer."""
    inputs = _inputs()
    x = layers.Rescaling(1 / 255.0)(inputs)
    for item in conv_filters:
        x = layers.MaxPooling2D(2)(x) if item == "P" else layers.Conv2D(item, 3, padding="same", activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return _finish(inputs, x, name)


@register_model("baseline", summary="Study 'M1 Baseline Roland': Conv32-P-Conv32-P-Conv64-Conv64-P, "
                "Dropout .25, Dense 512", study={"column": "M1 Baseline Roland", "test_accuracy": 0.7775,
                "f1_macro": 0.7755, "epochs": 10}, epochs=10, batch_size=64)
def baseline():
    return small_cnn("baseline", [32, "P", 32, "P", 64, 64, "P"], dropout=0.25)


@register_model("ishu_m1", summary="Study 'M1 Ishu': Conv32-P-Conv64-P-Conv64, Dropout .25, Dense 512, "
                "augmentation", study={"column": "M1 Ishu", "test_accuracy": 0.7986, "epochs": 10},
                epochs=10, batch_size=64, augment=True)
def ishu_m1():
    return small_cnn("ishu_m1", [32, "P", 64, "P", 64], dropout=0.25)


@register_model("ishu_m2", summary="Study 'M2 Ishu': Conv32-P-Conv32-P-Conv64-P, Dropout .5, Dense 512",
                study={"column": "M2 Ishu", "test_accuracy": 0.7808, "epochs": 10}, epochs=10, batch_size=64)
def ishu_m2():
    # The study's 'M3 Ishu' column has the same layers and hyperparameters; its 0.9079 looks shifted.
    return small_cnn("ishu_m2", [32, "P", 32, "P", 64, "P"], dropout=0.5)


@register_model("ishu_baseline", summary="Study 'baseline CNN': Conv32-P-Conv32-P-Conv64-P, Dropout .25, "
                "Dense 512, augmentation, lr 2e-3, 20 epochs",
                study={"column": "baseline CNN", "test_accuracy": 0.8387, "f1_macro": 0.8365, "epochs": 20},
                epochs=20, batch_size=64, lr=2e-3, augment=True)
def ishu_baseline():
    return small_cnn("ishu_baseline", [32, "P", 32, "P", 64, "P"], dropout=0.25)


# --- CNN_adam_m1, the study's chosen model, and its SGD variant ---------------------------------------

def conv_block(x, filters: int, weight_decay: float):
    """Two conv3x3 (no bias: BatchNorm follows) + BatchNorm + ReLU: the study's 10,336 / 55,808 /
    222,208 parameters per block."""
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          kernel_regularizer=regularizers.l2(weight_decay))(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    return x


def cnn_m1(name: str, weight_decay: float = 1e-4) -> keras.Model:
    inputs = _inputs()
    x = layers.Rescaling(1 / 255.0)(inputs)
    for filters, dropout in ((32, 0.2), (64, 0.3), (128, 0.4)):
        x = conv_block(x, filters, weight_decay)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu", kernel_regularizer=regularizers.l2(weight_decay))(x)
    x = layers.Dropout(0.5)(x)
    return _finish(inputs, x, name)


@register_model("cnn_adam_m1", summary="Study's chosen CNN_adam_m1: 3 conv blocks 32-64-128 (2x conv3x3+BN), "
                "L2, dropout .2-.3-.4-.5, GAP, Dense 256, augmentation, Adam",
                study={"column": "baseline_CNN_adam_m1", "test_accuracy": 0.8958, "params": 323946,
                       "epochs": 50},
                epochs=50, batch_size=64, lr=1e-3, augment=True, early_stopping_patience=12,
                lr_schedule="cosine")
def cnn_adam_m1():
    return cnn_m1("cnn_adam_m1")


@register_model("cnn_sgd_m1", summary="CNN_adam_m1's architecture trained with SGD (momentum 0.9, lr 0.01, "
                "batch 32)", study={"column": "sgd_m1 / adam_m2 (table columns look swapped)",
                "test_accuracy": 0.7878, "epochs": 50},
                epochs=50, batch_size=32, optimizer="sgd", lr=1e-2, augment=True,
                early_stopping_patience=12, lr_schedule="plateau")
def cnn_sgd_m1():
    return cnn_m1("cnn_sgd_m1")


# --- Transfer learning -----------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="cifar10")
class VGG16Preprocess(layers.Layer):
    """VGG16's ImageNet ('caffe') preprocessing inside the graph: RGB->BGR, minus the BGR means."""

    def call(self, x):
        return ops.flip(x, axis=-1) - ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=x.dtype)


@register_model("vgg16_transfer", summary="keras.applications.VGG16 (ImageNet weights, frozen) + new head "
                "GAP-Dense256-Dropout", study={"column": "M2 VGG16 Transfer Learning", "test_accuracy": 0.529,
                "epochs": 2}, epochs=2, batch_size=128)
def vgg16_transfer(weights: str | None = "imagenet", trainable_base: bool = False):
    """``weights="imagenet"`` downloads Keras' VGG16 weights (users); tests pass ``weights=None``."""
    inputs = _inputs()
    x = VGG16Preprocess(name="vgg16_preprocess")(inputs)
    base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    base.trainable = trainable_base
    x = base(x, training=False)  # keep the frozen base in inference mode while fine-tuning the head
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return _finish(inputs, x, "vgg16_transfer")


# Models defined in their own modules register themselves on import.
from training import efficientnet_lite, fast_cnn  # noqa: E402,F401
