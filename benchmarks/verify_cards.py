"""Re-measure every exported CIFAR-10 model independently of training: onnxruntime on the `.onnx` (the apps'
code path: cifar10.inference + cifar10.evaluation, no TensorFlow), the 10,000 test images, against the
accuracy and expected calibration error (ECE, 15 bins) its card states.

    python benchmarks/verify_cards.py            # exported_models/, its study/ and float/ (int8 twins' sources)
    python benchmarks/verify_cards.py --models cnn_adam_m1 study/cnn_sgd_m1    # some of them (no results file)
    python benchmarks/verify_cards.py --results benchmarks/results/verify_cards_avx2.json   # another machine

Writes benchmarks/results/verify_cards.json (or --results), with the machine it ran on; exits 1 if a model's accuracy differs from its card by more
than 0.0005 (card figures have 4 decimals). Needs CIFAR-10 ($CIFAR10_DIR or the download cache).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "verify_cards.json"
TOLERANCE = 0.0005
ECE_TOLERANCE = 0.0005


def main(argv=None) -> int:
    from cifar10.evaluation import evaluate_test_set
    from cifar10.inference import Classifier
    from cifar10.registry import load_model_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "exported_models")
    parser.add_argument("--data-dir")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only these (paths under --models-dir without .onnx, e.g. study/cnn_sgd_m1); "
                        "the results file is then written only with --results")
    args = parser.parse_args(argv)
    paths = (sorted(args.models_dir.glob("*.onnx")) + sorted((args.models_dir / "study").glob("*.onnx"))
             + sorted((args.models_dir / "float").glob("*.onnx")))
    if args.models:
        wanted = {name.removesuffix(".onnx") for name in args.models}
        paths = [path for path in paths if str(path.relative_to(args.models_dir).with_suffix("")) in wanted]
        unknown = wanted - {str(path.relative_to(args.models_dir).with_suffix("")) for path in paths}
        if unknown:
            parser.error(f"no such model under {args.models_dir}: {', '.join(sorted(unknown))}")
    rows, failed = [], 0
    for path in paths:
        info = load_model_info(path)
        if info.dataset != "CIFAR-10":
            continue
        started = time.perf_counter()
        evaluation = evaluate_test_set(Classifier(info), args.data_dir)
        measured, ece = evaluation.metrics["accuracy"], evaluation.metrics["ece"]
        card_ece = json.loads(path.with_suffix(".json").read_text(encoding="utf-8")).get("ece")
        ok = (abs(measured - info.test_accuracy) <= TOLERANCE
              and (card_ece is None or abs(ece - card_ece) <= ECE_TOLERANCE))
        failed += not ok
        rows.append({"model": str(path.relative_to(args.models_dir)), "card": info.test_accuracy,
                     "measured": round(measured, 4), "card_ece": card_ece, "measured_ece": round(ece, 4),
                     "agrees": ok, "seconds": round(time.perf_counter() - started, 1)})
        print(f"{rows[-1]['model']:45s} card {info.test_accuracy:.4f}  onnxruntime {measured:.4f}  ECE card "
              f"{'-' if card_ece is None else f'{card_ece:.4f}'} measured {ece:.4f}  "
              f"{'ok' if ok else 'DIFFERS'}  ({rows[-1]['seconds']} s)", flush=True)
    from cifar10.machine import machine

    if args.models and args.results == RESULTS:
        return 1 if failed else 0  # a subset does not replace the whole table
    command = "python benchmarks/verify_cards.py" + ("" if args.results == RESULTS else f" --results {args.results}")
    command += f" --models {' '.join(args.models)}" if args.models else ""
    args.results.write_text(json.dumps({"command": command, "tolerance": TOLERANCE, "machine": machine(),
                                        "models": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
