"""Train a registered model on CIFAR-10, keep the best epoch on validation, then evaluate and export.

Read top to bottom: settings -> data -> model -> optimiser -> input pipeline -> callbacks -> fit ->
run record -> test evaluation + ONNX export (training/export.py).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cifar10.errors import UserFacingError
from training import models
from training.data import load_cifar10
from training.plots import plot_history

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class TrainSettings:
    model: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    augment: bool
    shift_px: int
    tta: str
    early_stopping_patience: int
    lr_schedule: str
    precision: str
    validation_size: int
    seed: int = 0
    weights: str | None = None  # only for transfer models: "imagenet" or None
    init_from: str | None = None  # a previous run of the same model to continue from (its checkpoint)
    limit: int | None = None  # keep the first N images of each split (smoke runs, tests)

    @classmethod
    def for_model(cls, name: str, **overrides) -> "TrainSettings":
        """The model's study defaults, with every non-None override applied."""
        defaults = asdict(models.get_spec(name).defaults)
        settings = cls(model=name, **defaults)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def make_optimizer(name: str, lr) -> keras.optimizers.Optimizer:
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(lr),
        "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=1e-4),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True),
    }
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(optimizers)}")
    return optimizers[name]()


def make_augmenter(seed: int, shift_px: int = 4) -> keras.Sequential:
    """Random horizontal flip + translation by up to shift_px pixels, applied to whole batches in tf.data."""
    shift = shift_px / 32
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 1),
    ], name="augmentation")


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, augmenter=None,
                 seed: int = 0) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda images, labels: (tf.cast(images, tf.float32), labels), num_parallel_calls=AUTOTUNE)
    if augmenter is not None:
        ds = ds.map(lambda images, labels: (augmenter(images, training=True), labels),
                    num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def make_callbacks(settings: TrainSettings, run_dir: Path) -> list[keras.callbacks.Callback]:
    callbacks = [
        keras.callbacks.ModelCheckpoint(run_dir / "best.keras", monitor="val_accuracy", save_best_only=True),
        keras.callbacks.CSVLogger(run_dir / "history.csv"),
        keras.callbacks.TerminateOnNaN(),
    ]
    if settings.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy",
                                                       patience=settings.early_stopping_patience))
    if settings.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3,
                                                           min_lr=settings.lr / 64))
    elif settings.lr_schedule == "cosine":
        total = settings.epochs

        def cosine(epoch, _lr):
            return float(settings.lr * 0.5 * (1 + np.cos(np.pi * epoch / total)))
        callbacks.append(keras.callbacks.LearningRateScheduler(cosine))
    elif settings.lr_schedule != "constant":
        raise ValueError(f"unknown lr schedule {settings.lr_schedule!r}: constant, plateau or cosine")
    return callbacks


class TestCurve(keras.callbacks.Callback):
    """Test accuracy after every epoch, for learning curves only (nothing is selected on it); its own
    time is kept apart so the run's training time does not include it."""

    def __init__(self, test):
        super().__init__()
        self.test, self.seconds = test, 0.0

    def on_train_begin(self, logs=None):
        self.fit_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        logs["train_time_s"] = started - self.fit_started - self.seconds  # since fit() began, without tests
        scores = self.model.predict(self.test.x.astype(np.float32), batch_size=1000, verbose=0)
        logs["test_accuracy"] = float((scores.argmax(1) == self.test.y).mean())
        self.seconds += time.perf_counter() - started


def previous_run(run_dir, model: str) -> dict:
    """The record of a run to continue from; it must be a finished run of the same model."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise UserFacingError(f"--init-from {run_dir}: no run.json there (not a finished training run)")
    record = json.loads(path.read_text())
    if record["model"] != model:
        raise UserFacingError(f"--init-from {run_dir}: that run trained {record['model']!r}, not {model!r}")
    return record


def train(settings: TrainSettings, *, data_dir=None, out: Path = Path("runs"), export_dir: Path | None = None,
          command: str | None = None, test_curve: bool = False,
          callbacks: list[keras.callbacks.Callback] | None = None) -> Path:
    """Train, keep the best validation epoch (or a recipe's final weights), write the run record; export
    when export_dir is set. ``test_curve``: log test accuracy per epoch (TestCurve). ``callbacks``: more
    Keras callbacks for fit (``cifar10 sweep`` reports each epoch to Ray Tune with one)."""
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(settings.precision)
    try:
        return _train(settings, data_dir=data_dir, out=out, export_dir=export_dir, command=command,
                      test_curve=test_curve, callbacks=callbacks)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)  # later models in this process: unchanged


def _train(settings: TrainSettings, *, data_dir=None, out: Path = Path("runs"), export_dir: Path | None = None,
          command: str | None = None, test_curve: bool = False, callbacks=None) -> Path:
    parent = previous_run(settings.init_from, settings.model) if settings.init_from else None
    spec = models.get_spec(settings.model)
    keras.utils.set_random_seed(settings.seed)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out) / f"{settings.model}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()  # the training wall time includes loading the data
    data = load_cifar10(data_dir, validation_size=settings.validation_size, limit=settings.limit)
    print(f"Data: {data.describe()}", file=sys.stderr)

    if parent is not None:
        model = keras.models.load_model(Path(settings.init_from) / parent.get("checkpoint", "best.keras"))
    else:
        build_kwargs = {"weights": settings.weights} if spec.pretrained else {}
        model = models.create_model(settings.model, **build_kwargs)
    verbose = 1 if sys.stdout.isatty() else 2
    curve = [TestCurve(data.test)] if test_curve else []  # before the CSVLogger, which then logs it
    if spec.fit is not None:
        # The model's own recipe, with a fixed schedule: its final weights are the result.
        history = spec.fit(model, data, settings, verbose=verbose,
                           callbacks=curve + [keras.callbacks.CSVLogger(run_dir / "history.csv")] + list(callbacks or []))
        checkpoint = "final.keras"
        model.save(run_dir / checkpoint)
    else:
        model.compile(optimizer=make_optimizer(settings.optimizer, settings.lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        augmenter = make_augmenter(settings.seed, settings.shift_px) if settings.augment else None
        train_ds = make_dataset(data.train.x, data.train.y, settings.batch_size, shuffle=True,
                                augmenter=augmenter, seed=settings.seed)
        val_ds = make_dataset(data.val.x, data.val.y, 512, shuffle=False)
        history = model.fit(train_ds, validation_data=val_ds, epochs=settings.epochs,
                            callbacks=curve + make_callbacks(settings, run_dir) + list(callbacks or []),
                            verbose=verbose).history
        checkpoint = "best.keras"
    wall_time = time.perf_counter() - started - sum(c.seconds for c in curve)
    if parent is not None:
        wall_time += parent["training_wall_time_s"]  # the model's whole training, all stages

    record = {
        "model": settings.model,
        "settings": asdict(settings),
        "command": command or " ".join(sys.argv),
        "checkpoint": checkpoint,
        "epochs_run": len(history["loss"]),
        "training_wall_time_s": round(wall_time, 1),
        **({"test_curve_eval_s": round(curve[0].seconds, 1)} if curve else {}),
        **({"continues": {key: parent[key] for key in ("command", "epochs_run", "training_wall_time_s", "continues")
                          if key in parent} | {"run": str(settings.init_from)}} if parent else {}),
        "data": data.describe(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if "val_accuracy" in history:
        record["best_epoch"] = int(np.argmax(history["val_accuracy"])) + 1
        record["best_val_accuracy"] = float(np.max(history["val_accuracy"]))
    (run_dir / "run.json").write_text(json.dumps(record, indent=2))
    plot_history(history, run_dir / "curves.png", title=settings.model)
    selection = (f"best val_accuracy {record['best_val_accuracy']:.4f} at epoch {record['best_epoch']}"
                 if "best_epoch" in record else f"final train accuracy {history['accuracy'][-1]:.4f}")
    print(f"Trained {settings.model}: {record['epochs_run']} epochs in {wall_time:.0f} s, {selection}; "
          f"run saved in {run_dir}", file=sys.stderr)

    if export_dir is not None:
        from training.export import export_run
        export_run(run_dir, export_dir, data=data)
    return run_dir
