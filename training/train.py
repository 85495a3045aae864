"""Train a registered model on CIFAR-10 (the default) or on a folder of labelled images (``--data``), keep
the best epoch on validation, then evaluate and export.

Read top to bottom: settings -> data -> model -> optimiser -> input pipeline -> callbacks (progress events)
-> fit -> run record -> test evaluation + ONNX export (training/export.py).

Progress: ``train(..., progress=emit)`` calls ``emit({"event": ...})`` for the machine-readable events that
``cifar10 train --progress json`` prints one per line on stdout (HELPERS.md / docs/train_folder.md):
"cache" (decoding the folder), "scan" (the dataset report), "epoch", "exported". Human logs go to stderr.
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

from cifar10.contract import IMAGE_SIZE
from cifar10.errors import UserFacingError
from cifar10.paths import default_model_name, model_file_stem
from training import models
from training.plots import plot_history

from training.data import load_cifar10, load_folder_dataset
from training.precision import resolve_precision

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
    image_size: int = IMAGE_SIZE  # the model's input size S (CIFAR-10: 32)
    data: str | None = None  # a folder of labelled images (one subfolder per class); None = CIFAR-10
    name: str | None = None  # the exported model's name (default: the model's, or <model>-<folder> for --data)

    @classmethod
    def for_model(cls, model: str, /, **overrides) -> "TrainSettings":
        """The model's study defaults, with every non-None override applied.

        CIFAR-10 is 32 px; folder data (``data``) defaults to the model's ``image_size`` (128 for
        animals10_cnn and efficientnet_lite0_transfer, 32 for the CIFAR-10 CNNs). The augmentation shift
        default is given for 32 px and scales with the image size (4 px at 32 -> 16 px at 128); an explicit
        ``shift_px`` is in pixels of the actual images."""
        defaults = asdict(models.get_spec(model).defaults)
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("data") is None:
            if given.get("image_size", IMAGE_SIZE) != IMAGE_SIZE:
                raise UserFacingError(f"CIFAR-10 images are {IMAGE_SIZE} px: --image-size applies to --data only")
            defaults["image_size"] = IMAGE_SIZE
        else:
            given["data"] = str(given["data"])
        size = given.get("image_size", defaults["image_size"])
        if not isinstance(size, int) or size < 16 or size > 1024:
            raise UserFacingError(f"--image-size must be a whole number of pixels from 16 to 1024, not {size!r}")
        if "shift_px" not in given:
            defaults["shift_px"] = round(defaults["shift_px"] * size / IMAGE_SIZE)
        settings = cls(model=model, **defaults)
        return replace(settings, **given)

    @property
    def export_name(self) -> str:
        """The exported model's file name stem: ``name``, else the model's, or ``<model>-<folder>`` for --data."""
        if self.name:
            return safe_name(self.name)
        if self.data is None:
            return self.model
        return safe_name(default_model_name(self.model, self.data) or self.model)


def safe_name(text: str) -> str:
    """``text`` as a file name stem that is safe everywhere: letters, digits, '.', '_', '-' (other characters,
    spaces included, become '_'); non-ASCII letters are kept (NFC)."""
    cleaned = model_file_stem(text)
    if not cleaned:
        raise UserFacingError(f"{text!r} cannot be a model name: use letters, digits, '.', '_' or '-'")
    return cleaned


def make_optimizer(name: str, lr) -> keras.optimizers.Optimizer:
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(lr),
        "adamw": lambda: keras.optimizers.AdamW(lr, weight_decay=1e-4),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True),
        "sgd_plain": lambda: keras.optimizers.SGD(lr),  # Keras' SGD as is: no momentum (the study's 'SGD')
    }
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(optimizers)}")
    return optimizers[name]()


def make_augmenter(seed: int, shift_px: int = 4, image_size: int = IMAGE_SIZE) -> keras.Sequential:
    """Random horizontal flip + translation by up to shift_px pixels (of an image_size image), applied to
    whole batches in tf.data."""
    shift = shift_px / image_size
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 1),
    ], name="augmentation")


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, augmenter=None,
                 seed: int = 0) -> tf.data.Dataset:
    if isinstance(x, np.memmap) or x.nbytes > 256 * 2**20:
        ds = _indexed_batches(x, y, batch_size, shuffle=shuffle, seed=seed)
    else:  # small arrays (CIFAR-10): whole tensors in tf.data
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    ds = ds.map(lambda images, labels: (tf.cast(images, tf.float32), labels), num_parallel_calls=AUTOTUNE)
    if augmenter is not None:
        ds = ds.map(lambda images, labels: (augmenter(images, training=True), labels),
                    num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def _indexed_batches(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches read from ``x`` by index (a memory-mapped cache stays on disk: only a batch is in memory)."""
    size = x.shape[1:]

    def gather(rows):
        rows = np.sort(rows)  # sequential reads; the batch's order does not matter
        return np.ascontiguousarray(x[rows]), y[rows].astype(np.int64)

    ds = tf.data.Dataset.range(len(y))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda rows: tf.numpy_function(gather, [rows], (tf.uint8, tf.int64)),
                                  num_parallel_calls=AUTOTUNE)
    return ds.map(lambda images, labels: (tf.ensure_shape(images, (None, *size)), tf.ensure_shape(labels, (None,))))


class ProgressEvents(keras.callbacks.Callback):
    """One "epoch" event per finished epoch: ``{"event": "epoch", "epoch": k, "epochs": E, "accuracy": a,
    "val_accuracy": v, "loss": l, "val_loss": vl, "seconds": s}`` (validation figures when there are any)."""

    def __init__(self, emit, epochs: int):
        super().__init__()
        self.emit, self.epochs = emit, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        event = {"event": "epoch", "epoch": epoch + 1, "epochs": self.epochs}
        for key in ("accuracy", "val_accuracy", "loss", "val_loss"):
            if key in logs:
                event[key] = round(float(logs[key]), 4)
        event["seconds"] = round(time.perf_counter() - self.started, 1)
        self.emit(event)


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
          callbacks: list[keras.callbacks.Callback] | None = None, progress=None, int8: bool | None = None) -> Path:
    """Train, keep the best validation epoch (or a recipe's final weights), write the run record; export
    when export_dir is set (``int8``: then quantize it, training.quantize; default: for own-class data only). ``test_curve``: log test accuracy per epoch (TestCurve). ``callbacks``: more
    Keras callbacks for fit (``cifar10 sweep`` reports each epoch to Ray Tune with one). ``progress``: a
    function that takes each progress event (a JSON-ready dict; see the module docstring)."""
    policy, message = resolve_precision(settings.precision)
    if message:
        print(message, file=sys.stderr)
    settings = replace(settings, precision=policy)  # the run record and the card keep what was used
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return _train(settings, data_dir=data_dir, out=out, export_dir=export_dir, command=command,
                      test_curve=test_curve, callbacks=callbacks, progress=progress, int8=int8)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)  # later models in this process: unchanged


def load_training_data(settings: TrainSettings, data_dir=None, progress=None):
    """CIFAR-10 (``settings.data`` None) or the folder dataset at ``settings.image_size``; for a folder, the
    dataset report (classes, skipped files, warnings) is printed and sent as the "scan" event."""
    if settings.data is None:
        return load_cifar10(data_dir, validation_size=settings.validation_size, limit=settings.limit)
    last = {"t": 0.0}

    def cache_progress(stage: str, done: int, total: int):
        now = time.perf_counter()
        if progress is not None and stage == "cache" and (done >= total or now - last["t"] >= 0.5):
            last["t"] = now  # at most 2 events a second, and the last one
            progress({"event": "cache", "done": int(done), "total": int(total)})

    data = load_folder_dataset(settings.data, settings.image_size, seed=settings.seed, progress=cache_progress,
                               limit=settings.limit)
    event = scan_event(data)
    print(f"Dataset {data.name!r}: {len(data.class_names)} classes {event['classes']}; train {len(data.train)}, "
          f"validation {len(data.val)}, test {len(data.test)} images", file=sys.stderr)
    for problem in event["problems"]:
        print(f"  warning: {problem}", file=sys.stderr)
    if progress is not None:
        progress(event)
    return data


def scan_event(data) -> dict:
    """The "scan" event: images per class (all splits), the problems (warnings: skipped, unreadable, duplicate
    files, few images ...), the skipped files with their reason and the non-image files; the whole report
    is in run.json (``data.report``)."""
    report = json_ready(data.report)
    classes = {name: sum(counts.values()) if isinstance(counts, dict) else counts
               for name, counts in (report.get("classes") or {}).items()}
    return {"event": "scan", "dataset": data.name, "classes": classes,
            "display_names": list(data.display_names) if data.display_names else None,
            "splits": {k: v.get("images") for k, v in (report.get("splits") or {}).items()},
            "problems": report.get("warnings", []), "skipped": report.get("skipped", []),
            "non_images": report.get("non_images", [])}


def json_ready(value):
    """The dataset report as plain JSON values (it may hold dataclasses with ``to_dict``, paths, tuples)."""
    if hasattr(value, "to_dict"):
        return json_ready(value.to_dict())
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def build_model(settings: TrainSettings, num_classes: int) -> keras.Model:
    """The registered model for ``num_classes`` classes at ``settings.image_size`` px."""
    spec = models.get_spec(settings.model)
    kwargs = {"weights": settings.weights} if spec.pretrained else {}
    kwargs["num_classes"] = num_classes
    if models.build_accepts(settings.model, "image_size"):
        kwargs["image_size"] = settings.image_size
    elif settings.image_size != IMAGE_SIZE:
        raise UserFacingError(f"{settings.model} takes {IMAGE_SIZE} px images only: use --image-size {IMAGE_SIZE} "
                              "(or another model)")
    return models.create_model(settings.model, **kwargs)


def _train(settings: TrainSettings, *, data_dir=None, out: Path = Path("runs"), export_dir: Path | None = None,
          command: str | None = None, test_curve: bool = False, callbacks=None, progress=None,
          int8: bool | None = None) -> Path:
    parent = previous_run(settings.init_from, settings.model) if settings.init_from else None
    spec = models.get_spec(settings.model)
    keras.utils.set_random_seed(settings.seed)
    started = time.perf_counter()  # the training wall time includes loading the data
    data = load_training_data(settings, data_dir, progress)
    print(f"Data: {data.describe()}", file=sys.stderr)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out) / f"{settings.export_name}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    num_classes = len(data.class_names)

    if parent is not None:
        model = keras.models.load_model(Path(settings.init_from) / parent.get("checkpoint", "best.keras"))
        if tuple(model.input_shape[1:3]) != (settings.image_size,) * 2 or model.output_shape[-1] != num_classes:
            raise UserFacingError(f"--init-from {settings.init_from}: that model takes {model.input_shape[1]} px and "
                                  f"has {model.output_shape[-1]} classes; this data is {settings.image_size} px with "
                                  f"{num_classes} classes")
    else:
        model = build_model(settings, num_classes)
    quiet = progress is not None  # Keras' per-epoch lines would be the only other thing on stdout
    verbose = 0 if quiet else (1 if sys.stdout.isatty() else 2)
    curve = [TestCurve(data.test)] if test_curve else []  # before the CSVLogger, which then logs it
    reporting = [ProgressEvents(progress, settings.epochs)] if progress is not None else []
    if quiet:
        reporting.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
            f"Epoch {epoch + 1}/{settings.epochs}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items()),
            file=sys.stderr, flush=True)))
    if spec.fit is not None:
        # The model's own recipe, with a fixed schedule: its final weights are the result.
        history = spec.fit(model, data, settings, verbose=verbose,
                           callbacks=curve + [keras.callbacks.CSVLogger(run_dir / "history.csv")] + reporting
                           + list(callbacks or []))
        checkpoint = "final.keras"
        model.save(run_dir / checkpoint)
    else:
        model.compile(optimizer=make_optimizer(settings.optimizer, settings.lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        augmenter = (make_augmenter(settings.seed, settings.shift_px, settings.image_size) if settings.augment
                     else None)
        train_ds = make_dataset(data.train.x, data.train.y, settings.batch_size, shuffle=True,
                                augmenter=augmenter, seed=settings.seed)
        val_ds = make_dataset(data.val.x, data.val.y, 512, shuffle=False)
        history = model.fit(train_ds, validation_data=val_ds if len(data.val) else None, epochs=settings.epochs,
                            callbacks=curve + make_callbacks(settings, run_dir) + reporting + list(callbacks or []),
                            verbose=verbose).history
        checkpoint = "best.keras"
    wall_time = time.perf_counter() - started - sum(c.seconds for c in curve)
    if parent is not None:
        wall_time += parent["training_wall_time_s"]  # the model's whole training, all stages

    record = {
        "model": settings.model,
        "name": settings.export_name,
        "dataset": data.name,
        "class_names": list(data.class_names),
        "display_names": list(data.display_names) if data.display_names else None,
        "image_size": settings.image_size,
        "settings": asdict(settings),
        "command": command or " ".join(sys.argv),
        "checkpoint": checkpoint,
        "epochs_run": len(history["loss"]),
        "training_wall_time_s": round(wall_time, 1),
        **({"test_curve_eval_s": round(curve[0].seconds, 1)} if curve else {}),
        **({"continues": {key: parent[key] for key in ("command", "epochs_run", "training_wall_time_s", "continues")
                          if key in parent} | {"run": str(settings.init_from)}} if parent else {}),
        "data": json_ready(data.describe()),  # folder datasets: with the report (skipped files, splits, ...)
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
        onnx_path, card = export_run(run_dir, export_dir, data=data, with_card=True)
        if settings.data is not None if int8 is None else int8:  # issue 26: own-class exports ship int8
            from training.quantize import quantize_after_export
            onnx_path, card = quantize_after_export(onnx_path, card, data, command=command)
        if progress is not None:
            progress({"event": "exported", "model": onnx_path.stem, "path": str(onnx_path.resolve()),
                      "test_accuracy": card["test_accuracy"], "classes": card["class_names"],
                      "image_size": card["image_size"], "training_wall_time_s": card["training_wall_time_s"]})
    return run_dir
