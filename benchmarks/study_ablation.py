"""What explains a study column's figure? Train one of the study's small CNNs with the table's
hyperparameters and one change at a time, and measure what the study could have reported.

    python benchmarks/study_ablation.py --model ishu_m2 --padding same valid --train-size 45000 50000 --seeds 0
    python benchmarks/study_ablation.py --model ishu_baseline --batch-norm on --lr-schedule plateau

For every combination of the options given it trains the model the way `cifar10 train` does (same optimizer,
batches, augmentation, schedule: training/train.py's helpers; the model's registered defaults) for the
model's epochs, then measures on the 10,000 test images: accuracy, loss, top-2 and top-3 accuracy, and the
accuracy and loss on the images it trained on (inference mode), next to the last epoch's training figures
(dropout on, augmented: what Keras prints). Results are appended to benchmarks/results/study_ablation.json
with the command. ``--train-size 50000`` trains on every training image (no validation hold-out), as a study
that validates on the test set would, and keeps the last epoch's weights; 45000 is `cifar10 train`'s split,
with its callbacks (the schedule, early stopping, the best validation epoch's weights). ``--batch-norm on``
puts BatchNorm between each convolution and its ReLU; ``--lr-schedule`` and ``--shift-px`` (augmentation
translation) override the model's defaults. Needs CIFAR-10 ($CIFAR10_DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "study_ablation.json"


def run_one(model_name: str, padding: str, train_size: int, seed: int, data_dir=None, batch_norm: bool = False,
            lr_schedule: str | None = None, shift_px: int | None = None) -> dict:
    import tempfile

    import keras
    import numpy as np

    from training import models
    from training.data import load_cifar10
    from training.train import TrainSettings, make_augmenter, make_callbacks, make_dataset, make_optimizer

    settings = TrainSettings.for_model(model_name, seed=seed, lr_schedule=lr_schedule, shift_px=shift_px)
    keras.utils.set_random_seed(seed)
    data = load_cifar10(data_dir, validation_size=50000 - train_size)
    model = models.create_model(model_name, padding=padding, batch_norm=batch_norm)
    model.compile(optimizer=make_optimizer(settings.optimizer, settings.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    augmenter = make_augmenter(seed, settings.shift_px) if settings.augment else None
    train_ds = make_dataset(data.train.x, data.train.y, settings.batch_size, shuffle=True, augmenter=augmenter,
                            seed=seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        if len(data.val):  # as `cifar10 train`: schedule, early stopping, best validation epoch
            history = model.fit(train_ds, validation_data=make_dataset(data.val.x, data.val.y, 512, shuffle=False),
                                epochs=settings.epochs, callbacks=make_callbacks(settings, Path(run_dir)),
                                verbose=2).history
            model = keras.models.load_model(Path(run_dir) / "best.keras")
        else:
            if settings.lr_schedule != "constant":
                raise SystemExit(f"--lr-schedule {settings.lr_schedule} needs a validation split: --train-size 45000")
            history = model.fit(train_ds, epochs=settings.epochs, verbose=2).history
    seconds = time.perf_counter() - started

    def measure(x, y):
        probs = model.predict(x.astype("float32"), batch_size=512, verbose=0)
        ranked = np.argsort(-probs, axis=1)
        loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))
        return {"accuracy": float(np.mean(ranked[:, 0] == y)), "loss": loss,
                "top2": float(np.mean((ranked[:, :2] == y[:, None]).any(axis=1))),
                "top3": float(np.mean((ranked[:, :3] == y[:, None]).any(axis=1)))}

    return {"model": model_name, "padding": padding, "batch_norm": batch_norm, "train_images": train_size,
            "seed": seed, "lr_schedule": settings.lr_schedule, "shift_px": settings.shift_px,
            "epochs": settings.epochs, "batch_size": settings.batch_size, "optimizer": settings.optimizer,
            "lr": settings.lr, "augment": settings.augment, "parameters": model.count_params(),
            "train_seconds": round(seconds, 1),
            "last_epoch": {"accuracy": history["accuracy"][-1], "loss": history["loss"][-1]},
            "test": measure(data.test.x, data.test.y),
            "train_inference": measure(data.train.x, data.train.y)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--padding", nargs="+", default=["same"], choices=["same", "valid"])
    parser.add_argument("--train-size", nargs="+", type=int, default=[45000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--batch-norm", nargs="+", choices=["off", "on"], default=["off"])
    parser.add_argument("--lr-schedule", choices=["constant", "plateau", "cosine"])
    parser.add_argument("--shift-px", type=int)
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    from cifar10.machine import machine
    command = "python benchmarks/study_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    combinations = [(padding, size, seed, norm) for padding in args.padding for size in args.train_size
                    for seed in args.seeds for norm in args.batch_norm]
    for padding, size, seed, norm in combinations:
        result = run_one(args.model, padding, size, seed, args.data_dir, batch_norm=norm == "on",
                         lr_schedule=args.lr_schedule, shift_px=args.shift_px)
        result |= {"command": command, "machine": machine()}
        print(json.dumps(result), flush=True)
        records.append(result)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
