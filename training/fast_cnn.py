"""fast_cnn: Keller Jordan's airbench94 (github.com/KellerJordan/cifar10-airbench, airbench94_muon.py) in Keras 3.

Read top to bottom: layers and the whitening initialisation -> the optimiser -> the augmented batches ->
``fit_fast_cnn``, the training recipe that ``cifar10 train --model fast_cnn`` runs -> the network. Every speed trick is
named where it happens; docs/fast_cnn.md has the ablation table and the measured times.

The recipe trains on all 50,000 training images with a fixed schedule and keeps the final weights: there
is no validation split to select on, so the test set is only ever used for the final figures.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from cifar10.contract import NUM_CLASSES
from cifar10.errors import UserFacingError
from training.blocks import model_input
from training.registry import register_model

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465]) * 255  # per channel, on the 0..255 scale of the contract
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616]) * 255
WHITEN_WIDTH = 24  # 2 x (3 channels x 2 x 2 patch): each whitening filter and its negative


# --- Layers and the whitening initialisation --------------------------------------------------------

@keras.saving.register_keras_serializable(package="cifar10")
class ChannelBias(layers.Layer):
    """A trainable per-channel bias after the frozen whitening convolution (Keras cannot freeze a Conv2D's
    kernel but train its bias)."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, x):
        return x + ops.cast(self.bias, x.dtype)


@keras.saving.register_keras_serializable(package="cifar10")
def gelu(x):
    """Exact GELU, written with erf: TensorFlow's own Gelu op becomes Erfc, which ONNX does not have."""
    return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


def _conv(width: int, name: str) -> layers.Conv2D:
    # PyTorch's default init (uniform +-1/sqrt(fan_in)); no bias: BatchNorm follows.
    return layers.Conv2D(width, 3, padding="same", use_bias=False, name=name,
                         kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"))


def _batch_norm(name: str) -> layers.BatchNormalization:
    # Low momentum: the moving statistics follow the fast-changing weights of a short run. No scale (gamma
    # fixed at 1), as airbench.
    return layers.BatchNormalization(momentum=0.6, epsilon=1e-12, scale=False, name=name)


def init_whitening(model: keras.Model, images: np.ndarray, eps: float = 5e-4) -> None:
    """Set the 2x2 whitening filters from the eigenvectors of the training images' 2x2-patch covariance.

    Patches are flattened in (row, column, channel) order, the order of a Keras kernel's first 3 axes."""
    x = (images.astype(np.float32) - CIFAR_MEAN) / CIFAR_STD
    patches = np.stack([x[:, i:i + 31, j:j + 31, :] for i in (0, 1) for j in (0, 1)], axis=3)
    # patches: [N, 31, 31, (i, j), C] -> rows of 12 values in (i, j, c) order.
    flat = patches.reshape(-1, 12).astype(np.float64)
    covariance = flat.T @ flat / len(flat)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    scaled = eigenvectors / np.sqrt(eigenvalues + eps)  # column k = filter k
    kernel = np.concatenate([scaled, -scaled], axis=1).reshape(2, 2, 3, WHITEN_WIDTH)
    model.get_layer("whiten").kernel.assign(kernel.astype(np.float32))


# --- The optimiser ----------------------------------------------------------------------------------

def newton_schulz(matrix, steps: int = 3, eps: float = 1e-7):
    """Approximately orthogonalise a matrix (Muon's update): a quintic Newton-Schulz iteration whose
    coefficients maximise the slope at zero (from airbench94_muon.py)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = matrix / (ops.sqrt(ops.sum(ops.square(matrix))) + eps)
    transposed = matrix.shape[0] > matrix.shape[1]
    if transposed:
        x = ops.transpose(x)
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
    return ops.transpose(x) if transposed else x


@keras.saving.register_keras_serializable(package="cifar10")
class MuonSGD(keras.optimizers.Optimizer):
    """airbench94_muon's two optimisers in one Keras optimiser (Keras' own Muon only handles 2-D weights).

    - 3x3 conv kernels: Muon. Nesterov momentum, then the update is orthogonalised (newton_schulz on the
      kernel as a [kh*kw*in, out] matrix) and each kernel is renormalised to norm sqrt(out) first, so the
      step size is set by the learning rate alone.
    - Everything else (BatchNorm biases, the whitening bias, the head): Nesterov SGD with PyTorch-style
      coupled weight decay, at their own learning rates.
    ``learning_rate`` is the schedule's multiplier (1 -> 0); the per-group rates are below. The whitening
    bias trains for the first ``whiten_bias_steps`` only, with its own linear decay (airbench).
    """

    def __init__(self, learning_rate=1.0, muon_lr=0.24, muon_momentum=0.6, sgd_momentum=0.85,
                 bias_lr=0.053, head_lr=0.67, weight_decay_per_step=4e-3, whiten_bias_steps=75,
                 name="muon_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.muon_lr, self.muon_momentum, self.sgd_momentum = muon_lr, muon_momentum, sgd_momentum
        self.bias_lr, self.head_lr = bias_lr, head_lr
        self.weight_decay_per_step = weight_decay_per_step
        self.whiten_bias_steps = whiten_bias_steps

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.momentums = [self.add_variable_from_reference(v, name="momentum") for v in var_list]
        # Decided here, where the variables still carry their Keras paths.
        self.groups = ["muon" if len(v.shape) == 4 else "head" if "head" in v.path
                       else "whiten_bias" if "whiten_bias" in v.path else "bias" for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        gradient = ops.cast(gradient, variable.dtype)
        schedule = ops.cast(learning_rate, variable.dtype)
        index = self._get_variable_index(variable)
        momentum, group = self.momentums[index], self.groups[index]
        if group == "muon":
            self._muon_step(gradient, variable, schedule, momentum)
            return
        group_lr = self.head_lr if group == "head" else self.bias_lr
        if group == "whiten_bias":
            step = ops.cast(self.iterations, variable.dtype)
            schedule = ops.maximum(0.0, 1.0 - step / self.whiten_bias_steps)
        gradient = gradient + (self.weight_decay_per_step / group_lr) * variable
        self.assign(momentum, self.sgd_momentum * momentum + gradient)
        nesterov = gradient + self.sgd_momentum * momentum
        self.assign_sub(variable, schedule * group_lr * nesterov)

    def _muon_step(self, gradient, variable, schedule, momentum):
        self.assign(momentum, self.muon_momentum * momentum + gradient)
        nesterov = gradient + self.muon_momentum * momentum
        out_channels = variable.shape[-1]
        norm = ops.sqrt(ops.sum(ops.square(variable)))
        self.assign(variable, variable * (math.sqrt(out_channels) / norm))
        update = newton_schulz(ops.reshape(nesterov, (-1, out_channels)))
        self.assign_sub(variable, schedule * self.muon_lr * ops.reshape(update, variable.shape))

    def get_config(self):
        config = super().get_config()
        config.update(muon_lr=self.muon_lr, muon_momentum=self.muon_momentum, sgd_momentum=self.sgd_momentum,
                      bias_lr=self.bias_lr, head_lr=self.head_lr,
                      weight_decay_per_step=self.weight_decay_per_step, whiten_bias_steps=self.whiten_bias_steps)
        return config


# --- The augmented batches --------------------------------------------------------------------------

class FlipShiftBatches(keras.utils.PyDataset):
    """Whole batches of augmented images, made with NumPy from the uint8 arrays (a few ms a batch).

    - Random translation by up to ``shift_px`` pixels: a random crop of the reflect-padded image.
    - Alternating flip (airbench): each image gets a random flip once, then is mirrored on every odd
      epoch, so over two epochs it is seen both ways (better than an independent coin each epoch).
    Labels come one-hot, for the label-smoothed loss. The last partial batch is dropped.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, shift_px: int = 2,
                 seed: int = 0, augment: bool = True, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.num_classes = num_classes
        self.rng = np.random.default_rng(seed)
        self.images, self.labels = images, labels
        self.batch_size, self.shift_px, self.augment = batch_size, shift_px, augment
        self.padded = np.pad(images, ((0, 0), (shift_px,) * 2, (shift_px,) * 2, (0, 0)), mode="reflect")
        self.first_flip = self.rng.random(len(labels)) < 0.5
        self.batches_served = 0
        self.order = self.rng.permutation(len(labels))

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size

    def state(self) -> dict:
        """Where the batches are (JSON-ready): the random generator and the batches served. Taken at an epoch's
        end (Keras asks for no batch beyond the epoch: tests/test_fast_cnn.py), :meth:`restore` into batches
        made anew with the same seed makes them go on exactly as the uninterrupted run's."""
        return {"rng": self.rng.bit_generator.state, "batches_served": self.batches_served}

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches_served = int(state["batches_served"])  # the next batch draws the next epoch's order

    def __getitem__(self, index: int):
        # Epochs are counted here, not in on_epoch_end: Keras may fetch ahead of the epoch boundary.
        epoch, position = divmod(self.batches_served, len(self))
        self.batches_served += 1
        if position == 0 and epoch > 0:
            self.order = self.rng.permutation(len(self.labels))
        rows = self.order[position * self.batch_size:(position + 1) * self.batch_size]
        if self.augment:
            size = self.images.shape[1]
            offsets = self.rng.integers(0, 2 * self.shift_px + 1, size=(len(rows), 2))
            ys = offsets[:, :1] + np.arange(size)
            xs = offsets[:, 1:] + np.arange(size)
            flip = self.first_flip[rows] ^ (epoch % 2 == 1)
            xs = np.where(flip[:, None], xs[:, ::-1], xs)  # a mirrored crop is the crop read backwards
            batch = self.padded[rows[:, None, None], ys[:, :, None], xs[:, None, :]]
        else:
            batch = self.images[rows]
        return batch.astype(np.float32), np.eye(self.num_classes, dtype=np.float32)[self.labels[rows]]


def as_tf_dataset(batches: FlipShiftBatches):
    """The batches as a ``tf.data`` pipeline that asks ``batches`` for one batch at a time, in order, through
    ``tf.numpy_function``: the same batches, in the same order, as fitting on ``batches`` itself.

    Why not hand Keras the PyDataset: Keras wraps it in ``tf.data.Dataset.from_generator``, and on the
    AVX2-only EPYC that made every fast_cnn step 1.6x slower (30.5 vs 19.2 s at batch 2,000, with 3x the
    system time), although making the batches takes 65 ms. A ``numpy_function`` map runs at the speed of
    bare ``train_on_batch`` steps (18-20 s). Measured with throwaway scripts; the real command's figures
    are in docs/fast_cnn.md."""
    import tensorflow as tf

    image_shape = (batches.batch_size, *batches.images.shape[1:])
    label_shape = (batches.batch_size, batches.num_classes)

    def batch(index):
        return batches[int(index)]

    def shaped(images, labels):
        return tf.ensure_shape(images, image_shape), tf.ensure_shape(labels, label_shape)

    return (tf.data.Dataset.range(len(batches))  # one epoch; Keras iterates it anew each epoch
            .map(lambda index: tf.numpy_function(batch, [index], (tf.float32, tf.float32)))
            .map(shaped)
            .prefetch(1))


# --- The recipe -------------------------------------------------------------------------------------

def recipe_loss() -> keras.losses.Loss:
    """airbench's loss: cross-entropy on the logits with label smoothing 0.2, summed over the batch (so the
    learning rates and the weight decay are per image)."""
    return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2, reduction="sum")


def fit_fast_cnn(model: keras.Model, data, settings, callbacks: list | None = None, verbose: int = 2, *,
                 checkpoint=None, keeper=None) -> dict:
    """airbench94_muon's recipe on ``data.train`` (uint8 images): whitening init, Muon + SGD, a linear
    decay of every learning rate to 0, label-smoothed cross-entropy summed over the batch. Trains
    ``model`` in place; returns the Keras history dict (of this run's epochs).

    Resumable (``cifar10 train --resume``): ``keeper``, the per-epoch checkpoint callback among ``callbacks``,
    also stores the batches' random state; ``checkpoint`` (a :class:`training.checkpoint.Checkpoint`) puts the
    weights, Muon's and SGD's momentum buffers, the step count (which drives the schedule and the whitening
    bias's steps) and the batches back as they were after its epoch, and fit goes on from there."""
    fixed = {"optimizer": "muon", "lr_schedule": "linear", "early_stopping_patience": 0}
    for key, value in fixed.items():
        if getattr(settings, key) != value:
            raise UserFacingError(f"fast_cnn trains with its own recipe: --{key.replace('_', '-')} "
                                  f"{getattr(settings, key)} does not apply (it uses {value})")
    if settings.init_from:
        raise UserFacingError("fast_cnn's recipe always starts from scratch (its schedule is the whole run); "
                              "--init-from does not apply")
    x, y = data.train.x, data.train.y
    init_whitening(model, x[:5000])
    batches = FlipShiftBatches(x, y, settings.batch_size, shift_px=settings.shift_px, seed=settings.seed,
                               augment=settings.augment, num_classes=int(model.output_shape[-1]))
    if len(batches) == 0:
        raise UserFacingError(f"fast_cnn: {len(y)} training images make no full batch of {settings.batch_size}; "
                              "lower --batch-size")
    total_steps = settings.epochs * len(batches)
    schedule = keras.optimizers.schedules.PolynomialDecay(1.0, total_steps, end_learning_rate=0.0, power=1.0)
    # Weight decay 2e-6 per image of the batch, as airbench (its loss is a sum over the batch).
    optimizer = MuonSGD(schedule, muon_lr=settings.lr, weight_decay_per_step=2e-6 * settings.batch_size,
                        whiten_bias_steps=math.ceil(3 / 8 * total_steps))
    trainer = logits_model(model)
    trainer.compile(optimizer=optimizer, loss=recipe_loss(),
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    if keeper is not None:
        keeper.data_state = batches.state
    if checkpoint is not None:  # everything back as it was after the checkpoint's epoch
        checkpoint.check_model(trainer, settings.model)
        checkpoint.restore_model(trainer)
        checkpoint.restore_optimizer(trainer)
        checkpoint.restore_random()
        batches.restore(checkpoint.data)
    feed = as_tf_dataset(batches) if keras.backend.backend() == "tensorflow" else batches
    history = trainer.fit(feed, epochs=settings.epochs, initial_epoch=checkpoint.epochs_done if checkpoint else 0,
                          shuffle=False,  # the batches shuffle themselves
                          callbacks=callbacks or [], verbose=verbose)
    return history.history


# --- The network ------------------------------------------------------------------------------------

@register_model(
    "fast_cnn", fit=fit_fast_cnn,
    summary="airbench94 in Keras: frozen 2x2 whitening conv, 3 blocks (64/256/256) of conv-pool-BN-GELU-conv-BN-"
            "GELU, Muon + Nesterov SGD, label smoothing 0.2, alternating flip + 2-px translate, 10 epochs on all "
            "50,000 training images, flip+shift TTA",
    epochs=10, batch_size=2000, optimizer="muon", lr=0.24, augment=True, shift_px=2, tta="flip_shift",
    lr_schedule="linear", precision="auto", validation_size=0)
def fast_cnn(widths: tuple[int, int, int] = (64, 256, 256), num_classes: int = NUM_CLASSES,
             name: str = "fast_cnn") -> keras.Model:
    """32x32 input only (its final 3x3 pooling expects the 3x3 map a 32 px image leaves): no ``image_size``."""
    inputs = model_input()
    x = layers.Rescaling(list(1 / CIFAR_STD), offset=list(-CIFAR_MEAN / CIFAR_STD), name="normalize")(inputs)
    # Trick: a 2x2 conv initialised to whiten the patches of the training images (init_whitening), frozen.
    x = layers.Conv2D(WHITEN_WIDTH, 2, padding="valid", use_bias=False, trainable=False, name="whiten")(x)
    x = ChannelBias(name="whiten_bias")(x)
    x = layers.Activation(gelu, name="whiten_gelu")(x)
    for i, width in enumerate(widths, 1):
        # Pool right after the first conv: the BN and GELU then run on a quarter of the pixels.
        x = _conv(width, f"block{i}_conv1")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = _batch_norm(f"block{i}_norm1")(x)
        x = layers.Activation(gelu, name=f"block{i}_gelu1")(x)
        x = _conv(width, f"block{i}_conv2")(x)
        x = _batch_norm(f"block{i}_norm2")(x)
        x = layers.Activation(gelu, name=f"block{i}_gelu2")(x)
    x = layers.MaxPooling2D(3, name="final_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(num_classes, use_bias=False, dtype="float32", name="head")(x)
    logits = layers.Rescaling(1 / widths[-1], dtype="float32", name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name=name)
    _identity_init(model)
    return model


# airbench95 (the same repository's airbench95.py) is airbench94 made wider (block widths 64/256/256 ->
# 128/384/384, 2.55x the multiply-adds per image), trained longer (9.9 -> 15 epochs) at 0.87x the learning
# rate: 95.01 % mean on a GPU. The Muon recipe here needs fewer epochs than airbench94's SGD (8 vs 9.9), so
# 15 x 8/9.9 ~ 12. The rates stay fast_cnn's: Muon renormalises every kernel and orthogonalises its update,
# so the relative step a learning rate makes does not depend on the width.
@register_model(
    "fast_cnn_95", fit=fit_fast_cnn,
    summary="airbench95 in Keras: fast_cnn widened to 128/384/384, 12 epochs on all 50,000 training images, "
            "the same tricks (whitening, Muon, label smoothing, alternating flip, flip+shift TTA)",
    epochs=12, batch_size=2000, optimizer="muon", lr=0.24, augment=True, shift_px=2, tta="flip_shift",
    lr_schedule="linear", precision="auto", validation_size=0)
def fast_cnn_95(num_classes: int = NUM_CLASSES) -> keras.Model:
    return fast_cnn(widths=(128, 384, 384), num_classes=num_classes, name="fast_cnn_95")


def _identity_init(model: keras.Model) -> None:
    """airbench's init: the first in_channels filters of every 3x3 conv are the identity (dirac), so each
    block starts by passing its input through; the head is scaled to unit standard deviation. (Also the
    whitening filters are set from the data at the start of training: init_whitening.)"""
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D) and layer.kernel_size == (3, 3):
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            n = min(kernel.shape[2], kernel.shape[3])  # as torch.nn.init.dirac_ on the first in_channels filters
            kernel[..., :n] = 0
            kernel[1, 1, np.arange(n), np.arange(n)] = 1
            layer.kernel.assign(kernel)
    head = model.get_layer("head").kernel
    head.assign(head / ops.std(head))


def logits_model(model: keras.Model) -> keras.Model:
    """The same layers up to the logits: what the training loss sees (the exported model adds the softmax)."""
    return keras.Model(model.inputs, model.get_layer("logits").output, name=f"{model.name}_logits")


