"""The original study's models: its small CNNs, CNN_adam_m1 (its chosen model) with its SGD variant, the
Animals-10 CNN and the VGG16 transfer model. Data augmentation is not part of a model: it runs on whole
batches in the input pipeline (training/train.py), which keeps the exported graph free of training-only
layers. Every build function takes ``num_classes`` and ``image_size`` (defaults: CIFAR-10's 10 and 32 px).
"""

from __future__ import annotations

import keras
from keras import layers, ops, regularizers

from cifar10.contract import IMAGE_SIZE, NUM_CLASSES
from training.blocks import classifier_head, model_input
from training.registry import register_model


# --- The study's small CNNs -------------------------------------------------------------------------

def small_cnn(name: str, conv_filters: list[int | str], dropout: float, num_classes: int = NUM_CLASSES,
              image_size: int = IMAGE_SIZE, padding: str = "same", batch_norm: bool = False) -> keras.Model:
    """Conv(3x3, relu) stacks with 'P' = MaxPool(2), then Dropout-Flatten-Dense512-Dropout.

    The study does not give the padding; 'same' keeps a 4x4 or 8x8 map for the Dense layer (at 32 px).
    Keras' own default is 'valid' (``padding="valid"``: benchmarks/study_ablation.py compares the two).
    ``batch_norm``: BatchNorm between each convolution and its ReLU (docs/study_table.md: the table's
    'Observations' row credits batch normalization for its 'baseline CNN' column, whose layer rows omit it)."""
    inputs = model_input(image_size)
    x = layers.Rescaling(1 / 255.0)(inputs)
    for item in conv_filters:
        if item == "P":
            x = layers.MaxPooling2D(2)(x)
        elif batch_norm:
            x = layers.Conv2D(item, 3, padding=padding, use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        else:
            x = layers.Conv2D(item, 3, padding=padding, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return classifier_head(inputs, x, name, num_classes)


@register_model("baseline", summary="Study 'M1 Baseline Roland': Conv32-P-Conv32-P-Conv64-Conv64-P, "
                "Dropout .25, Dense 512", study={"table_column": 1, "column": "M1 Baseline Roland",
                "test_accuracy": 0.7775, "f1_macro": 0.7755, "epochs": 10,
                "note": "the study's text gives test accuracy 0.7775; its table's 'Final Accuracy' is 0.785 "
                        "(the text's final training accuracy is 0.7928)"}, epochs=10, batch_size=64)
def baseline(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE, padding: str = "same",
             batch_norm: bool = False):
    return small_cnn("baseline", [32, "P", 32, "P", 64, 64, "P"], dropout=0.25,
                     num_classes=num_classes, image_size=image_size, padding=padding,
                     batch_norm=batch_norm)


@register_model("ishu_m1", summary="Study 'M1 Ishu': Conv32-P-Conv64-P-Conv64, Dropout .25, Dense 512, "
                "augmentation", study={"table_column": 3, "column": "M1 Ishu", "test_accuracy": 0.7986,
                                       "final_loss": 0.6022, "epochs": 10},
                epochs=10, batch_size=64, augment=True)
def ishu_m1(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE, padding: str = "same",
            batch_norm: bool = False):
    return small_cnn("ishu_m1", [32, "P", 64, "P", 64], dropout=0.25,
                     num_classes=num_classes, image_size=image_size, padding=padding,
                     batch_norm=batch_norm)


@register_model("ishu_m2", summary="Study 'M2 Ishu': Conv32-P-Conv32-P-Conv64-P, Dropout .5, Dense 512",
                study={"table_column": 4, "column": "M2 Ishu", "test_accuracy": 0.7808, "final_loss": 0.7302,
                       "epochs": 10},
                epochs=10, batch_size=64)
def ishu_m2(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE, padding: str = "same",
            batch_norm: bool = False):
    return small_cnn("ishu_m2", [32, "P", 32, "P", 64, "P"], dropout=0.5,
                     num_classes=num_classes, image_size=image_size, padding=padding,
                     batch_norm=batch_norm)


@register_model("ishu_m3", summary="Study 'M3 Ishu': the table gives M2 Ishu's layers and hyperparameters "
                "(Conv32-P-Conv32-P-Conv64-P, Dropout .5, Dense 512, Adam 1e-3, 10 epochs, batch 64)",
                study={"table_column": 5, "column": "M3 Ishu", "test_accuracy": 0.9079, "final_loss": 0.6887,
                       "epochs": 10,
                       "note": "M2 Ishu's recipe; by the table's own loss/accuracy pairs 0.9079 is no top-1 "
                               "accuracy (docs/study_table.md)"},
                epochs=10, batch_size=64)
def ishu_m3(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE, padding: str = "same",
            batch_norm: bool = False):
    return small_cnn("ishu_m3", [32, "P", 32, "P", 64, "P"], dropout=0.5,
                     num_classes=num_classes, image_size=image_size, padding=padding,
                     batch_norm=batch_norm)


@register_model("ishu_baseline", summary="Study 'baseline CNN': Conv32-P-Conv32-P-Conv64-P, Dropout .25, "
                "Dense 512, augmentation, lr 2e-3, 20 epochs",
                study={"table_column": 6, "column": "baseline CNN", "test_accuracy": 0.8308, "final_loss": 0.4978,
                       "epochs": 20,
                       "note": "the study's text ('Baseline CNN Model 2') reports another run: 0.8387, F1 0.8365"},
                epochs=20, batch_size=64, lr=2e-3, augment=True)
def ishu_baseline(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE, padding: str = "same",
                  batch_norm: bool = False):
    return small_cnn("ishu_baseline", [32, "P", 32, "P", 64, "P"], dropout=0.25,
                     num_classes=num_classes, image_size=image_size, padding=padding,
                     batch_norm=batch_norm)


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


def cnn_m1(name: str, weight_decay: float = 1e-4, num_classes: int = NUM_CLASSES,
           image_size: int = IMAGE_SIZE) -> keras.Model:
    inputs = model_input(image_size)
    x = layers.Rescaling(1 / 255.0)(inputs)
    for filters, dropout in ((32, 0.2), (64, 0.3), (128, 0.4)):
        x = conv_block(x, filters, weight_decay)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu", kernel_regularizer=regularizers.l2(weight_decay))(x)
    x = layers.Dropout(0.5)(x)
    return classifier_head(inputs, x, name, num_classes)


@register_model("cnn_adam_m1", summary="Study's chosen CNN_adam_m1: 3 conv blocks 32-64-128 (2x conv3x3+BN), "
                "L2, dropout .2-.3-.4-.5, GAP, Dense 256, augmentation, Adam",
                study={"table_column": 7, "column": "baseline_CNN_adam_m1", "test_accuracy": 0.8958,
                       "final_loss": 0.4078, "params": 323946,
                       "epochs": 50},
                epochs=50, batch_size=64, lr=1e-3, augment=True, early_stopping_patience=12,
                lr_schedule="cosine")
def cnn_adam_m1(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE):
    return cnn_m1("cnn_adam_m1", num_classes=num_classes, image_size=image_size)


@register_model("cnn_sgd_m1", summary="Study column 'sgd_m1': CNN_adam_m1's architecture; the table's "
                "hyperparameters for this column are Adam 1e-3, batch 32, 50 epochs (the name says SGD)",
                study={"table_column": 8, "column": "sgd_m1", "test_accuracy": 0.8834, "final_loss": 0.4422,
                       "epochs": 50,
                       "note": "the column is named sgd_m1 but its optimizer row says Adam; trained as the table says"},
                epochs=50, batch_size=32, lr=1e-3, augment=True, early_stopping_patience=12, lr_schedule="cosine")
def cnn_sgd_m1(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE):
    return cnn_m1("cnn_sgd_m1", num_classes=num_classes, image_size=image_size)


@register_model("cnn_adam_m2", summary="Study column 'adam_m2': CNN_adam_m1's architecture; the table's "
                "hyperparameters for this column are SGD (no momentum given: Keras' default 0) lr 0.01, batch 32, "
                "50 epochs (the name says Adam)",
                study={"table_column": 9, "column": "adam_m2", "test_accuracy": 0.7878, "final_loss": 1.0958,
                       "epochs": 50,
                       "note": "the column is named adam_m2 but its optimizer row says SGD; trained as the table says"},
                epochs=50, batch_size=32, optimizer="sgd_plain", lr=1e-2, augment=True, early_stopping_patience=12,
                lr_schedule="cosine")
def cnn_adam_m2(num_classes: int = NUM_CLASSES, image_size: int = IMAGE_SIZE):
    return cnn_m1("cnn_adam_m2", num_classes=num_classes, image_size=image_size)


# --- The study's Animals-10 CNN ("Gulmehak" column) ---------------------------------------------------

ANIMALS10_IMAGE_SIZE = 128


def animals10_layers(x, filters=(32, 64, 128), dense: int = 128):
    """The Gulmehak column's layer table, row by row: three times Conv2D - MaxPooling2D - Dropout, then
    Flatten - Dense - Dropout (the softmax head follows).

    The column names its layers (conv2d_24, max_pooling2d_12, dropout_16, conv2d_26, ...) but gives no
    filter counts, kernel sizes, padding, dropout rates or Dense width; these are this project's choices:
    3x3 'same' ReLU convolutions with 32 -> 64 -> 128 filters (the doubling every CNN in the study uses),
    Dropout .25 after each pooling, Dense 128 ReLU, Dropout .5. The skipped conv numbers (24, 26, 28 against
    consecutive pooling and dropout numbers) hint at a second convolution per block that the table leaves
    out; the table's rows are what is built here, one convolution per block."""
    for width in filters:
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu")(x)
    return layers.Dropout(0.5)(x)


@register_model("animals10_cnn", summary="Study 'Gulmehak' Animals-10 CNN: 128x128 input, 3x (Conv-MaxPool-Dropout), "
                "Flatten, Dense 128, Dropout .5; augmentation, AdamW 1e-3, batch 32, up to 60 epochs, early stopping",
                study={"table_column": 10, "column": "Gulmehak", "dataset": "Animals-10", "test_accuracy": 0.9803,
                       "epochs": 60,
                       "note": "the study's 'Final Accuracy' cell; it does not say on which split"},
                epochs=60, batch_size=32, optimizer="adamw", lr=1e-3, augment=True, early_stopping_patience=8,
                image_size=ANIMALS10_IMAGE_SIZE)
def animals10_cnn(num_classes: int = NUM_CLASSES, image_size: int = ANIMALS10_IMAGE_SIZE) -> keras.Model:
    inputs = model_input(image_size)
    x = layers.Rescaling(1 / 255.0)(inputs)  # the study: pixel values / 255
    return classifier_head(inputs, animals10_layers(x), "animals10_cnn", num_classes)


# --- Transfer learning -----------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="cifar10")
class VGG16Preprocess(layers.Layer):
    """VGG16's ImageNet ('caffe') preprocessing inside the graph: RGB->BGR, minus the BGR means."""

    def call(self, x):
        return ops.flip(x, axis=-1) - ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=x.dtype)


@register_model("vgg16_transfer", summary="keras.applications.VGG16 (ImageNet weights, frozen) + new head "
                "GAP-Dense256-Dropout", study={"table_column": 2, "column": "M2 VGG16 Transfer Learning",
                                               "test_accuracy": 0.529,
                "epochs": 2}, pretrained=True, epochs=2, batch_size=128)
def vgg16_transfer(weights: str | None = "imagenet", trainable_base: bool = False, num_classes: int = NUM_CLASSES,
                   image_size: int = IMAGE_SIZE):
    """``weights="imagenet"`` downloads Keras' VGG16 weights (users); tests pass ``weights=None``."""
    if image_size < 32:
        raise ValueError(f"VGG16 needs images of at least 32 px, not {image_size}")
    inputs = model_input(image_size)
    x = VGG16Preprocess(name="vgg16_preprocess")(inputs)
    base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(image_size, image_size, 3))
    base.trainable = trainable_base
    x = base(x, training=False)  # keep the frozen base in inference mode while fine-tuning the head
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return classifier_head(inputs, x, "vgg16_transfer", num_classes)
