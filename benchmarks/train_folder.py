"""``cifar10 train --data`` on a folder dataset: test accuracy, training wall time and peak memory.

Runs the real command in a subprocess with ``--progress json``, keeps every event it prints (cache, scan,
epoch, exported), times it end to end and reads the exported model card (test accuracy measured by
onnxruntime on the exported .onnx; ``training_wall_time_s`` = data loading + fit, without the export).
One result per run is stored under its export name in ``benchmarks/results/train_folder.json``.

The dataset of docs/train_folder.md is the 5-class CIFAR folder (cat, dog, deer, horse, frog; 1,000 training
images per class from the training batches, the 5,000 test images of those classes as test/, upscaled
bicubic to 128 px JPEG quality 90; helper i11-data's ``benchmarks/make_cifar_folder.py`` writes such a folder):

    flock /tmp/cpu.lock python benchmarks/train_folder.py --data /tmp/cifar5 --export-dir /tmp/i11_models \\
        -- --model efficientnet_lite0_transfer
    flock /tmp/cpu.lock python benchmarks/train_folder.py --data /tmp/cifar5 --export-dir /tmp/i11_models \\
        -- --model animals10_cnn --epochs 20

Everything after ``--`` goes to ``cifar10 train`` as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from cifar10.machine import machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train_folder.json"


def run(data: Path, export_dir: Path, runs: Path, train_args: list[str]) -> dict:
    command = [sys.executable, "-m", "cifar10_cli", "train", "--data", str(data), "--export-dir", str(export_dir),
               "--out", str(runs), "--progress", "json", *train_args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    events = []
    for line in process.stdout:  # the events as they come, echoed to the terminal
        event = json.loads(line)
        event["at_s"] = round(time.perf_counter() - started, 1)
        events.append(event)
        if event["event"] != "cache":
            print(json.dumps(event), file=sys.stderr, flush=True)
    returncode = process.wait()
    wall = time.perf_counter() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    result = {"command": "cifar10 train " + " ".join(command[4:]), "returncode": returncode,
              "command_wall_time_s": round(wall, 1), "peak_rss_mb": round(peak_rss_mb),
              "machine": {**machine(), "load_average_after": os.getloadavg()},
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "events": events}
    exported = [e for e in events if e["event"] == "exported"]
    if returncode == 0 and exported:
        result.update(card_figures(json.loads(Path(exported[-1]["path"]).with_suffix(".json").read_text())))
    elif returncode == 0:  # --no-export: the run's record; `--export RUN_DIR` adds the test figures later
        run_dir = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
        record = json.loads((run_dir / "run.json").read_text())
        result.update({"name": record["name"], "model": record["model"], "run_dir": str(run_dir),
                       "training_wall_time_s": record["training_wall_time_s"], "epochs_run": record["epochs_run"],
                       "best_epoch": record.get("best_epoch"), "best_val_accuracy": record.get("best_val_accuracy")})
    return result


def export(run_dir: Path, export_dir: Path) -> dict:
    """``cifar10 export RUN_DIR``: the card's test figures for a run trained with --no-export."""
    command = [sys.executable, "-m", "cifar10_cli", "export", str(run_dir), "--export-dir", str(export_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    record = json.loads((Path(run_dir) / "run.json").read_text())
    card = json.loads((Path(export_dir) / f"{record['name']}.json").read_text())
    return {"export_command": "cifar10 " + " ".join(command[3:]), **card_figures(card)}


def card_figures(card: dict) -> dict:
    return {
        "name": card["name"], "model": card["model"], "dataset": card["dataset"],
        "image_size": card["image_size"], "classes": card["class_names"],
        "test_accuracy": card["test_accuracy"], "f1_macro": card["f1_macro"], "ece": card["ece"],
        "test_images": card["test_metrics"]["n"], "training_wall_time_s": card["training_wall_time_s"],
        "epochs_run": card["training"]["epochs_run"], "best_epoch": card["training"].get("best_epoch"),
        "best_val_accuracy": card["training"].get("best_val_accuracy"),
        "settings": card["training"]["settings"], "onnx_test_time_augmentation": card["onnx"]["test_time_augmentation"],
        "cache": card["data"].get("report", {}).get("cache"),
        "per_class_f1": {k: round(v["f1"], 4) for k, v in card["test_metrics"]["per_class"].items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/cifar5"))
    parser.add_argument("--export-dir", type=Path, default=Path("/tmp/i11_models"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/i11_runs"))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--export", type=Path, metavar="RUN_DIR",
                        help="export a run trained with --no-export and add its test figures to its result")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then `cifar10 train` options")
    args = parser.parse_args()
    if args.export:
        stored = json.loads(args.results.read_text())
        name = json.loads((args.export / "run.json").read_text())["name"]
        stored[name].update(export(args.export, args.export_dir))
        args.results.write_text(json.dumps(stored, indent=2) + "\n")
        print(json.dumps({k: stored[name].get(k) for k in ("name", "test_accuracy", "training_wall_time_s")}))
        return 0
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    result = run(args.data, args.export_dir, args.runs, train_args)
    key = result.get("name") or "failed"
    stored = json.loads(args.results.read_text()) if args.results.is_file() else {}
    stored[key] = result
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(stored, indent=2) + "\n")
    summary = {k: result.get(k) for k in ("name", "test_accuracy", "training_wall_time_s", "command_wall_time_s",
                                          "epochs_run", "peak_rss_mb", "returncode")}
    print(json.dumps(summary), flush=True)
    return result["returncode"]


if __name__ == "__main__":
    sys.exit(main())
