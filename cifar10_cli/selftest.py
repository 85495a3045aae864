"""Self-test: classify the shipped sample images and check every one gets the label in its file name.

The model is the best *shipped* one (``exported_models/``, or ``$CIFAR10_MODELS_DIR``; in the bundle
the models built into it) unless ``--model`` names another (any discovered model, or an .onnx path).

``cifar10 self-test`` from a checkout, ``cifar10-classifier --self-test`` in the PyInstaller bundle.
It exercises what a user's machine needs for the apps: model discovery and contract checks, an
onnxruntime session, Pillow decoding and the batched classifier. Exit status: 0 if every sample got
its expected label, 1 if at least one did not, 2 if it could not run (no model, no samples).

Sample files are ``resources/samples/<class>_<anything>.png`` (e.g. ``cat_0.png``); the class is the
part before the last ``_`` (or the whole stem). Files whose name names no CIFAR-10 class are errors.
The samples are real CIFAR-10 test images, so a weak model can legitimately get one wrong: the
self-test then fails and says which, because "all right" is what it promises.

Only a CIFAR-10 model (CIFAR-10's ten classes at 32 px: every v1/v2 model) can be self-tested: the default
is the best shipped *CIFAR-10* model, and ``--model`` naming a model of other classes (contract v3, e.g. one
trained with ``cifar10 train --data``) exits 2 with a sentence saying so and pointing to
``cifar10 evaluate --folder`` (a labelled folder of that model's classes) instead.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cifar10.contract import CLASS_NAMES, IMAGE_SIZE
from cifar10 import paths
from cifar10.paths import model_dirs, project_root, shipped_models_dir
from cifar10.results import Result

EXIT_PASS, EXIT_FAIL, EXIT_CANNOT_RUN = 0, 1, 2


def is_cifar10_model(model) -> bool:
    """The model knows CIFAR-10's classes, in order, at 32 px (what the samples can test)."""
    return tuple(model.class_names) == CLASS_NAMES and model.image_size == IMAGE_SIZE


def passed(result: Result) -> bool:
    """Classified, and as the file name says."""
    return result.ok and result.label == expected_label(result.path)


def expected_label(path: str | os.PathLike) -> str | None:
    """``cat_0.png`` -> ``cat``; ``automobile.png`` -> ``automobile``; None if no class is named."""
    stem = Path(path).stem
    for candidate in (stem.rsplit("_", 1)[0], stem):
        if candidate in CLASS_NAMES:
            return candidate
    return None


@dataclass
class SelfTestReport:
    exit_code: int
    model_name: str = ""
    model_path: str = ""
    test_accuracy: float | None = None
    provider: str = ""
    samples_dir: str = ""
    outcomes: list[Result] = field(default_factory=list)  # one per sample file, in name order
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS

    @property
    def correct(self) -> int:
        return sum(passed(r) for r in self.outcomes)


def run_self_test(*, model: str | None = None, samples_dir: str | os.PathLike | None = None,
                  provider: str = "auto", stream: IO[str] | None = None) -> SelfTestReport:
    """Run the self-test, printing what it does to ``stream`` (default stdout); returns the report."""
    out = stream if stream is not None else sys.stdout
    start = time.perf_counter()

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    def finish(report: SelfTestReport) -> SelfTestReport:
        report.seconds = time.perf_counter() - start
        verdict = {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL"}.get(report.exit_code, "ERROR")
        say(f"self-test {verdict}: {report.message} ({report.seconds:.2f} s)")
        return report

    samples = Path(samples_dir) if samples_dir is not None else paths.samples_dir()
    where = "bundle " + str(Path(sys.executable).parent) if getattr(sys, "frozen", False) else \
        "checkout " + str(project_root())
    say(f"self-test: running from the {where}")
    say("self-test: model folders " + ", ".join(str(d) for d in model_dirs()))
    report = SelfTestReport(exit_code=EXIT_CANNOT_RUN, samples_dir=str(samples))
    files = sorted(p for p in samples.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if samples.is_dir() else []
    if not files:
        report.message = f"no sample images in {samples}"
        return finish(report)

    from cifar10.inference import Classifier, classify_files  # onnxruntime + Pillow: imported only now
    from cifar10.registry import ModelError, best_model, discover_models, find_model

    models, errors = discover_models()
    for error in errors:
        say(f"self-test: warning: skipped a model: {error}")
    shipped_dir = shipped_models_dir().resolve()
    shipped = [m for m in models if m.onnx_path.resolve().parent == shipped_dir]
    try:  # --model: any discovered model or .onnx path; default: the best *shipped* CIFAR-10 one (built in)
        chosen = find_model(model, models) if model else best_model([m for m in shipped if is_cifar10_model(m)])
    except ModelError as exc:
        report.message = str(exc)
        return finish(report)
    if chosen is not None and not is_cifar10_model(chosen):
        report.model_name, report.model_path = chosen.name, str(chosen.onnx_path)
        report.message = (f"cannot self-test {chosen.name}: it knows {chosen.knows} at {chosen.image_size} px, and "
                          f"the sample images are CIFAR-10's; only a CIFAR-10 model can be self-tested. Check this "
                          f"model on a labelled folder instead: cifar10 evaluate --model {chosen.name} --folder PATH "
                          "(one subfolder per class)")
        return finish(report)
    if chosen is None:
        others = [m.name for m in models if is_cifar10_model(m)]
        not_cifar = [m.name for m in shipped if not is_cifar10_model(m)]
        hint = f" (other folders have: {', '.join(others)}; pass --model NAME to test one)" if others else ""
        if not_cifar:
            hint += (f" ({', '.join(not_cifar)} {'knows' if len(not_cifar) == 1 else 'know'} other classes: only "
                     "a CIFAR-10 model can be self-tested)")
        report.message = (f"no shipped {'CIFAR-10 ' if not_cifar else ''}models in {shipped_dir}{hint}; add "
                          "<name>.onnx + <name>.json, or pass --model PATH.onnx")
        return finish(report)
    report.model_name, report.model_path, report.test_accuracy = chosen.name, str(chosen.onnx_path), \
        chosen.test_accuracy
    try:
        classifier = Classifier(chosen, provider=provider)
    except Exception as exc:  # ProviderError, or onnxruntime refusing the model
        report.message = f"cannot load {chosen.onnx_path}: {exc}"
        return finish(report)
    report.provider = classifier.provider
    acc = f"{chosen.test_accuracy:.1%}" if chosen.test_accuracy is not None else "unknown"
    how = "--model" if model else "best shipped model"
    say(f"self-test: model {chosen.name} ({how}; {acc} test accuracy, {chosen.onnx_path}), "
        f"provider {classifier.provider}")
    say(f"self-test: classifying {len(files)} sample images from {samples}")

    for result in classify_files(classifier, [str(p) for p in files]):
        expected = expected_label(result.path)
        if expected is None and not result.error:
            result.error = "the file name names no CIFAR-10 class (expected <class>_<n>.png)"
        report.outcomes.append(result)
        name = os.path.basename(result.path)
        if result.error:
            say(f"  ERROR {name}: {result.error}")
        elif passed(result):
            say(f"  ok    {name:<20s} {result.label:<11s} {result.confidence:6.1%}")
        else:
            say(f"  WRONG {name:<20s} {result.label:<11s} {result.confidence:6.1%}  (expected {expected})")

    total = len(report.outcomes)
    report.exit_code = EXIT_PASS if report.correct == total else EXIT_FAIL
    report.message = f"{report.correct}/{total} sample images classified as expected with {chosen.name}"
    return finish(report)


def main(args) -> int:
    """``cifar10 self-test`` (argparse namespace with model, samples, provider)."""
    return run_self_test(model=args.model, samples_dir=args.samples, provider=args.provider).exit_code
