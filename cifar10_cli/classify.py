"""``cifar10 classify``: classify files and folders from the command line (on the shared inference core)."""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator

from cifar10.errors import UserFacingError
from cifar10.folder_journal import JournalError
from cifar10.inference import Classifier, ProviderError, Result, classify_files, iter_image_files, looks_like_image
from cifar10.paths import model_dirs
from cifar10.registry import ModelError, ModelInfo, best_model, discover_models, find_model
from cifar10.results_io import display_text, export_metadata, format_for, format_table, write_results

# Exit status of `cifar10 classify`: every file classified / some files could not be (their rows say why) /
# a usage error or nothing to do (cifar10_cli.main turns a UserFacingError into 2).
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def fail(message: str) -> UserFacingError:
    """Printed by cifar10_cli.main as one line ``cifar10: error: ...``, exit status 2."""
    return UserFacingError(f"classify: {display_text(message)}")


def plural(count: int, word: str = "file") -> str:
    """``1 file``, ``2 files``, ``1,024 files``."""
    return f"{count:,} {word}{'s' * (count != 1)}"


def choose_model(requested: str | None, *, quiet: bool = False, command: str = "classify") -> ModelInfo:
    """The ``--model`` (a name or an .onnx path), else the best discovered model; UserFacingError (naming the
    subcommand, ``command``) if none."""
    models, errors = discover_models()
    if not quiet:
        for error in errors:
            print(f"warning: skipped a model: {error}", file=sys.stderr)
    if requested:
        try:
            return find_model(requested, models)
        except ModelError as exc:
            raise UserFacingError(f"{command}: {display_text(str(exc))}") from None
    model = best_model(models)
    if model is None:
        where = " and ".join(str(d) for d in model_dirs())
        raise UserFacingError(f"{command}: no models found in {where}. Train and export one (`cifar10 train`), "
                              "put a <name>.onnx + <name>.json pair there, or pass --model PATH.onnx.")
    return model


def list_models() -> int:
    models, errors = discover_models()
    best = best_model(models)
    for model in models:
        mark = "*" if model is best else " "
        acc = f"{model.test_accuracy:.2%}" if model.test_accuracy is not None else "   ?  "
        print(f"{mark} {model.name:24s} {acc:>7s}  {model.knows} at {model.image_size} px  {model.summary}  "
              f"[{model.onnx_path}]")
    for error in errors:
        print(f"! {error}")
    if not models:
        print(f"no models found in {' and '.join(str(d) for d in model_dirs())}")
    return 0


def run(args) -> int:
    if getattr(args, "xmp_undo", None) is not None:
        return run_xmp_undo(args)
    if args.list_models:
        return list_models()
    if not args.paths:
        raise fail("give at least one image file or folder (or --list-models)")
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        raise fail("no such file or folder: " + ", ".join(missing))
    if args.batch_size is None or args.batch_size < 1:
        raise fail("--batch-size must be at least 1")
    force = bool(getattr(args, "force", False))
    if args.output is not None:
        try:
            format_for(args.output)
        except ValueError as exc:
            raise fail(str(exc)) from None
        from cifar10.classify_output import output_problem

        problem = output_problem(args.output, force=force, resume=getattr(args, "resume", False))
        if problem:
            raise fail(problem)
    elif force:
        raise fail("--force is for --output (it allows replacing an existing file)")
    if args.top_k < 1 or args.top_k > 10:
        raise fail("--top-k must be between 1 and 10")
    engine = getattr(args, "engine", "local")
    if args.output is None and (engine != "local" or getattr(args, "resume", False)):
        raise fail(f"{'--resume' if engine == 'local' else '--engine ' + engine} writes to a results file: add "
                   "--output results.csv (or .json)")
    if getattr(args, "actors", None) is not None and (engine != "ray" or args.actors < 1):
        raise fail("--actors is a number >= 1, for --engine ray")
    if getattr(args, "address", None) and engine != "ray":
        raise fail("--address is for --engine ray")
    if engine == "ray":
        from cifar10.ray_engine import import_ray

        import_ray()  # without the 'ray' extra: one line naming it, before anything else
    files = list(iter_image_files(args.paths))
    if not any(looks_like_image(path) for path in files):
        raise fail(f"no images found in {', '.join(args.paths)}")

    model = choose_model(args.model)
    tagging = _open_tagging(args.paths, model) if getattr(args, "xmp", False) else None
    try:
        return _classify(args, model, files, tagging)
    except JournalError as exc:  # --xmp: the disk is full (one line, naming the undo)
        raise fail(str(exc)) from None
    finally:
        if tagging is not None:
            tagging.close()


def _open_tagging(paths, model: ModelInfo):
    """``--xmp``: the journal of each folder named, locked and checked before anything is classified."""
    from cifar10.xmp_journal import Tagging

    try:
        return Tagging(paths, model.name)
    except JournalError as exc:
        raise fail(str(exc)) from None


def _classify(args, model: ModelInfo, files: list[str], tagging) -> int:
    engine = getattr(args, "engine", "local")
    if engine == "ray":  # the actors load the model; the driver only ships it
        return _run_to_output(args, model, None, files, tagging)
    try:
        classifier = Classifier(model, provider=args.provider)
    except ProviderError as exc:
        raise fail(str(exc)) from None
    except ModelError as exc:  # e.g. its real output shapes differ from the contract's
        raise fail(str(exc)) from None
    except Exception as exc:  # onnxruntime refusing the model on this provider
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"cannot load {model.onnx_path}: {first}") from None

    if args.output is not None:  # journaled, so that --resume can continue a killed run
        return _run_to_output(args, model, classifier, files, tagging)

    stats = {"done": 0, "total": 0, "failed": 0, "unsure": 0}
    start = time.perf_counter()
    show_progress = args.output is not None and sys.stderr.isatty()

    def on_progress(done: int, total: int) -> None:
        stats["done"], stats["total"] = done, total
        if show_progress:
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(f"\r{done}/{total} files  {rate:,.0f} files/s", end="", file=sys.stderr, flush=True)

    def counted(results: Iterable[Result]) -> Iterator[Result]:
        for result in results:
            stats["failed"] += bool(result.error)
            stats["unsure"] += bool(result.unsure)
            yield result

    print(f"model {model.name} ({model.knows}, {model.image_size} px; {_pct(model.test_accuracy)} test accuracy), "
          f"provider {classifier.provider}", file=sys.stderr)
    results = counted(classify_files(classifier, files, batch_size=args.batch_size, on_progress=on_progress))
    if tagging is not None:
        results = tagging.tag(results)
    try:
        if args.output is not None:
            count = write_results(results, args.output, top_k=args.top_k, meta=export_metadata(model))
        else:
            count = format_table(results, top_k=args.top_k, stream=sys.stdout)
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    if show_progress:
        print(file=sys.stderr)
    where = f"; results in {args.output}" if args.output is not None else ""
    print(f"{plural(count)} in {elapsed:.1f} s ({count / max(elapsed, 1e-9):,.0f} files/s), "
          f"{stats['failed']:,} could not be classified{where}", file=sys.stderr)
    print(unsure_summary(stats["unsure"], count - stats["failed"], classifier.threshold is not None,
                         model.num_classes), file=sys.stderr)
    if tagging is not None:
        _tagging_summary(tagging)
    return EXIT_SOME_FAILED if stats["failed"] else EXIT_OK


def _run_to_output(args, model: ModelInfo, classifier, files: list[str], tagging=None) -> int:
    from cifar10.classify_output import run_to_output

    print(f"model {model.name} ({model.knows}, {model.image_size} px; {_pct(model.test_accuracy)} test accuracy)"
          + (f", provider {classifier.provider}" if classifier is not None else ""), file=sys.stderr)
    try:
        run = run_to_output(files, args.output, model, engine=getattr(args, "engine", "local"),
                            resume=getattr(args, "resume", False), address=getattr(args, "address", None),
                            batch_size=args.batch_size, provider=args.provider, top_k=args.top_k,
                            actors=getattr(args, "actors", None), classifier=classifier,
                            force=bool(getattr(args, "force", False)))
    except UserFacingError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        print("\ncancelled; the files done so far are kept: add --resume to continue", file=sys.stderr)
        return 130
    rate = run.classified / max(run.seconds, 1e-9)
    skipped = f", {run.skipped:,} skipped (already in {args.output.name})" if run.skipped else ""
    print(f"{plural(run.classified)} classified in {run.seconds:.1f} s ({rate:,.0f} files/s){skipped}; "
          f"{run.failed:,} could not be classified; results in {args.output} ({plural(run.rows, 'row')})",
          file=sys.stderr)
    has_open_set = classifier.threshold is not None if classifier is not None else run.scored > 0
    print(unsure_summary(run.unsure, run.rows - run.failed, has_open_set, model.num_classes), file=sys.stderr)
    if tagging is not None:
        _sidecars_from(args.output, tagging)
    return EXIT_SOME_FAILED if run.failed else EXIT_OK


def _sidecars_from(output, tagging) -> None:
    """``--xmp`` with ``--output``: a sidecar for every classified row of the results file (inside the folders
    named on the command line)."""
    from cifar10.results_io import read_results

    for row in read_results(output):
        if not row["error"] and row["label"]:
            tagging.add(row["path"], row["label"], row["confidence"])
    tagging.flush()
    _tagging_summary(tagging)


def _tagging_summary(tagging) -> None:
    from cifar10.xmp_journal import undo_command

    for problem in tagging.problems:
        print(f"warning: no sidecar: {display_text(problem)}", file=sys.stderr)
    undo = "; ".join(f"`{undo_command(folder)}`" for folder in tagging.journaled_folders)
    print(f"XMP sidecars written: {tagging.written} (<image>.xmp)" + (f"; undo with {undo}" if undo else ""),
          file=sys.stderr)


def run_xmp_undo(args) -> int:
    """``cifar10 classify --xmp-undo FOLDER``: put back the sidecars ``--xmp`` wrote or changed in FOLDER."""
    from cifar10_cli.organize import say
    from cifar10.xmp_journal import STATE_DIR, undo

    if args.paths or getattr(args, "xmp", False) or args.output is not None:
        raise fail("--xmp-undo FOLDER takes no other paths, no --xmp and no --output")
    folder = os.path.abspath(args.xmp_undo)
    try:
        report = undo(folder)
    except (JournalError, OSError) as exc:
        why = f"{exc.filename}: {exc.strerror or exc}" if isinstance(exc, OSError) and exc.filename else str(exc)
        raise fail(why) from None
    for problem in report.problems:
        say(f"not undone: {problem}")
    summary = ", ".join([f"put back {plural(report.restored, 'earlier sidecar')}"]
                        + [f"removed {plural(report.removed, 'sidecar')} cifar10 had created"] * bool(report.removed))
    if not report.journal_removed:
        summary += (f"; {len(report.problems)} left as they are (listed above): the journal and the earlier versions "
                    f"stay in {os.path.join(folder, STATE_DIR)}; run --xmp-undo again once that is fixed")
    say(summary, err=True)
    return EXIT_SOME_FAILED if report.problems else EXIT_OK


def unsure_summary(unsure: int, classified: int, has_open_set: bool, num_classes: int | None = None) -> str:
    """The CLI's last line: "7 of 200 unsure: may be none of the 10 classes" (the model's class count; or why
    there is no flag)."""
    from cifar10 import contract

    if not has_open_set:  # a CIFAR-10 model without one is a contract-v1 export; a v3 model may have none either
        why = " (contract v1)" if num_classes in (None, contract.NUM_CLASSES) else ""
        return f"this model has no open-set score{why}: no image is flagged unsure"
    return f"{unsure} of {classified} {contract.unsure_text(num_classes or contract.NUM_CLASSES)}"


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "unknown"

