"""``cifar10 quantize NAME_OR_PATH``: the int8 twin of an exported model (training/quantize.py, issue 26)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Kept in sync with training.quantize (imported lazily: it needs the training extra's onnx package).
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = "percentile"
DEFAULT_CALIBRATION_IMAGES = 512
MAX_ACCURACY_DROP = 0.003


def add_parser(sub, func) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "quantize", help="static int8 quantization of an exported model (about 2x faster on CPUs, 1/3 the size); "
                         "calibrated on held-out training images, card re-measured on the int8 file")
    p.add_argument("model", metavar="NAME_OR_PATH", help="a model name (see `cifar10 models`) or an .onnx file")
    p.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION_IMAGES, metavar="N",
                   help=f"held-out training images that calibrate the activation ranges (default "
                        f"{DEFAULT_CALIBRATION_IMAGES}; never test images)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"how activation ranges are calibrated (default {DEFAULT_METHOD}: the most accurate on the "
                        "default model, docs/quantization.md)")
    p.add_argument("--output", type=Path, metavar="DIR",
                   help="write the int8 model + card into DIR and leave the float model alone (default: replace "
                        "the model in its folder and move the float one to float/, if it loses at most "
                        f"{MAX_ACCURACY_DROP * 100:.1f} points of test accuracy)")
    p.add_argument("--max-drop", type=float, default=MAX_ACCURACY_DROP, metavar="FRACTION",
                   help=f"largest test-accuracy loss for replacing the float model (default {MAX_ACCURACY_DROP})")
    p.add_argument("--force", action="store_true", help="replace the float model even when it loses more")
    p.add_argument("--data", type=Path, metavar="PATH",
                   help="an own-class model: its images folder, split again exactly as in training")
    p.add_argument("--data-dir", help="CIFAR-10 python batches (default: $CIFAR10_DIR, else download)")
    p.add_argument("--ood", type=Path, metavar="DIR",
                   help="out-of-distribution PNGs (python benchmarks/ood_set.py --out DIR): their open-set rates "
                        "go into the card")
    p.add_argument("--no-timing", action="store_true", help="skip the float vs int8 throughput figures")
    p.set_defaults(func=func)
    return p


def run(args, command: str) -> int:
    from cifar10.registry import ModelError, discover_models, find_model
    from training import quantize

    models, _ = discover_models()
    try:
        info = find_model(args.model, models)
    except ModelError as exc:
        print(f"cifar10 quantize: {exc}", file=sys.stderr)
        return 2
    if args.calibration < 1:
        print("cifar10 quantize: --calibration must be at least 1", file=sys.stderr)
        return 2
    if quantize.is_quantized(info.onnx_path):
        print(f"cifar10 quantize: {info.onnx_path} is already int8", file=sys.stderr)
        return 2
    try:
        data = quantize.load_model_data(info.card, data_dir=args.data_dir, data_folder=args.data)
    except quantize.QuantizeError as exc:
        print(f"cifar10 quantize: {exc}", file=sys.stderr)
        return 2
    ood_x = None
    if args.ood is not None:
        from cifar10.preprocess import load_image
        import numpy as np

        files = sorted(p for p in Path(args.ood).iterdir() if p.suffix.lower() == ".png")
        ood_x = np.stack([load_image(p, info.image_size) for p in files]) if files else None
    options = dict(method=args.method, calibration=args.calibration, ood_x=ood_x, timing=not args.no_timing,
                   command=command)
    if args.output is not None:
        path, card = quantize.quantize_model(info.onnx_path, Path(args.output) / info.onnx_path.name, data,
                                             max_drop=args.max_drop, **options)
        q = card["quantization"]
        print(f"{path}: int8, test accuracy {q['int8_test_accuracy']:.4f} (float {q['float_test_accuracy']:.4f}); "
              + ("meets" if q["meets_accuracy_bar"] else "does NOT meet")
              + f" the {args.max_drop * 100:.1f}-point bar")
        return 0
    shipped, path, card = quantize.quantize_in_place(info.onnx_path, data, max_drop=args.max_drop,
                                                     force=args.force, **options)
    if shipped:
        print(f"{path}: now int8 (test accuracy {card['test_accuracy']:.4f}); the float model is "
              f"{quantize.float_twin_path(path)}")
    else:
        print(f"{path}: kept float: {card['quantization']['reason']} (written into its card)")
    return 0
