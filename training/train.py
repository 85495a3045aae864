"""Train a registered model on CIFAR-10 (the default) or on a folder of labelled images (``--data``), keep
the best epoch on validation, then evaluate and export.

Read top to bottom: settings (training/settings.py) -> is the export name free? -> data (training/data.py)
-> model -> optimiser -> input pipeline -> callbacks (progress events) -> fit -> run record -> test
evaluation + ONNX export (training/export.py). This module calls export; export never imports it.

Progress: ``train(..., progress=emit)`` calls ``emit({"event": ...})`` for the machine-readable events that
``cifar10 train --progress json`` prints one per line on stdout (HELPERS.md / docs/train_folder.md):
"cache" (decoding the folder), "scan" (the dataset report), "epoch", "exported". Human logs go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cifar10.contract import IMAGE_SIZE
from cifar10.errors import UserFacingError
from training import models
from training.checkpoint import (BEST, CHECKPOINT, FINISHED, HISTORY, UNFINISHED, BestCheckpoint, EpochCheckpoint,
                                 atomic_write_json, is_finished, load_checkpoint, read_record)
from training.data import json_ready, load_cifar10, load_training_data  # noqa: F401  (load_cifar10: for callers)
from training.export import check_name_free, export_run
from training.plots import plot_history
from training.precision import resolve_precision
from training.settings import TrainSettings, safe_name  # noqa: F401  (safe_name: for callers)

AUTOTUNE = tf.data.AUTOTUNE


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
                 seed: int = 0, skip_epochs: int = 0) -> tf.data.Dataset:
    """``skip_epochs``: a resumed run's epochs done; the seeded shuffle then goes on with the orders the
    uninterrupted run would have drawn (each iterator made over the dataset draws the next order: see
    KERAS_ITERATORS_PER_EPOCH)."""
    if isinstance(x, np.memmap) or x.nbytes > 256 * 2**20:
        ds = _indexed_batches(x, y, batch_size, shuffle=shuffle, seed=seed, skip_epochs=skip_epochs)
    else:  # small arrays (CIFAR-10): whole tensors in tf.data
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = _skip_orders(ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True), skip_epochs)
        ds = ds.batch(batch_size)
    ds = ds.map(lambda images, labels: (tf.cast(images, tf.float32), labels), num_parallel_calls=AUTOTUNE)
    if augmenter is not None:
        ds = ds.map(lambda images, labels: (augmenter(images, training=True), labels),
                    num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


# Keras 3's fit (trainers/epoch_iterator.py) makes two iterators over a dataset of known length per epoch: one
# as the epoch begins and one more as it ends (then dropped), besides one before the first epoch (its symbolic
# build, made again on resume). Each draws an order from the reshuffling seed, so epoch k's order is the
# (2k)-th draw; a resumed run skips 2 x the epochs done. tests/test_resume_training.py checks it stays so.
KERAS_ITERATORS_PER_EPOCH = 2


def _skip_orders(shuffled: tf.data.Dataset, epochs: int) -> tf.data.Dataset:
    for _ in range(epochs * KERAS_ITERATORS_PER_EPOCH):  # an iterator made draws an order; nothing is read
        iter(shuffled)
    return shuffled


def _indexed_batches(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int,
                     skip_epochs: int = 0) -> tf.data.Dataset:
    """Batches read from ``x`` by index (a memory-mapped cache stays on disk: only a batch is in memory)."""
    size = x.shape[1:]

    def gather(rows):
        rows = np.sort(rows)  # sequential reads; the batch's order does not matter
        return np.ascontiguousarray(x[rows]), y[rows].astype(np.int64)

    ds = tf.data.Dataset.range(len(y))
    if shuffle:
        ds = _skip_orders(ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True), skip_epochs)
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


def make_callbacks(settings: TrainSettings, run_dir: Path, *, append: bool = False) -> list[keras.callbacks.Callback]:
    """``append``: a resumed run (history.csv goes on from the checkpoint's epochs)."""
    callbacks = [
        BestCheckpoint(Path(run_dir) / BEST, monitor="val_accuracy"),  # ModelCheckpoint(save_best_only), atomic
        keras.callbacks.CSVLogger(Path(run_dir) / "history.csv", append=append),
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
        self.train_time_s = 0.0  # the last logged value (a resumed run's checkpoint sets it)

    def on_train_begin(self, logs=None):
        self.fit_started, self.before = time.perf_counter(), None

    def on_epoch_end(self, epoch, logs=None):
        started = time.perf_counter()
        if self.before is None:  # earlier stages of a resumed run
            self.before = self.train_time_s
        # Since fit() began (plus earlier stages), without tests.
        logs["train_time_s"] = self.train_time_s = self.before + started - self.fit_started - self.seconds
        scores = self.model.predict(self.test.x.astype(np.float32), batch_size=1000, verbose=0)
        logs["test_accuracy"] = float((scores.argmax(1) == self.test.y).mean())
        self.seconds += time.perf_counter() - started


def previous_run(run_dir, model: str) -> dict:
    """The record of a run to continue from; it must be a finished run of the same model."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise UserFacingError(f"--init-from {run_dir}: no run.json there (not a finished training run)")
    record = json.loads(path.read_text())
    if not is_finished(record):
        raise UserFacingError(f"--init-from {run_dir}: that run is unfinished: resume it first with "
                              f"cifar10 train --resume {run_dir}")
    if record["model"] != model:
        raise UserFacingError(f"--init-from {run_dir}: that run trained {record['model']!r}, not {model!r}")
    return record


def train(settings: TrainSettings, *, data_dir=None, out: Path = Path("runs"), export_dir: Path | None = None,
          replace_model: bool = False, command: str | None = None, test_curve: bool = False,
          callbacks: list[keras.callbacks.Callback] | None = None, progress=None, resume_dir=None,
          int8: bool | None = None) -> Path:
    """Train, keep the best validation epoch (or a recipe's final weights), write the run record; export
    when export_dir is set (``int8``: then quantize it, training.quantize; default: for own-class data only).
    ``test_curve``: log test accuracy per epoch (TestCurve). ``callbacks``: more Keras callbacks for fit
    (``cifar10 sweep`` reports each epoch to Ray Tune with one). ``progress``: a function that takes each progress
    event (a JSON-ready dict; see the module docstring). ``resume_dir``:
    an unfinished run folder to continue (use :func:`resume`, which reads its settings).

    A model of the same name in ``export_dir`` is replaced only with ``replace_model``: otherwise
    :class:`training.export.ModelExistsError` is raised before any training (and again at export time,
    should the name have been taken meanwhile)."""
    if export_dir is not None and not replace_model:
        check_name_free(export_dir, settings.export_name)
    policy, message = resolve_precision(settings.precision)
    if message:
        print(message, file=sys.stderr)
    settings = replace(settings, precision=policy)  # the run record and the card keep what was used
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return _train(settings, data_dir=data_dir, out=out, export_dir=export_dir, replace_model=replace_model,
                      command=command, test_curve=test_curve, callbacks=callbacks, progress=progress,
                      resume_dir=resume_dir, int8=int8)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)  # later models in this process: unchanged


def resumable_record(run_dir) -> dict:
    """The run.json of an unfinished run that ``cifar10 train --resume`` can continue (else a clear error)."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record is None:
        raise UserFacingError(f"--resume {run_dir}: no readable run.json there (not a training run folder)")
    if is_finished(record):
        raise UserFacingError(f"--resume {run_dir}: that run is already finished; export it with "
                              f"cifar10 export {run_dir}")
    if "settings" not in record:
        raise UserFacingError(f"--resume {run_dir}: its run.json has no settings (not a resumable run)")
    try:
        spec = models.get_spec(record["model"])
    except (KeyError, ValueError) as exc:
        raise UserFacingError(f"--resume {run_dir}: its model {record['model']!r} is not registered any more "
                              f"({exc})") from None
    if not spec.resumable:
        raise UserFacingError(f"--resume {run_dir}: {record['model']} trains with its own recipe in one go and "
                              "cannot be resumed; start it again")
    return record


def resume(run_dir, *, data_dir=None, export_dir=..., replace_model: bool | None = None, command: str | None = None,
           progress=None, callbacks=None, int8: bool | None = None) -> Path:
    """Continue the unfinished run in ``run_dir`` with the settings in its run.json: the remaining epochs only,
    then the run record and the export. ``export_dir`` / ``replace_model`` / ``data_dir`` left out: the ones the
    run was started with. ``int8``: as for :func:`train`."""
    record = resumable_record(run_dir)
    settings = TrainSettings.from_record(record)
    target = record.get("export") or {}
    if export_dir is ...:
        export_dir = Path(target["dir"]) if target.get("dir") else None
    if replace_model is None:
        replace_model = bool(target.get("replace"))
    data_dir = data_dir or record.get("data_dir")
    return train(settings, data_dir=data_dir, out=Path(run_dir).parent, export_dir=export_dir,
                 replace_model=replace_model, command=command, test_curve=bool(record.get("test_curve")),
                 callbacks=callbacks, progress=progress, resume_dir=run_dir, int8=int8)


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




def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _train(settings: TrainSettings, *, data_dir=None, out: Path = Path("runs"), export_dir: Path | None = None,
           replace_model: bool = False, command: str | None = None, test_curve: bool = False, callbacks=None,
           progress=None, resume_dir=None, int8: bool | None = None) -> Path:
    parent = previous_run(settings.init_from, settings.model) if settings.init_from else None
    spec = models.get_spec(settings.model)
    if settings.init_head and (settings.init_from or spec.fit is not None):
        raise UserFacingError(f"--init-head starts the head of a model fine-tuned by gradient descent: not with "
                              f"{'--init-from' if settings.init_from else settings.model + ' (its own recipe)'}")
    command = command or " ".join(sys.argv)
    keras.utils.set_random_seed(settings.seed)
    started = time.perf_counter()  # the training wall time includes loading the data
    data = load_training_data(settings, data_dir, progress)  # prints its one-line summary
    num_classes = len(data.class_names)
    # The model before the run folder: a model that cannot start (--init-from, --init-head) leaves no run behind.
    if parent is not None:
        model = keras.models.load_model(Path(settings.init_from) / parent.get("checkpoint", "best.keras"))
        if tuple(model.input_shape[1:3]) != (settings.image_size,) * 2 or model.output_shape[-1] != num_classes:
            raise UserFacingError(f"--init-from {settings.init_from}: that model takes {model.input_shape[1]} px and "
                                  f"has {model.output_shape[-1]} classes; this data is {settings.image_size} px with "
                                  f"{num_classes} classes")
    else:
        model = build_model(settings, num_classes)
    if settings.init_head and resume_dir is None:  # a resumed run's checkpoint has the head's later weights
        from training.linear_probe import init_head_from_run
        print(init_head_from_run(model, settings.init_head, data.class_names), file=sys.stderr)
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        start_record = read_record(run_dir)
        checkpoint = load_checkpoint(run_dir)
        if list(start_record.get("class_names") or data.class_names) != list(data.class_names):
            raise UserFacingError(f"--resume {run_dir}: the data's classes changed since the run started "
                                  f"({', '.join(start_record['class_names'])} -> {', '.join(data.class_names)})")
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_dir = Path(out) / f"{settings.export_name}-{stamp}"
        run_dir.mkdir(parents=True, exist_ok=True)
        start_record, checkpoint = None, None
    resumable = spec.resumable
    epochs_done = checkpoint.epochs_done if checkpoint else 0
    stages = checkpoint.stages if checkpoint else []
    stage = {"started": _now(), "command": command, "first_epoch": epochs_done + 1, "last_epoch": epochs_done,
             "wall_time_s": 0.0}
    if resumable:
        # From the first epoch on, the folder says it is an unfinished run and how to go on with it.
        start_record = (start_record or {}) | {
            "status": UNFINISHED, "model": settings.model, "name": settings.export_name, "dataset": data.name,
            "class_names": list(data.class_names), "image_size": settings.image_size, "settings": asdict(settings),
            "command": (start_record or {}).get("command", command), "epochs": settings.epochs,
            "epochs_done": epochs_done, "started": (start_record or {}).get("started", _now()),
            "export": {"dir": str(Path(export_dir).resolve()) if export_dir is not None else None,
                       "replace": bool(replace_model)},
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None, "test_curve": bool(test_curve),
            "resume_command": f"cifar10 train --resume {run_dir}"}
        atomic_write_json(run_dir / "run.json", start_record)
    if progress is not None:
        progress({"event": "run", "run_dir": str(run_dir.resolve()), "epochs_done": epochs_done,
                  "epochs": settings.epochs, "resumed": checkpoint is not None, "resumable": resumable})
    if checkpoint is not None:
        print(f"Resuming {run_dir}: {epochs_done} of {settings.epochs} epochs done", file=sys.stderr)
    elif resumable:
        print(f"Run folder {run_dir} (a checkpoint after every epoch; if the run stops: cifar10 train --resume "
              f"{run_dir})", file=sys.stderr)

    quiet = progress is not None  # Keras' per-epoch lines would be the only other thing on stdout
    verbose = 0 if quiet else (1 if sys.stdout.isatty() else 2)
    curve = [TestCurve(data.test)] if test_curve else []  # before the CSVLogger, which then logs it
    reporting = [ProgressEvents(progress, settings.epochs)] if progress is not None else []
    if quiet:
        reporting.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
            f"Epoch {epoch + 1}/{settings.epochs}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items()),
            file=sys.stderr, flush=True)))
    resumed = checkpoint is not None
    if spec.fit is not None:  # a recipe's own fit: its history and, if resumable, the per-epoch checkpoint
        tracked = curve + [keras.callbacks.CSVLogger(run_dir / HISTORY, append=resumed)]
    else:
        tracked = curve + make_callbacks(settings, run_dir, append=resumed)
    keeper = EpochCheckpoint(run_dir, tracked=tracked, epochs=settings.epochs, resume_from=checkpoint,
                             stage_started=started, stage=stage, stages=stages,
                             exclude_seconds=lambda: sum(c.seconds for c in curve)) if resumable else None
    if resumed:
        checkpoint.restore_history_csv(run_dir)
    fit_callbacks = tracked + ([keeper] if keeper else []) + reporting + list(callbacks or [])
    try:
        if spec.fit is not None:
            # The model's own recipe, with a fixed schedule: its final weights are the result.
            resuming = {"checkpoint": checkpoint, "keeper": keeper} if resumable else {}
            history = spec.fit(model, data, settings, verbose=verbose, callbacks=fit_callbacks, **resuming)
            checkpoint_file = "final.keras"
            model.save(run_dir / checkpoint_file)
        else:
            model.compile(optimizer=make_optimizer(settings.optimizer, settings.lr),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            augmenter = (make_augmenter(settings.seed, settings.shift_px, settings.image_size) if settings.augment
                         else None)
            keeper.augmenter = augmenter
            train_ds = make_dataset(data.train.x, data.train.y, settings.batch_size, shuffle=True,
                                    augmenter=augmenter, seed=settings.seed, skip_epochs=epochs_done)
            val_ds = make_dataset(data.val.x, data.val.y, 512, shuffle=False)
            if resumed:  # everything back as it was after the checkpoint's epoch
                checkpoint.check_model(model, settings.model)
                checkpoint.restore_model(model)
                checkpoint.restore_optimizer(model)
                checkpoint.restore_augmenter(augmenter)
                checkpoint.restore_random()
            stopped_early = bool(resumed and checkpoint.state.get("stop_training"))
            if epochs_done < settings.epochs and not stopped_early:
                model.fit(train_ds, validation_data=val_ds if len(data.val) else None, epochs=settings.epochs,
                          initial_epoch=epochs_done,
                          shuffle=False,  # train_ds shuffles itself (Keras would warn that it ignores shuffle)
                          callbacks=fit_callbacks, verbose=verbose)
            checkpoint_file = BEST
    except KeyboardInterrupt:
        if keeper is not None:
            _say_stopped(run_dir, keeper.epochs_done, settings.epochs, progress)
        raise
    if keeper is not None:
        history = keeper.history  # with a resumed run's earlier epochs
    wall_time = time.perf_counter() - started - sum(c.seconds for c in curve)
    earlier = sum(s.get("wall_time_s", 0.0) for s in stages)  # the stages before a resume
    stage.update(last_epoch=len(history["loss"]), wall_time_s=round(wall_time, 1))
    wall_time += earlier
    if parent is not None:
        wall_time += parent["training_wall_time_s"]  # the model's whole training, all stages

    record = {
        "status": FINISHED,
        "model": settings.model,
        "name": settings.export_name,
        "dataset": data.name,
        "class_names": list(data.class_names),
        "display_names": list(data.display_names) if data.display_names else None,
        "image_size": settings.image_size,
        "settings": asdict(settings),
        "command": (start_record or {}).get("command", command),
        "checkpoint": checkpoint_file,
        "epochs_run": len(history["loss"]),
        "training_wall_time_s": round(wall_time, 1),
        **({"resumed": stages + [stage], "wall_time_s": round(wall_time, 1)} if stages else {}),
        **({"test_curve_eval_s": round(curve[0].seconds, 1)} if curve else {}),
        **({"continues": {key: parent[key] for key in ("command", "epochs_run", "training_wall_time_s", "continues")
                          if key in parent} | {"run": str(settings.init_from)}} if parent else {}),
        "data": json_ready(data.describe()),  # folder datasets: with the report (skipped files, splits, ...)
        **({key: start_record[key] for key in ("started", "epochs", "export", "data_dir")} if resumable else {}),
        "finished": _now(),
    }
    if "val_accuracy" in history:
        record["best_epoch"] = int(np.argmax(history["val_accuracy"])) + 1
        record["best_val_accuracy"] = float(np.max(history["val_accuracy"]))
    atomic_write_json(run_dir / "run.json", record)
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # finished: best.keras is the result; --init-from continues it
    plot_history(history, run_dir / "curves.png", title=settings.model)
    selection = (f"best val_accuracy {record['best_val_accuracy']:.4f} at epoch {record['best_epoch']}"
                 if "best_epoch" in record else f"final train accuracy {history['accuracy'][-1]:.4f}")
    resumed = f" ({len(stages) + 1} stages)" if stages else ""
    print(f"Trained {settings.model}: {record['epochs_run']} epoch{'s' * (record['epochs_run'] != 1)} in {wall_time:.0f} s"
          f"{resumed}, {selection}; run saved in {run_dir}", file=sys.stderr)

    if export_dir is not None:
        onnx_path, card = export_run(run_dir, export_dir, data=data, with_card=True, replace_model=replace_model)
        if settings.data is not None if int8 is None else int8:  # issue 26: own-class exports ship int8
            from training.quantize import quantize_after_export
            onnx_path, card = quantize_after_export(onnx_path, card, data, command=command)
        if progress is not None:
            progress({"event": "exported", "model": onnx_path.stem, "path": str(onnx_path.resolve()),
                      "test_accuracy": card["test_accuracy"], "classes": card["class_names"],
                      "image_size": card["image_size"], "training_wall_time_s": card["training_wall_time_s"]})
    return run_dir


def _say_stopped(run_dir: Path, epochs_done: int, epochs: int, progress) -> None:
    """Ctrl+C / SIGTERM during fit: the last finished epoch's checkpoint is on disk; say how to go on."""
    print(f"Stopped: {epochs_done} of {epochs} epochs done and kept in {run_dir} — resume: "
          f"cifar10 train --resume {run_dir}", file=sys.stderr, flush=True)
    if progress is not None:
        progress({"event": "stopped", "run_dir": str(Path(run_dir).resolve()), "epochs_done": epochs_done,
                  "epochs": epochs})
