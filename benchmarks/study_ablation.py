"""What explains a study column's figure? Train one of the study's small CNNs with the table's
hyperparameters and one change at a time, and measure what the study could have reported.

    python benchmarks/study_ablation.py --model ishu_m2 --padding same valid --train-size 45000 50000 --seeds 0

For every (padding, training images, seed) it trains the model the way `cifar10 train` does (same optimizer,
batches, augmentation, schedule: training/train.py's helpers; the model's registered defaults) for the
model's epochs, then measures on the 10,000 test images: accuracy, loss, top-2 and top-3 accuracy, and the
accuracy and loss on the images it trained on (inference mode), next to the last epoch's training figures
(dropout on, augmented: what Keras prints). Results are appended to benchmarks/results/study_ablation.json
with the command. ``--train-size 50000`` trains on every training image (no validation hold-out), as a study
that validates on the test set would; 45000 is `cifar10 train`'s split. Needs CIFAR-10 ($CIFAR10_DIR).
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


def run_one(model_name: str, padding: str, train_size: int, seed: int, data_dir=None) -> dict:
    import keras
    import numpy as np

    from training import models
    from training.data import load_cifar10
    from training.train import TrainSettings, make_augmenter, make_dataset, make_optimizer

    settings = TrainSettings.for_model(model_name, seed=seed)
    keras.utils.set_random_seed(seed)
    data = load_cifar10(data_dir, validation_size=50000 - train_size)
    model = models.create_model(model_name, padding=padding)
    model.compile(optimizer=make_optimizer(settings.optimizer, settings.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    augmenter = make_augmenter(seed, settings.shift_px) if settings.augment else None
    train_ds = make_dataset(data.train.x, data.train.y, settings.batch_size, shuffle=True, augmenter=augmenter,
                            seed=seed)
    started = time.perf_counter()
    history = model.fit(train_ds, epochs=settings.epochs, verbose=2).history
    seconds = time.perf_counter() - started

    def measure(x, y):
        probs = model.predict(x.astype("float32"), batch_size=512, verbose=0)
        ranked = np.argsort(-probs, axis=1)
        loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))
        return {"accuracy": float(np.mean(ranked[:, 0] == y)), "loss": loss,
                "top2": float(np.mean((ranked[:, :2] == y[:, None]).any(axis=1))),
                "top3": float(np.mean((ranked[:, :3] == y[:, None]).any(axis=1)))}

    return {"model": model_name, "padding": padding, "train_images": train_size, "seed": seed,
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
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    from training.export import machine
    command = "python benchmarks/study_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for padding in args.padding:
        for size in args.train_size:
            for seed in args.seeds:
                result = run_one(args.model, padding, size, seed, args.data_dir)
                result |= {"command": command, "machine": machine()}
                print(json.dumps(result), flush=True)
                records.append(result)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
