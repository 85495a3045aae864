"""Which quantity could a study figure be? For every exported model of the study's columns
(exported_models/study/), measure with onnxruntime the top-1 and top-2 accuracy on the 10,000 test images and
on the 45,000 training images it was trained on (`cifar10 train`'s split).

    python benchmarks/study_metrics.py

Writes benchmarks/results/study_metrics.json. Needs CIFAR-10 ($CIFAR10_DIR or the download cache).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "study_metrics.json"


def top_k(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    ranked = np.argsort(-probabilities, axis=1)[:, :k]
    return round(float((ranked == labels[:, None]).any(axis=1).mean()), 4)


def main() -> int:
    from cifar10.inference import Classifier
    from cifar10.registry import load_model_info
    from training.data import load_cifar10

    data = load_cifar10(None)
    results = {}
    for path in sorted((ROOT / "exported_models" / "study").glob("*.onnx")):
        classifier = Classifier(load_model_info(path))
        row = {}
        for split, images, labels in (("test", data.test.x, data.test.y), ("train", data.train.x, data.train.y)):
            probabilities = np.concatenate([classifier.predict(images[i:i + 2000])
                                            for i in range(0, len(labels), 2000)])
            row[split] = {"top1": top_k(probabilities, labels, 1), "top2": top_k(probabilities, labels, 2)}
        results[path.stem] = row | {"study": classifier.model.card.get("study", {})}
        print(f"{path.stem:15s} test top-1 {row['test']['top1']:.4f} top-2 {row['test']['top2']:.4f}   "
              f"train top-1 {row['train']['top1']:.4f} top-2 {row['train']['top2']:.4f}", flush=True)
    RESULTS.write_text(json.dumps({"command": "python benchmarks/study_metrics.py", "models": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
