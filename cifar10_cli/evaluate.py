"""``cifar10 evaluate``: a model's figures on a labelled folder or on the CIFAR-10 test set (no TensorFlow).

Exit codes, as for ``classify`` and ``organize``: 0 every image was measured, 1 some could not be read (listed, and
left out of the figures), 2 a usage error or nothing to measure.
"""

from __future__ import annotations

import sys
import time

from cifar10_cli.classify import choose_model
from cifar10.errors import UserFacingError
from cifar10.evaluation import evaluate_folder, evaluate_test_set, format_report, write_report
from cifar10.inference import Classifier, ProviderError


def run(args) -> int:
    if args.onnx is not None and args.model is not None:
        raise UserFacingError("evaluate: give the model once: either as the argument or with --model")
    requested = str(args.onnx) if args.onnx is not None else args.model
    if args.folder is not None and not args.folder.is_dir():
        raise UserFacingError(f"evaluate: --folder {args.folder} is not a folder")
    if args.output is not None and args.output.suffix.lower() != ".json":
        raise UserFacingError("evaluate: --output must be a .json file")
    model = choose_model(requested, command="evaluate")
    try:
        classifier = Classifier(model, provider=args.provider)
    except ProviderError as exc:
        raise UserFacingError(f"evaluate: {exc}") from None
    start = time.perf_counter()
    show_progress = sys.stderr.isatty()

    def on_progress(done: int, total: int) -> None:
        if show_progress:
            print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True)

    try:
        if args.folder is not None:
            try:
                evaluation = evaluate_folder(classifier, args.folder, batch_size=args.batch_size,
                                             on_progress=on_progress)
            except (ValueError, OSError) as exc:
                raise UserFacingError(f"evaluate: {exc}") from None
        else:
            try:  # a model of other classes cannot be measured on CIFAR-10: the core says so and what to do
                evaluation = evaluate_test_set(classifier, args.data_dir, limit=args.limit, on_progress=on_progress)
            except ValueError as exc:
                raise UserFacingError(f"evaluate: {exc}") from None
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
    if show_progress:
        print(file=sys.stderr)
    for line in format_report(evaluation):
        print(line)
    if args.output is not None:
        write_report(evaluation, args.output)
        print(f"report with one row per image: {args.output}", file=sys.stderr)
    print(f"{evaluation.metrics['n']} images in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 1 if evaluation.unreadable else 0
