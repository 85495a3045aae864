"""Calibration and the "none of these" flag for the shipped models: fit, upgrade, measure.

    python benchmarks/ood_set.py --out /tmp/cifar10_ood          # the out-of-distribution set
    python benchmarks/trust.py --ood /tmp/cifar10_ood [--upgrade] [--models NAME ...]

1. Runs each shipped graph (with ``logits`` exposed, temperature 1) over its held-out images, the 10,000
   test images and the OOD set (cached in ``--cache``).
2. Compares open-set scores (kNN on the penultimate features, energy, max logit, max probability) by AUROC /
   FPR at 95 % TPR, with the threshold fitted on held-out in-distribution images (95 % pass); ``--score auto``
   (the default) bakes in, per model, the one with the best AUROC.
3. ``--upgrade``: rewrites ``exported_models/<name>.onnx`` as contract v2 (temperature folded in, ``logits``,
   ``ood_score``, ``cam`` where the head allows), adds the card's ``calibration`` and ``open_set`` entries,
   then re-measures the written file *independently* through the apps' own ``Classifier``: test accuracy,
   ECE, share of test images flagged, OOD flag rate, AUROC, FPR at 95 % TPR.

Held-out images: the last 5,000 training images (the validation split the model never trained on), except
for ``fast_cnn``, trained on all 50,000: its temperature and threshold are cross-fitted on the two halves of
the test set (each half measured with values fitted on the other; the shipped values are fitted on all
10,000 test images). Results: ``benchmarks/results/trust.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cifar10 import contract  # noqa: E402
from cifar10.preprocess import load_image  # noqa: E402
from training import calibration  # noqa: E402
from training.data import load_cifar10  # noqa: E402
from training.metrics import expected_calibration_error  # noqa: E402

MODELS = ("efficientnet_lite0_transfer", "fast_cnn", "cnn_adam_m1", "baseline")
CROSS_FIT = {"fast_cnn"}


def ood_images(folder: Path) -> tuple[list[str], np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    return [p.stem for p in files], np.stack([load_image(p) for p in files])


def v1_graph(path: Path) -> onnx.ModelProto:
    model = onnx.load(path)
    outputs = {o.name for o in model.graph.output}
    if outputs & set(contract.OPTIONAL_OUTPUTS):
        raise SystemExit(f"{path} is already contract v2; restore the v1 file (git) to re-fit it")
    return model


def raw(name: str, model: onnx.ModelProto, splits: dict, cache: Path) -> dict:
    """p / z / f (probabilities, logits, features) per split, and the kNN bank (cached: the v1 graph is fixed)."""
    file = cache / f"{name}.npz"
    if file.exists():
        return dict(np.load(file))
    out = {}
    for split, images in splits.items():
        t = time.time()
        if split == "bank":
            out["bank"] = calibration.feature_bank(model, images)
        else:
            for key, value in calibration.raw_outputs(model, images).items():
                out[f"{split}_{key}"] = value
        print(f"  {name}: {split} {len(images)} images in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    return out


def compare_scores(name: str, r: dict, y_held: np.ndarray, y_test: np.ndarray, held: str) -> dict:
    rows = {}
    for score in calibration.SCORES:
        fitted = (calibration.cross_fit if name in CROSS_FIT else calibration.fit_trust)(
            r[f"{held}_p"], r[f"{held}_z"], y_held, score, r[f"{held}_f"], r["bank"])
        t = fitted["temperature"]
        s_test = calibration.ood_scores(score, r["test_p"], r["test_z"], t, r["test_f"], r["bank"])
        s_ood = calibration.ood_scores(score, r["ood_p"], r["ood_z"], t, r["ood_f"], r["bank"])
        rows[score] = calibration.open_set_rates(s_test, s_ood, fitted["threshold"])
        if name in CROSS_FIT:  # each test half flagged with the other half's threshold
            half = len(y_test) // 2
            a, b = fitted["cross_fit"]
            rows[score]["in_distribution_flagged"] = float(np.r_[
                s_test[half:] > a["threshold"], s_test[:half] > b["threshold"]].mean())
    return rows


def independent(path: Path, test_x, test_y, ood_x) -> dict:
    """Re-measure the written file through the apps' own Classifier (what every app runs)."""
    from cifar10.inference import Classifier
    from cifar10.registry import load_model_info

    info = load_model_info(path)
    clf = Classifier(info, provider="cpu")
    threshold = contract.open_set_threshold(info.card)

    def run(images):
        outs = [clf.predict_all(images[i:i + 500]) for i in range(0, len(images), 500)]
        return np.concatenate([o.probabilities for o in outs]), np.concatenate([o.ood_score for o in outs])
    p_test, s_test = run(test_x)
    p_ood, s_ood = run(ood_x)
    rates = calibration.open_set_rates(s_test, s_ood, threshold)
    return {"test_accuracy": float((p_test.argmax(1) == test_y).mean()),
            "test_ece": expected_calibration_error(test_y, p_test), **rates, "threshold": threshold}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ood", type=Path, default=Path("/tmp/cifar10_ood"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cifar10_trust_cache"))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--models-dir", type=Path, default=ROOT / "exported_models")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--score", choices=("auto", *calibration.SCORES), default="auto",
                        help="the open-set score baked into the graph; auto: per model, the best AUROC measured here")
    parser.add_argument("--upgrade", action="store_true", help="rewrite the models as contract v2 and re-measure")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "trust.json")
    args = parser.parse_args(argv)

    data = load_cifar10(args.data_dir)
    ood_names, ood_x = ood_images(args.ood)
    print(f"OOD set: {len(ood_x)} images from {args.ood}", file=sys.stderr)
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    results.setdefault("models", {})
    results["ood_set"] = {"folder": str(args.ood), "images": len(ood_x),
                          "command": "python benchmarks/ood_set.py --out " + str(args.ood)}
    for name in args.models:
        path = args.models_dir / f"{name}.onnx"
        model = v1_graph(path)
        held = "test" if name in CROSS_FIT else "val"
        splits = {"test": data.test.x, "ood": ood_x, "bank": data.train.x}
        if held == "val":
            splits["val"] = data.val.x
        r = raw(name, model, splits, args.cache)
        y_held = data.test.y if held == "test" else data.val.y
        entry = {"held_out": "test halves, cross-fitted" if held == "test" else "validation split (5,000)",
                 "scores": compare_scores(name, r, y_held, data.test.y, held)}
        for score, rates in entry["scores"].items():
            print(f"{name:28s} {score:9s} test flagged {rates['in_distribution_flagged']:.3f}  OOD flagged "
                  f"{rates['ood_flagged']:.3f}  AUROC {rates['auroc']:.4f}  FPR@95TPR {rates['fpr_at_95_tpr']:.3f}")
        score = args.score
        if score == "auto":
            score = max(entry["scores"], key=lambda k: entry["scores"][k]["auroc"])
        entry["chosen_score"] = score
        if args.upgrade:
            source = ("the 10,000 test images, cross-fitted on their two halves (fast_cnn has no held-out "
                      "training images)" if held == "test" else "the validation split: the last 5,000 training "
                      "images, never trained on")
            images, labels = (data.test.x, data.test.y) if held == "test" else (data.val.x, data.val.y)
            upgraded, card_entries = calibration.upgrade(
                model, images, labels, score=score, source=source, crossfit=held == "test", bank=r["bank"],
                held_out={key: r[f"{held}_{key}"] for key in "pzf"})
            before = {"test_accuracy": float((r["test_p"].argmax(1) == data.test.y).mean()),
                      "test_ece": expected_calibration_error(data.test.y, r["test_p"])}
            part = path.with_suffix(".onnx.part")
            onnx.save(upgraded, part)
            part.replace(path)
            card_path = path.with_suffix(".json")
            card = json.loads(card_path.read_text())
            card.update(card_entries)
            card["contract"] = contract.CONTRACT_VERSION
            card_path.write_text(json.dumps(card, indent=2) + "\n")
            measured = independent(path, data.test.x, data.test.y, ood_x)
            card[contract.CARD_CALIBRATION]["test_ece_after"] = round(measured["test_ece"], 4)
            card[contract.CARD_CALIBRATION]["test_ece_before"] = round(before["test_ece"], 4)
            card[contract.CARD_OPEN_SET]["measured"] = {
                "test_flagged": round(measured["in_distribution_flagged"], 4),
                "ood_flagged": round(measured["ood_flagged"], 4), "auroc": round(measured["auroc"], 4),
                "fpr_at_95_tpr": round(measured["fpr_at_95_tpr"], 4), "ood_images": measured["n_out"],
                "ood_set": "benchmarks/ood_set.py (docs/trust.md)", "command": "python benchmarks/trust.py --upgrade"}
            card["ece"] = round(measured["test_ece"], 4)
            card["test_metrics"]["ece"] = measured["test_ece"]
            card_path.write_text(json.dumps(card, indent=2) + "\n")
            entry["shipped"] = {"score": score, "before": before, "after": measured,
                                "calibration": card[contract.CARD_CALIBRATION]}
            print(f"{name}: accuracy {before['test_accuracy']:.4f} -> {measured['test_accuracy']:.4f}, test ECE "
                  f"{before['test_ece']:.4f} -> {measured['test_ece']:.4f}, T {card_entries['calibration']['temperature']}, "
                  f"test flagged {measured['in_distribution_flagged']:.3f}, OOD flagged {measured['ood_flagged']:.3f}, "
                  f"AUROC {measured['auroc']:.4f}, FPR@95TPR {measured['fpr_at_95_tpr']:.3f}", file=sys.stderr)
        results["models"][name] = entry
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
