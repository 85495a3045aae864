"""Train fast_cnn (or fast_cnn_95) with the documented command; print time-to-target, final accuracy and the curve.

    python benchmarks/fast_cnn.py --seeds 0 1 2 [--export-dir DIR] [-- extra `cifar10 train` options]
    python benchmarks/fast_cnn.py --model fast_cnn_95 --seeds 0 1 2     # target 95 %

Each seed runs `cifar10 train --model MODEL --seed S --test-curve` in a fresh process (the command a user
runs, plus a test-accuracy evaluation after each epoch that is timed separately and subtracted), then
reads the run record, the per-epoch history and the exported model card. The final accuracy is the
card's: onnxruntime on the 10,000 test images, flip+shift TTA inside the exported graph. Figures go to
stdout and to benchmarks/results/MODEL.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cifar10.paths import portable_paths

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"fast_cnn": 0.94, "fast_cnn_95": 0.95}


def run_seed(model: str, seed: int, export_dir: Path, runs_dir: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "cifar10_cli", "train", "--model", model, "--seed", str(seed),
               "--test-curve", "--out", str(runs_dir), "--export-dir", str(export_dir), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    command_wall = time.perf_counter() - started
    return read_seed(model, seed, newest_run(runs_dir, model), export_dir, command_wall)


def newest_run(runs_dir: Path, model: str) -> Path:
    """The newest run folder of ``model`` (a folder with a run.json: a log file named like a run is not one)."""
    return max((p for p in runs_dir.glob(f"{model}-*") if (p / "run.json").is_file()), key=lambda p: p.stat().st_mtime)


def read_seed(model: str, seed: int, run_dir: Path, export_dir: Path, command_wall: float | None = None) -> dict:
    """One seed's figures from its run folder and exported card (``command_wall``: the whole command's seconds)."""
    target = TARGETS[model]
    record = json.loads((run_dir / "run.json").read_text())
    card = json.loads((export_dir / f"{model}.json").read_text())
    with open(run_dir / "history.csv") as f:
        curve = [{"epoch": int(row["epoch"]) + 1, "train_time_s": round(float(row["train_time_s"]), 1),
                  "train_accuracy": round(float(row["accuracy"]), 4),
                  "test_accuracy_no_tta": round(float(row["test_accuracy"]), 4)} for row in csv.DictReader(f)]
    final = card["test_accuracy"]
    # Time to the target: the first epoch whose plain test accuracy reaches it; else the end of training, if the
    # exported model (with its TTA) does.
    reached = next((row["train_time_s"] for row in curve if row["test_accuracy_no_tta"] >= target), None)
    time_to_target = reached if reached is not None else (record["training_wall_time_s"] if final >= target else None)
    return {"seed": seed, "test_accuracy_tta": final, "test_accuracy_no_tta": curve[-1]["test_accuracy_no_tta"],
            "training_wall_time_s": record["training_wall_time_s"],
            "command_wall_time_s": None if command_wall is None else round(command_wall - record.get("test_curve_eval_s", 0.0), 1),
            "target": target, "time_to_target_s": time_to_target, "curve": curve, "run_dir": portable_paths(str(run_dir))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(TARGETS), default="fast_cnn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--export-dir", type=Path, help="keep the last seed's model here (default: a temp dir)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    parser.add_argument("--results", type=Path, help="default: benchmarks/results/MODEL.json")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    results_path = args.results or ROOT / "benchmarks" / "results" / f"{args.model}.json"

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(args.seeds):
            # --export-dir: each seed after the first replaces the model the seed before it saved there (the
            # first replaces a model already there only when `-- --replace` is given, as `cifar10 train` says).
            again = ["--replace"] if args.export_dir and i > 0 and "--replace" not in extra else []
            result = run_seed(args.model, seed, args.export_dir or Path(tmp) / f"seed{seed}", args.runs_dir,
                              extra + again)
            results.append(result)
            print(f"\nseed {seed}: epoch  train s  train acc  test acc (no TTA)")
            for row in result["curve"]:
                print(f"         {row['epoch']:5d}  {row['train_time_s']:7.1f}  {row['train_accuracy']:9.4f}"
                      f"  {row['test_accuracy_no_tta']:.4f}")
            print(f"seed {seed}: test accuracy {result['test_accuracy_tta']:.4f} with TTA (ONNX), training "
                  f"{result['training_wall_time_s']:.0f} s, whole command {result['command_wall_time_s']:.0f} s, "
                  f"time to {result['target']:.0%}: {result['time_to_target_s']} s", flush=True)

    accuracies = [r["test_accuracy_tta"] for r in results]
    summary = {
        "model": args.model,
        "seeds": args.seeds,
        "mean_test_accuracy_tta": round(statistics.mean(accuracies), 4),
        "std_test_accuracy_tta": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else 0.0,
        "max_training_wall_time_s": max(r["training_wall_time_s"] for r in results),
        "max_command_wall_time_s": max(r["command_wall_time_s"] for r in results),
        "extra_args": extra,
        "runs": results,
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{args.model} over seeds {args.seeds}: mean test accuracy {summary['mean_test_accuracy_tta']:.4f} "
          f"(std {summary['std_test_accuracy_tta']:.4f}), slowest training {summary['max_training_wall_time_s']:.0f} s, "
          f"slowest whole command {summary['max_command_wall_time_s']:.0f} s; {results_path}")


if __name__ == "__main__":
    main()
