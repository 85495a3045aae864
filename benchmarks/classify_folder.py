"""End-to-end folder classification benchmark for the shared inference core.

Cases, each timed end to end (scan folder, decode, preprocess, infer, write CSV) in a fresh
subprocess so that its peak memory is its own:

1. The CIFAR-10 test images written as PNG files: ``--compare-count`` of them (default 2,500) and
   ``--count`` (default 10,000). Prints files/s, accuracy against the labels (in the file names),
   and peak RSS: it must not grow with the number of files (images are streamed in batches).
2. ``--jpeg-count`` (default 200) 4000x3000 JPEG photos (upscaled test images): the target is
   >= 50 files/s, which JPEG draft decoding makes possible.
3. The naive way, as the study's apps did it: one image at a time through Keras ``model.predict``
   (``load_img(target_size=(32, 32))``; only with ``--keras-model`` and TensorFlow installed), else
   onnxruntime one image at a time without the thread pool; with the speed ratio to case 1.

Generated images are cached (``--cache``, default ``~/.cache/cifar10-studio/bench``).

    python benchmarks/classify_folder.py [--count 10000] [--model NAME|PATH.onnx] [--keras-model run/best.keras]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cifar10.contract import CLASS_NAMES  # noqa: E402


# --- memory ------------------------------------------------------------------------------------------

def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        try:
            import psutil  # type: ignore

            return psutil.Process().memory_info().peak_wset / 2**20
        except Exception:
            return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return peak_rss_mb()


# --- data --------------------------------------------------------------------------------------------

def load_test_set(data_dir: str | None):
    from training.data import TEST_BATCH, load_batch, resolve_data_dir  # numpy only, no TensorFlow

    split = load_batch(resolve_data_dir(data_dir) / TEST_BATCH)
    return split.x, split.y


def file_label(path: str) -> str:
    """``00042_cat.png`` / ``00042_cat.jpg`` -> ``cat``."""
    return Path(path).stem.split("_", 1)[1]


def write_pngs(images, labels, folder: Path, count: int, part_size: int) -> Path:
    """The first ``count`` test images as PNGs in sub-folders of ``part_size`` (part0 = the small case)."""
    from PIL import Image

    done = folder / f".complete_{count}_{part_size}"
    if done.exists():
        return folder
    start = time.perf_counter()
    for i in range(count):
        path = folder / f"part{i // part_size}" / f"{i:05d}_{CLASS_NAMES[labels[i]]}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(path)
    done.write_text("")
    print(f"  wrote {count} PNGs to {folder} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return folder


def write_big_jpegs(images, labels, folder: Path, count: int) -> Path:
    from PIL import Image

    done = folder / f".complete_{count}"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i in range(count):
        path = folder / f"{i:05d}_{CLASS_NAMES[labels[i]]}.jpg"
        if not path.exists():
            Image.fromarray(images[i]).resize((4000, 3000), Image.Resampling.BICUBIC).save(path, quality=90)
    done.write_text("")
    print(f"  wrote {count} 4000x3000 JPEGs to {folder} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return folder


# --- the measured runs (each in its own process) -------------------------------------------------------

def worker_batched(folder: str, model: str, batch_size: int) -> dict:
    from cifar10.inference import Classifier, classify_files
    from cifar10.results_io import write_results

    classifier = Classifier(model, provider="auto")
    classifier.predict(__import__("numpy").zeros((1, 32, 32, 3), "uint8"))  # session warm-up
    baseline = current_rss_mb()
    stats = {"files": 0, "correct": 0, "errors": 0}

    def counted(results):
        for result in results:
            stats["files"] += 1
            stats["errors"] += bool(result.error)
            stats["correct"] += result.label == file_label(result.path)
            yield result

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_results(counted(classify_files(classifier, [folder], batch_size=batch_size)), Path(tmp) / "out.csv")
        seconds = time.perf_counter() - start
    return {**stats, "seconds": seconds, "files_per_s": stats["files"] / seconds,
            "accuracy": stats["correct"] / max(stats["files"], 1), "rss_baseline_mb": baseline,
            "rss_peak_mb": peak_rss_mb(), "provider": classifier.provider}


def worker_naive_onnx(folder: str, model: str, count: int) -> dict:
    """One file at a time: decode, preprocess, run the session on a batch of 1; no thread pool."""
    from cifar10.inference import Classifier, iter_image_files
    from cifar10.preprocess import load_image

    classifier = Classifier(model, provider="auto")
    files = sorted(iter_image_files([folder]))[:count]
    correct = 0
    start = time.perf_counter()
    for path in files:
        probs = classifier.predict(load_image(path)[None])
        correct += CLASS_NAMES[int(probs.argmax())] == file_label(path)
    seconds = time.perf_counter() - start
    return {"files": len(files), "seconds": seconds, "files_per_s": len(files) / seconds,
            "accuracy": correct / max(len(files), 1), "how": "onnxruntime, one image per call"}


def worker_naive_keras(folder: str, keras_model: str, count: int) -> dict:
    """The study's demo apps: keras load_img(target_size) + img_to_array + model.predict, one image at a time."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from cifar10.inference import iter_image_files

    model = keras.models.load_model(keras_model)
    files = sorted(iter_image_files([folder]))[:count]
    model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0)  # graph tracing outside the timing
    correct = 0
    start = time.perf_counter()
    for path in files:
        image = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(32, 32)))
        probs = model.predict(image[None], verbose=0)  # the exported models take raw 0..255 RGB
        correct += CLASS_NAMES[int(probs.argmax())] == file_label(path)
    seconds = time.perf_counter() - start
    return {"files": len(files), "seconds": seconds, "files_per_s": len(files) / seconds,
            "accuracy": correct / max(len(files), 1), "how": "Keras model.predict, one image per call"}


def run_worker(*args: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker failed ({' '.join(args[:2])}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- main ----------------------------------------------------------------------------------------------

def fmt_case(name: str, r: dict) -> str:
    mem = ""
    if r.get("rss_peak_mb") is not None:
        mem = f"  peak RSS {r['rss_peak_mb']:7.1f} MB (after model load {r['rss_baseline_mb']:.1f} MB)"
    return (f"{name:34s} {r['files']:6d} files {r['seconds']:7.2f} s {r['files_per_s']:8.1f} files/s"
            f"  accuracy {r['accuracy']:.2%}{mem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="test images for the large PNG case (max 10,000)")
    parser.add_argument("--compare-count", type=int, help="files in the small PNG case (default count/4)")
    parser.add_argument("--jpeg-count", type=int, default=200, help="4000x3000 JPEGs (0: skip)")
    parser.add_argument("--naive-count", type=int, default=500, help="files for the one-at-a-time baseline (0: skip)")
    parser.add_argument("--model", help="exported model name or .onnx path (default: best test accuracy)")
    parser.add_argument("--keras-model", help="a .keras file of the same model for the naive Keras baseline")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data-dir", help="CIFAR-10 python batches (default: $CIFAR10_DIR or the cache)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cifar10-studio" / "bench")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "batched":
            result = worker_batched(rest[0], rest[1], int(rest[2]))
        elif kind == "naive-onnx":
            result = worker_naive_onnx(rest[0], rest[1], int(rest[2]))
        else:
            result = worker_naive_keras(rest[0], rest[1], int(rest[2]))
        print(json.dumps(result))
        return 0

    from cifar10_cli.classify import choose_model

    count = max(1, min(args.count, 10_000))
    small = args.compare_count or max(1, count // 4)
    model = choose_model(args.model, quiet=True)
    model_path = str(model.onnx_path)
    print(f"model {model.name} ({model.onnx_path}), card test accuracy {model.test_accuracy}; "
          f"{os.cpu_count()} CPUs", file=sys.stderr)
    images, labels = load_test_set(args.data_dir)
    png_root = write_pngs(images, labels, args.cache / "test_png", count, small)

    report: dict[str, dict] = {}
    report["png_small"] = run_worker("batched", str(png_root / "part0"), model_path, str(args.batch_size))
    print(fmt_case(f"PNG 32x32, batched ({small})", report["png_small"]))
    report["png_large"] = run_worker("batched", str(png_root), model_path, str(args.batch_size))
    print(fmt_case(f"PNG 32x32, batched ({count})", report["png_large"]))
    a, b = report["png_small"], report["png_large"]
    if a.get("rss_peak_mb") and b.get("rss_peak_mb"):
        grow_a = a["rss_peak_mb"] - a["rss_baseline_mb"]
        grow_b = b["rss_peak_mb"] - b["rss_baseline_mb"]
        print(f"  memory: {b['files'] / a['files']:.1f}x the files -> peak RSS {b['rss_peak_mb']:.1f} vs "
              f"{a['rss_peak_mb']:.1f} MB (growth over the loaded model: {grow_b:.1f} vs {grow_a:.1f} MB)")

    if args.jpeg_count:
        jpeg_root = write_big_jpegs(images, labels, args.cache / "jpeg_4000x3000", args.jpeg_count)
        report["jpeg_4000x3000"] = run_worker("batched", str(jpeg_root), model_path, str(args.batch_size))
        rate = report["jpeg_4000x3000"]["files_per_s"]
        print(fmt_case(f"JPEG 4000x3000, batched ({args.jpeg_count})", report["jpeg_4000x3000"]))
        print(f"  target >= 50 files/s: {'met' if rate >= 50 else 'NOT met'} ({rate:.1f})")

    if args.naive_count:
        naive_folder = str(png_root)
        use_keras = False
        if args.keras_model:
            try:
                import importlib.util

                use_keras = importlib.util.find_spec("tensorflow") is not None
            except ValueError:
                use_keras = False
            if not use_keras:
                print("  TensorFlow is not installed: naive baseline uses onnxruntime instead", file=sys.stderr)
        if use_keras:
            report["naive"] = run_worker("naive-keras", naive_folder, args.keras_model, str(args.naive_count))
        else:
            report["naive"] = run_worker("naive-onnx", naive_folder, model_path, str(args.naive_count))
        naive = report["naive"]
        print(fmt_case(f"naive: {naive['how']}", naive))
        ratio = b["files_per_s"] / naive["files_per_s"]
        report["speedup_vs_naive"] = {"ratio": ratio}
        print(f"  batched pipeline is {ratio:.1f}x the naive files/s")

    if args.json:
        args.json.write_text(json.dumps({"model": model.name, "cpus": os.cpu_count(), **report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
