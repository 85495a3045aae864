"""Which calibration method (issue 26): quantize a shipped float model with each onnxruntime calibration method
and measure only the test accuracy of the int8 graph (argmax: the temperature and the trust outputs cannot change
it), the quickest way to compare them.

    python benchmarks/quantize_methods.py efficientnet_lite0_transfer:percentile:512 \
        efficientnet_lite0_transfer:entropy:512 efficientnet_lite0_transfer:minmax:512

Each argument is NAME:METHOD:CALIBRATION_IMAGES (held-out training images: the validation split; all training
images for a model without one). The float model is exported_models/float/NAME.onnx when the shipped one is
already int8. One JSON line per argument on stdout.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from cifar10 import contract
    from cifar10.registry import read_card
    from training import quantize

    for spec in argv if argv is not None else sys.argv[1:]:
        name, method, n = spec.split(":")
        shipped = ROOT / "exported_models" / f"{name}.onnx"
        source = quantize.float_twin_path(shipped) if quantize.is_quantized(shipped) else shipped
        card = read_card(source.with_suffix(".json"))
        data = quantize.load_model_data(card)
        pool, _ = quantize.calibration_pool(data)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{name}.onnx"
            quantize.quantize_graph(source, out, quantize.calibration_sample(pool, int(n)), method=method)
            probs = quantize.run_graph(out, data.test.x, [contract.OUTPUT_NAME])[contract.OUTPUT_NAME]
        accuracy = float((probs.argmax(1) == data.test.y).mean())
        print(json.dumps({"spec": spec, "float": card["test_accuracy"], "int8": accuracy,
                          "drop_points": round((card["test_accuracy"] - accuracy) * 100, 2),
                          "seconds": round(time.perf_counter() - started)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
