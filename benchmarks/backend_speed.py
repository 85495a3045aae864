"""Training-step throughput of registered models under each Keras 3 backend, one fresh process per case.

    python benchmarks/backend_speed.py [--steps 20] [--backends tensorflow torch jax] [--models cnn_sgd_m1 fast_cnn]
                                       [--jit-compile auto on off] [--batch-size N] [--results PATH]

Keras 3 runs the same model code on TensorFlow, PyTorch or JAX (``KERAS_BACKEND``). Which one trains fastest
on a CPU depends on the CPU and the model (small batches pay per-step overhead, big convolutions pay the
convolution kernels), so this measures it rather than guessing: for each model it builds the registered
network, compiles it the way ``cifar10 train`` does (the recipe's optimizer, learning rate and loss; fast_cnn
with its own MuonSGD and logits loss) and times ``train_on_batch`` at the recipe's batch size on random
images (a step's cost does not depend on the pixels), after warm-up steps that include compilation.

TensorFlow comes with the ``training`` extra, torch with ``transfer``, JAX with neither (``pip install jax``);
a backend that is not installed gets an error row, it is not skipped silently. ``--jit-compile on`` also
measures XLA (TensorFlow) and torch.compile (torch). Figures and the machine (CPU, flags) go to
benchmarks/results/backend_speed.json or --results. Run it on an otherwise idle machine.
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
BACKENDS = ("tensorflow", "torch", "jax")


def measure(model_name: str, batch_size: int, steps: int, warmup: int, jit_compile: str = "auto") -> dict:
    """One case, in this process (its backend is the one KERAS_BACKEND named before keras was imported)."""
    import keras
    import numpy as np

    from training import fast_cnn, models
    from training.train import make_optimizer

    jit = {"auto": "auto", "on": True, "off": False}[jit_compile]
    spec = models.get_spec(model_name)
    model = models.create_model(model_name)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, batch_size)
    if spec.fit is not None:  # fast_cnn's own recipe: MuonSGD on the logits, label smoothing, summed loss
        model = fast_cnn.logits_model(model)
        model.compile(optimizer=fast_cnn.MuonSGD(1.0), loss=fast_cnn.recipe_loss(), jit_compile=jit)
        y = np.eye(10, dtype=np.float32)[labels]
    else:  # what training/train.py compiles for every other model
        defaults = spec.defaults
        model.compile(optimizer=make_optimizer(defaults.optimizer, defaults.lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
        y = labels.astype(np.int64)
    started = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(x, y)
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - started
    return {"backend": keras.backend.backend(), "batch_size": batch_size, "steps": steps,
            "ms_per_step": round(1000 * seconds / steps, 1), "images_per_s": round(steps * batch_size / seconds, 1),
            "warmup_s": round(warmup_s, 1), "jit_compile": jit_compile}


def recipe_batch_size(model_name: str) -> int:
    from training import models
    return models.get_spec(model_name).defaults.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn_sgd_m1", "fast_cnn"])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per case (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included")
    parser.add_argument("--jit-compile", choices=["auto", "on", "off"], nargs="+", default=["auto"],
                        help="Keras' jit_compile (XLA on TensorFlow, torch.compile on torch; JAX always jits); "
                             "'auto' is what cifar10 train uses: off on a CPU-only TensorFlow or torch")
    parser.add_argument("--batch-size", type=int, help="override the recipe's batch size for every model")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "backend_speed.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one case in this process
    args = parser.parse_args()
    if args.one:
        case = json.loads(args.one)
        print(json.dumps(measure(case["model"], case["batch_size"], args.steps, args.warmup, case["jit_compile"])))
        return

    from cifar10.machine import describe, machine

    results = []
    for model_name in args.models:
        batch_size = args.batch_size or recipe_batch_size(model_name)
        for backend, jit_compile in [(b, j) for b in args.backends for j in args.jit_compile]:
            env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
            case = {"model": model_name, "batch_size": batch_size, "jit_compile": jit_compile}
            done = subprocess.run([sys.executable, __file__, "--one", json.dumps(case), "--steps", str(args.steps),
                                   "--warmup", str(args.warmup)], env=env, cwd=ROOT, capture_output=True, text=True)
            lines = done.stdout.strip().splitlines()
            if done.returncode == 0 and lines:
                row = {"model": model_name, **json.loads(lines[-1])}
                if row["backend"] != backend:  # keras fell back (e.g. a config file): never report it as asked
                    row = {"model": model_name, "backend": backend, "jit_compile": jit_compile,
                           "error": f"keras ran {row['backend']}"}
            else:
                error = (done.stderr.strip().splitlines() or ["no output"])[-1]
                row = {"model": model_name, "backend": backend, "jit_compile": jit_compile, "batch_size": batch_size,
                       "error": error}
            results.append(row)
            print(json.dumps(row), flush=True)

    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({
        "command": "python benchmarks/backend_speed.py " + " ".join(sys.argv[1:]),
        "machine": machine(), "results": results}, indent=2) + "\n")
    print(f"{describe(machine())}; results in {args.results}")


if __name__ == "__main__":
    main()
