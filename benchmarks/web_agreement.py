"""Does the static Space (onnxruntime-web + preprocess.js in Chromium) predict what `cifar10 classify` does?

Writes CIFAR-10 test images as files, classifies them with `cifar10 classify --output x.csv` (the
Python core: Pillow preprocessing + onnxruntime) and in headless Chromium through the exported static
Space's own page (``window.cifar10.classifyUrls``: fetch, preprocess.js, onnxruntime-web), then
compares the labels. Three sets:

* ``png32``: the 10,000 test images as 32x32 PNG (resize is the identity),
* ``jpeg256``: the first N enlarged to 256x256 and saved as JPEG (q=90): JPEG draft + reduce + bicubic,
* ``png640``: the first N enlarged to 640x480 PNG (resize without JPEG: should be byte-identical),
* ``jpeg4000``: the first M enlarged to 4000x3000 JPEG (phone-photo size; aspect squashed back to 32x32),

and, for a sample of each set, whether the 32x32 model input is byte-identical (max abs difference).

    python benchmarks/web_agreement.py                      # models in exported_models/
    python benchmarks/web_agreement.py --models-dir DIR --png 2000 --jpeg256 300 --png640 300 --jpeg4000 100

Needs Debian chromium + chromium-driver and selenium (the dev extra). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cifar10.preprocess import load_image  # noqa: E402
from cifar10.registry import discover_models  # noqa: E402
from web.space import export_space  # noqa: E402
from web.testing import chromium, serve_directory  # noqa: E402
from web_fixtures import build_pixel_model, cifar_split, write_pngs, write_upscaled  # noqa: E402

CHUNK = 250


def python_labels(model_path: Path, files: list[Path], work: Path) -> list[str]:
    out = work / f"py_{model_path.stem}_{files[0].parent.name}.csv"
    subprocess.run([sys.executable, "-m", "cifar10_cli", "classify", str(files[0].parent), "--model", str(model_path),
                    "--output", str(out), "--provider", "cpu"], check=True, cwd=ROOT)
    with out.open(newline="") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    return [rows[f.name]["label"] or f"ERROR: {rows[f.name]['error']}" for f in files]


def browser_labels(driver, model_name: str, urls: list[str]) -> list[str]:
    labels: list[str] = []
    for start in range(0, len(urls), CHUNK):
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.cifar10.classifyUrls(arguments[0], arguments[1]).then(done, e => done({error: String(e)}));",
            urls[start:start + CHUNK], model_name)
        if isinstance(result, dict):
            raise RuntimeError(result["error"])
        labels += [r["label"] or f"ERROR: {r['error']}" for r in result]
    return labels


def pixel_check(driver, files: list[Path], urls: list[str]) -> dict:
    exact, max_diff = 0, 0
    for path, url in zip(files, urls):
        js = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.cifar10.preprocessUrl(arguments[0]).then(done, e => done(String(e)));", url)
        ours = np.asarray(js, np.int16).reshape(32, 32, 3)
        ref = load_image(path).astype(np.int16)
        diff = int(np.abs(ours - ref).max())
        exact += diff == 0
        max_diff = max(max_diff, diff)
    return {"checked": len(files), "byte_identical": exact, "max_abs_diff": max_diff}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "exported_models")
    parser.add_argument("--png", type=int, default=10000)
    parser.add_argument("--jpeg256", type=int, default=300)
    parser.add_argument("--png640", type=int, default=300)
    parser.add_argument("--jpeg4000", type=int, default=100)
    parser.add_argument("--pixel-sample", type=int, default=50, help="images per set whose 32x32 input is compared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "web_agreement.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary image sets and Space")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cifar10-agreement-"))
    try:
        return run(args, work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> int:

    models, _ = discover_models([args.models_dir])
    if not models:
        print(f"no models in {args.models_dir}: using the pixel ridge-regression test fixture", file=sys.stderr)
        build_pixel_model(work / "models")
        args.models_dir = work / "models"
        models, _ = discover_models([args.models_dir])
    space = work / "space"
    export_space("static", space, models_dir=args.models_dir, samples_dir=work / "no-samples")

    test = cifar_split("test_batch")
    t0 = time.perf_counter()
    sets = {
        "png32": write_pngs(space / "bench" / "png32", test.x[:args.png]),
        "jpeg256": write_upscaled(space / "bench" / "jpeg256", test.x[:args.jpeg256], (256, 256)),
        "png640": write_upscaled(space / "bench" / "png640", test.x[:args.png640], (640, 480), fmt="PNG"),
        "jpeg4000": write_upscaled(space / "bench" / "jpeg4000", test.x[:args.jpeg4000], (4000, 3000)),
    }
    print(f"wrote the image sets in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    report = {"models": {}, "chromium": None, "sets": {k: len(v) for k, v in sets.items()}}
    with serve_directory(space) as base, chromium() as driver:
        driver.set_script_timeout(1800)
        driver.get(base)
        driver.execute_async_script("const done = arguments[arguments.length - 1]; window.cifar10.ready.then(() => done(1));")
        report["chromium"] = driver.capabilities.get("browserVersion")
        for model in models:
            per_set = {}
            for set_name, files in sets.items():
                if not files:
                    continue
                urls = [f"bench/{set_name}/{f.name}" for f in files]
                t0 = time.perf_counter()
                py = python_labels(model.onnx_path, files, work)
                t_py = time.perf_counter() - t0
                t0 = time.perf_counter()
                js = browser_labels(driver, model.name, urls)
                t_js = time.perf_counter() - t0
                agree = sum(a == b for a, b in zip(py, js))
                truth = test.y[:len(files)]
                from cifar10.contract import CLASS_NAMES
                per_set[set_name] = {
                    "images": len(files), "agree": agree, "agreement": agree / len(files),
                    "disagreements": [{"file": f.name, "python": a, "browser": b}
                                      for f, a, b in zip(files, py, js) if a != b][:20],
                    "python_accuracy": float(np.mean([p == CLASS_NAMES[t] for p, t in zip(py, truth)])),
                    "browser_accuracy": float(np.mean([p == CLASS_NAMES[t] for p, t in zip(js, truth)])),
                    "python_seconds": round(t_py, 1), "browser_seconds": round(t_js, 1),
                    "pixels": pixel_check(driver, files[:args.pixel_sample], urls[:args.pixel_sample]),
                }
                s = per_set[set_name]
                print(f"{model.name:24s} {set_name:9s} {len(files):6d} images  agreement {s['agreement']:.2%}  "
                      f"(python acc {s['python_accuracy']:.2%}, browser acc {s['browser_accuracy']:.2%}; "
                      f"32x32 input identical {s['pixels']['byte_identical']}/{s['pixels']['checked']}, "
                      f"max diff {s['pixels']['max_abs_diff']}; browser {t_js:.0f} s)", flush=True)
            report["models"][model.name] = per_set
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
