"""Float vs int8, side by side, in one run per model (issue 26): test accuracy, ECE, open-set rates, raw
onnxruntime throughput at batch 1 and 256, file size, on this machine (CPU name and flags in the results).

    python benchmarks/ood_set.py --out /tmp/cifar10_ood
    flock /tmp/cpu.lock python benchmarks/quantize.py --ood /tmp/cifar10_ood [--models NAME ...]
        [--methods minmax entropy percentile] [--calibration 512] [--no-timing]

For each model, the float file is ``exported_models/float/<name>.onnx`` when the shipped one is already int8
(then the shipped file is the int8 row as it is), else ``exported_models/<name>.onnx``, quantized here into a
temporary folder with each ``--methods`` (the first is what ships; the others are measured to choose it).
Every figure is measured by this run on the same images: the 10,000 CIFAR-10 test images, the OOD set of
``benchmarks/ood_set.py`` (``--ood``); the open-set threshold is each file's own (its card's, or the one
re-fitted on the int8 graph). Results: ``benchmarks/results/quantize.json`` (or ``--results``), and a markdown
table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "quantize.json"
MODELS = ("efficientnet_lite0_transfer", "fast_cnn", "cnn_adam_m1", "baseline")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu() -> dict:
    """The machine (cifar10.machine) plus the flags that decide int8 speed (VNNI: int8 dot products)."""
    from cifar10.machine import machine

    found = machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                found["int8_flags"] = [f for f in CPU_FLAGS if f in present]
                break
    except OSError:
        pass
    return found


def row(label: str, path: Path, card: dict, test, ood_x) -> dict:
    from cifar10 import contract
    from training import quantize

    measured = quantize.measure(path, test.x, test.y, threshold=contract.open_set_threshold(card), ood_x=ood_x)
    out = {"file": label, "int8": quantize.is_quantized(path), "size_mb": round(path.stat().st_size / 1e6, 2),
           "test_accuracy": round(measured["accuracy"], 4), "ece": round(measured["ece"], 4),
           "test_flagged": round(measured.get("test_flagged", float("nan")), 4)}
    if "open_set" in measured:
        rates = measured["open_set"]
        out.update({"ood_flagged": round(rates["ood_flagged"], 4), "auroc": round(rates["auroc"], 4),
                    "fpr_at_95_tpr": round(rates["fpr_at_95_tpr"], 4)})
    print(f"  {label:55s} acc {out['test_accuracy']:.4f}  ece {out['ece']:.4f}  "
          + (f"ood {out.get('ood_flagged', float('nan')):.3f}  " if "ood_flagged" in out else "")
          + f"{out['size_mb']} MB", flush=True)
    return out


def main(argv=None) -> int:
    from benchmarks.trust import ood_images
    from cifar10.registry import read_card
    from training import quantize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--models-dir", type=Path, default=ROOT / "exported_models")
    parser.add_argument("--methods", nargs="+", choices=quantize.METHODS, default=[quantize.DEFAULT_METHOD])
    parser.add_argument("--calibration", type=int, default=quantize.DEFAULT_CALIBRATION_IMAGES)
    parser.add_argument("--ood", type=Path, help="the OOD set (python benchmarks/ood_set.py --out DIR)")
    parser.add_argument("--data-dir")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: all cores)")
    parser.add_argument("--rounds", type=int, default=4, help="timing: runs per file, taking turns; the best counts")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--update-cards", action="store_true",
                        help="write the float vs shipped-int8 throughput of this run into the int8 cards "
                             "(quantization.throughput), with this command and the CPU")
    args = parser.parse_args(argv)

    ood_x = ood_images(args.ood)[1] if args.ood else None
    results = {"command": "python benchmarks/quantize.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "cpu": cpu(), "test_images": 10000, "ood_images": 0 if ood_x is None else int(len(ood_x)),
               "models": {}}
    print(f"CPU: {results['cpu']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cifar10-bench-quantize-") as tmp:
        for name in args.models:
            shipped = args.models_dir / f"{name}.onnx"
            twin = quantize.float_twin_path(shipped)
            float_path = twin if quantize.is_quantized(shipped) else shipped
            float_card = read_card(float_path.with_suffix(".json"))
            data = quantize.load_model_data(float_card, data_dir=args.data_dir)
            print(f"{name}:", flush=True)
            rows = [row(str(float_path.relative_to(args.models_dir)), float_path, float_card, data.test, ood_x)]
            if float_path is twin:
                rows.append(row(f"{name}.onnx (shipped int8)", shipped, read_card(shipped.with_suffix(".json")),
                                data.test, ood_x))
            for method in args.methods:
                if float_path is twin and method == read_card(shipped.with_suffix(".json"))["quantization"]["method"]:
                    continue  # the shipped file is this method's int8 row
                out = Path(tmp) / method / f"{name}.onnx"
                started = time.perf_counter()
                _, card = quantize.quantize_model(float_path, out, data, method=method, calibration=args.calibration,
                                                  timing=False, log=lambda text: None)
                rows.append(row(f"int8 {method}, {args.calibration} calibration images", out, card, data.test, ood_x)
                            | {"quantize_s": round(time.perf_counter() - started, 1)})
            if not args.no_timing:
                paths = [float_path] + ([shipped] if float_path is twin else []) + [
                    Path(tmp) / m / f"{name}.onnx" for m in args.methods if (Path(tmp) / m / f"{name}.onnx").is_file()]
                timed(rows, paths, data.test.x[:1024], args.rounds, args.threads)
            base = rows[0]
            for r in rows[1:]:
                r["accuracy_drop_points"] = round((base["test_accuracy"] - r["test_accuracy"]) * 100, 2)
                if "img_per_s_batch_256" in r:
                    r["speedup_batch_256"] = round(r["img_per_s_batch_256"] / base["img_per_s_batch_256"], 2)
                    r["speedup_batch_1"] = round(r["img_per_s_batch_1"] / base["img_per_s_batch_1"], 2)
                    for b in (256, 1):
                        key = f"img_per_cpu_s_1_thread_batch_{b}"
                        r[f"cpu_time_speedup_batch_{b}"] = round(r[key] / base[key], 2)
            if args.update_cards and float_path is twin and "speedup_batch_256" in rows[1]:
                update_card(shipped.with_suffix(".json"), rows[0], rows[1], results)
            results["models"][name] = rows
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))
    return 0


def print_table(path: Path = RESULTS) -> None:
    """``python -c 'from benchmarks.quantize import print_table; print_table()'``: the table of a results file."""
    print(markdown(json.loads(Path(path).read_text())))


def timed(rows: list[dict], paths: list[Path], images, rounds: int, threads: int | None) -> None:
    """img/s of each file at batch 256 and 1: ``rounds`` short runs per file, the files taking turns, the best
    run of each kept (other jobs on a shared machine only ever slow a run down, and taking turns exposes the
    float and the int8 file to the same load)."""
    from training import quantize

    for batch, seconds, sample in ((256, 2.0, images), (1, 1.5, images[:256])):
        best = [0.0] * len(paths)
        for _ in range(rounds):
            for i, path in enumerate(paths):
                best[i] = max(best[i], quantize.throughput(path, sample, batch, min_seconds=seconds, threads=threads))
        for r, rate in zip(rows, best):
            r[f"img_per_s_batch_{batch}"] = round(rate, 1)
        # One thread, per second of CPU time: what other jobs on a shared machine cannot inflate.
        best = [0.0] * len(paths)
        for _ in range(max(2, rounds // 2)):
            for i, path in enumerate(paths):
                best[i] = max(best[i], quantize.throughput(path, sample, batch, min_seconds=seconds, threads=1,
                                                           clock="cpu"))
        for r, rate in zip(rows, best):
            r[f"img_per_cpu_s_1_thread_batch_{batch}"] = round(rate, 1)
    for r in rows:
        print(f"  {r['file']:55s} {r['img_per_s_batch_256']:.0f} img/s at batch 256, {r['img_per_s_batch_1']:.0f} at 1; "
              f"1 thread per CPU-second: {r['img_per_cpu_s_1_thread_batch_256']:.0f} / "
              f"{r['img_per_cpu_s_1_thread_batch_1']:.0f}", flush=True)


def update_card(card_path: Path, base: dict, int8: dict, results: dict) -> None:
    """The shipped int8 card's ``quantization.throughput``: this run's float vs int8 figures."""
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["quantization"]["throughput"] = {
        f"batch_{b}": {"float_img_per_s": base[f"img_per_s_batch_{b}"], "int8_img_per_s": int8[f"img_per_s_batch_{b}"],
                       "speedup": int8[f"speedup_batch_{b}"],
                       "float_img_per_cpu_s_1_thread": base[f"img_per_cpu_s_1_thread_batch_{b}"],
                       "int8_img_per_cpu_s_1_thread": int8[f"img_per_cpu_s_1_thread_batch_{b}"],
                       "cpu_time_speedup": int8[f"cpu_time_speedup_batch_{b}"]} for b in (256, 1)}
    card["quantization"]["throughput"].update({"measured_by": results["command"], "cpu": results["cpu"],
                                               "how": "raw onnxruntime, CPU, all cores, outputs probabilities + "
                                                      "logits + ood_score, 1,024 test images, best of the "
                                                      "benchmark's rounds (float and int8 taking turns)"})
    from cifar10.paths import portable_paths

    card["quantization"]["throughput"] = portable_paths(card["quantization"]["throughput"])
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def markdown(results: dict) -> str:
    """The README table: one row per file; speeds as wall-clock img/s on all cores (other jobs included) and,
    in brackets, the speed-up per CPU-second on one thread."""
    lines = ["| model | file | test acc. | ECE | test flagged | OOD flagged | AUROC | FPR@95 | img/s b=1 | img/s b=256 | "
             "MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results["models"].items():
        for r in rows:
            def speed(b):
                if f"img_per_s_batch_{b}" not in r:
                    return "—"
                text = f"{r[f'img_per_s_batch_{b}']:.0f}"
                if f"speedup_batch_{b}" in r:
                    text += f" ({r[f'speedup_batch_{b}']}x; 1 thread {r[f'cpu_time_speedup_batch_{b}']}x)"
                return text
            lines.append(f"| {name} | {'int8' if r['int8'] else 'float'} | {r['test_accuracy']:.4f} | {r['ece']:.4f} | "
                         f"{r['test_flagged']:.3f} | {r.get('ood_flagged', float('nan')):.3f} | "
                         f"{r.get('auroc', float('nan')):.3f} | {r.get('fpr_at_95_tpr', float('nan')):.3f} | "
                         f"{speed(1)} | {speed(256)} | {r['size_mb']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
