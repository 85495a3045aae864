"""Can one temperature bring a study model's test ECE to the project's goal (<= 0.02)? Measured, not shipped.

    python benchmarks/study_calibration.py                      # ishu_baseline and ishu_m1 (issue 29)
    python benchmarks/study_calibration.py --models ishu_m2 --results /tmp/study_calibration.json

For each model of ``exported_models/study/``: onnxruntime (the apps' ``Classifier``) over the validation split
(the last 5,000 training images, never trained on) and the 10,000 test images; the graph's temperature
``T`` (its metadata) is undone, ``p = calibrated(q, 1 / T)`` (``q = softmax(log p / T)``), to get the
uncalibrated probabilities. Then the test ECE (``cifar10.metrics``, 15 bins) of:

- ``none``: T = 1;
- ``nll_validation``: T fitted by likelihood on the validation split (``training.calibration.fit_temperature``,
  what the exporter does; it should reproduce the graph's own T);
- ``ece_validation``: the T of a grid that minimises the *validation* ECE;
- ``oracle_test``: the T of the grid that minimises the *test* ECE. It looks at the test labels, so it is
  never a temperature to ship: only the bound on what any single temperature can reach.

Also the reliability bins (over- / under-confident per bin) at the graph's temperature, and how much the
test ECE moves under a bootstrap of the test images. Results: ``benchmarks/results/study_calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cifar10 import contract  # noqa: E402
from cifar10.metrics import expected_calibration_error, reliability_bins  # noqa: E402
from training.calibration import calibrated, fit_temperature  # noqa: E402

ECE_GOAL = 0.02  # the project's calibration goal on the 10,000 test images (docs/trust.md)
GRID = np.round(np.arange(0.5, 2.0 + 1e-9, 0.0005), 4)  # temperatures tried for the ECE-minimising rows
MODELS = ("ishu_baseline", "ishu_m1")
RESULTS = ROOT / "benchmarks" / "results" / "study_calibration.json"


def graph_temperature(path: Path) -> float:
    """The temperature folded into the graph's ``probabilities`` (1.0 for a contract-v1 file)."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    return float(meta.get(contract.META_TEMPERATURE, 1.0))


def uncalibrated(path: Path, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
    """``q``: the graph's (calibrated) probabilities by onnxruntime; ``p``: the same with its temperature
    undone (float64); ``temperature``; ``logits`` when the graph has them."""
    from cifar10.inference import Classifier

    classifier = Classifier(path, provider="cpu")
    outputs = [classifier.predict_all(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    q = np.concatenate([o.probabilities for o in outputs])
    temperature = graph_temperature(path)
    out = {"q": q, "p": calibrated(q, 1.0 / temperature), "temperature": temperature}
    if all(o.logits is not None for o in outputs):
        out["logits"] = np.concatenate([o.logits for o in outputs])
    return out


def bootstrap_ece(labels: np.ndarray, probabilities: np.ndarray, rounds: int = 1000, seed: int = 0) -> dict:
    """The test ECE's spread over resamples of the images, and what a perfectly calibrated model of the same
    confidences would score (labels drawn from its own probabilities): ECE's floor at this many images."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    resampled = np.array([expected_calibration_error(labels[i], probabilities[i])
                          for i in (rng.integers(0, n, n) for _ in range(rounds))])
    cumulative = probabilities.cumsum(axis=1)
    floor = np.array([expected_calibration_error((cumulative > rng.random((n, 1))).argmax(axis=1), probabilities)
                      for _ in range(rounds // 5)])
    return {"rounds": rounds, "sd": float(resampled.std()), "p2_5": float(np.quantile(resampled, 0.025)),
            "p97_5": float(np.quantile(resampled, 0.975)),
            "calibrated_floor_mean": float(floor.mean()), "calibrated_floor_sd": float(floor.std())}


def temperature_study(p_val: np.ndarray, y_val: np.ndarray, p_test: np.ndarray, y_test: np.ndarray,
                      graph_t: float, grid: np.ndarray = GRID) -> dict:
    """Validation and test ECE for each way of choosing the temperature (see the module docstring)."""
    y_val, y_test = np.asarray(y_val).astype(int), np.asarray(y_test).astype(int)
    val = np.array([expected_calibration_error(y_val, calibrated(p_val, t)) for t in grid])
    test = np.array([expected_calibration_error(y_test, calibrated(p_test, t)) for t in grid])

    def row(t: float) -> dict:
        return {"temperature": float(t), "validation_ece": expected_calibration_error(y_val, calibrated(p_val, t)),
                "test_ece": expected_calibration_error(y_test, calibrated(p_test, t))}
    reaching = grid[test <= ECE_GOAL]
    return {
        "rows": {"none": row(1.0), "graph": row(graph_t), "nll_validation": row(fit_temperature(p_val, y_val)),
                 "ece_validation": row(grid[val.argmin()]), "oracle_test": row(grid[test.argmin()])},
        "grid": [float(grid[0]), float(grid[-1]), float(grid[1] - grid[0])],
        "test_temperatures_reaching_goal": ([float(reaching.min()), float(reaching.max())] if len(reaching) else None),
        "accuracy": {"validation": float((p_val.argmax(1) == y_val).mean()),
                     "test": float((p_test.argmax(1) == y_test).mean())},
    }


def reliability(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """The bins, and how much of the ECE comes from over- and from under-confident bins."""
    rows = reliability_bins(labels, probabilities)
    n = sum(r["n"] for r in rows)
    gap = [(r["n"] / n) * (r["accuracy"] - r["confidence"]) for r in rows]
    return {"bins": [{**r, "share_x_gap": g} for r, g in zip(rows, gap)],
            "over_confident_part": float(-sum(g for g in gap if g < 0)),
            "under_confident_part": float(sum(g for g in gap if g > 0))}


def main(argv=None) -> int:
    from cifar10.machine import machine
    from training.data import load_cifar10

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--models-dir", type=Path, default=ROOT / "exported_models" / "study")
    parser.add_argument("--data-dir")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    data = load_cifar10(args.data_dir)
    y_val, y_test = data.val.y.astype(int), data.test.y.astype(int)
    report = {"command": "python benchmarks/study_calibration.py" + (
        f" --models {' '.join(args.models)}" if list(args.models) != list(MODELS) else ""),
        "machine": machine(), "ece_goal": ECE_GOAL, "bins": 15, "models": {}}
    for name in args.models:
        started = time.perf_counter()
        path = args.models_dir / f"{name}.onnx"
        val, test = uncalibrated(path, data.val.x), uncalibrated(path, data.test.x)
        entry = temperature_study(val["p"], y_val, test["p"], y_test, test["temperature"])
        if "logits" in test:  # without test-time augmentation, softmax(logits) is p: the undoing checks out
            z = test["logits"].astype(np.float64)
            entry["undo_check_max_abs_diff"] = float(np.abs(calibrated(np.exp(z - z.max(1, keepdims=True)), 1.0)
                                                            - test["p"]).max())
        at_graph = {"validation": calibrated(val["p"], test["temperature"]),
                    "test": calibrated(test["p"], test["temperature"])}
        entry["graph_output_test_ece"] = expected_calibration_error(y_test, test["q"])
        entry["reliability_at_graph_temperature"] = {split: reliability(y, at_graph[split])
                                                     for split, y in (("validation", y_val), ("test", y_test))}
        entry["test_ece_bootstrap"] = bootstrap_ece(y_test, at_graph["test"])
        entry["seconds"] = round(time.perf_counter() - started, 1)
        report["models"][name] = entry
        rows = entry["rows"]
        print(f"{name}: " + ", ".join(f"{k} T={r['temperature']:.4f} val {r['validation_ece']:.4f} test "
                                      f"{r['test_ece']:.4f}" for k, r in rows.items()), flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
