"""Training throughput of fast_cnn's step under each speed trick, one fresh process per variant.

    python benchmarks/fast_cnn_speed.py [--steps 6] [--batch-size 2000] [--only VARIANT ...] [--results PATH]

Times the real model, optimiser (MuonSGD) and loss on random images (the step's cost does not depend on
the pixels), after two warm-up steps, and prints images/s per variant:
- float32 vs mixed_bfloat16 (native on CPUs with AVX512-BF16 or AMX, emulated elsewhere: what
  `--precision auto` decides on, training/precision.py);
- glibc malloc told to keep freed buffers (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000, which
  sped up PyTorch's airbench here) vs the default;
- batch size;
- fast_cnn_95 (airbench95's widths) against fast_cnn: what a wider network costs per image.
Run it on an otherwise idle machine; figures and the machine (CPU, native bfloat16 or not) go to
benchmarks/results/fast_cnn_speed.json or --results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KEEP_FREED_MEMORY = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
VARIANTS = {
    "mixed_bfloat16": {"precision": "mixed_bfloat16"},
    "float32": {"precision": "float32"},
    "mixed_bfloat16, malloc keeps freed memory": {"precision": "mixed_bfloat16", "env": KEEP_FREED_MEMORY},
    "mixed_bfloat16, batch 500": {"precision": "mixed_bfloat16", "batch_size": 500},
    "fast_cnn_95, mixed_bfloat16": {"precision": "mixed_bfloat16", "model": "fast_cnn_95"},
    "fast_cnn_95, float32": {"precision": "float32", "model": "fast_cnn_95"},
}


def measure(precision: str, batch_size: int, steps: int, model: str = "fast_cnn") -> float:
    import keras
    import numpy as np

    from training import fast_cnn, models

    keras.mixed_precision.set_global_policy(precision)
    trainer = fast_cnn.logits_model(models.create_model(model))
    trainer.compile(optimizer=fast_cnn.MuonSGD(1.0), loss=fast_cnn.recipe_loss())
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, 32, 32, 3)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch_size)]
    for _ in range(2):
        trainer.train_on_batch(x, y)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), metavar="VARIANT",
                        help=f"measure only these variants: {', '.join(VARIANTS)}")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "fast_cnn_speed.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant in this process
    args = parser.parse_args()
    if args.one:
        config = json.loads(args.one)
        print(json.dumps({"images_per_s": measure(**config, batch_size=args.batch_size, steps=args.steps)}))
        return

    results = {}
    for label, config in VARIANTS.items():
        if args.only and label not in args.only:
            continue
        config = dict(config)
        batch_size = config.pop("batch_size", args.batch_size)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **config.pop("env", {})}
        done = subprocess.run([sys.executable, __file__, "--one", json.dumps(config), "--steps", str(args.steps),
                               "--batch-size", str(batch_size)], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True)
        rate = json.loads(done.stdout.strip().splitlines()[-1])["images_per_s"]
        results[label] = round(rate, 1)
        print(f"{label:45s} {rate:7.1f} images/s  ({50000 / rate:5.1f} s per epoch)", flush=True)
    from training.precision import native_bfloat16, resolve_precision
    from cifar10.machine import machine

    host = {**machine(), "native_bfloat16": native_bfloat16(), "auto_precision": resolve_precision("auto")[0]}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"steps": args.steps, "batch_size": args.batch_size, "machine": host,
                                        "images_per_s": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
