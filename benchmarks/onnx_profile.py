"""Where an ONNX model spends its time in onnxruntime: the per-node kernel times of a few runs at one batch size,
from onnxruntime's own profiler (``SessionOptions.enable_profiling``), grouped by operator and by node.

    python benchmarks/onnx_profile.py exported_models/baseline.onnx exported_models/float/baseline.onnx
        [--batch 256] [--runs 20] [--top 12] [--threads N]

Random 0..255 images at the model's input size, the apps' outputs (probabilities, logits, ood_score). Used for
docs/quantization.md (why int8 baseline gains less than the other models). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np


def profile(path: Path, batch: int, runs: int, threads: int | None) -> tuple[collections.Counter, dict]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="cifar10-profile-")) / "ort")
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    size = int(feed.shape[1]) if isinstance(feed.shape[1], int) else 32
    images = (np.random.default_rng(0).random((batch, size, size, 3)) * 255).astype(np.float32)
    outputs = [o.name for o in session.get_outputs() if o.name in ("probabilities", "logits", "ood_score")]
    session.run(outputs, {feed.name: images})  # warm-up, not counted below
    trace = Path(session.end_profiling())
    options.profile_file_prefix = str(trace.with_name("ort-timed"))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(outputs, {feed.name: images})
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node, about = collections.Counter(), {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_node[event["name"][:-len("_kernel_time")]] += event["dur"] / runs / 1000  # ms per run
            about[event["name"][:-len("_kernel_time")]] = (event["args"]["op_name"],
                                                           event["args"].get("output_type_shape"))
    return per_node, about


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    for path in args.models:
        per_node, about = profile(path, args.batch, args.runs, args.threads)
        total = sum(per_node.values())
        per_op = collections.Counter()
        for name, ms in per_node.items():
            per_op[about[name][0]] += ms
        print(f"== {path}: {total:.2f} ms of kernels per batch of {args.batch}")
        for op, ms in per_op.most_common(args.top):
            print(f"  {op:24s} {ms:8.2f} ms  {ms / total:6.1%}")
        print("  slowest nodes:")
        for name, ms in per_node.most_common(args.top):
            op, shape = about[name]
            print(f"  {ms:8.2f} ms  {op:18s} {name[:56]:56s} {shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
