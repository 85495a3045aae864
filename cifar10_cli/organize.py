"""``cifar10 organize``: sort images into class folders (copy or move) under a journal; ``--undo`` puts them back."""

from __future__ import annotations

import os
import sys
import time

from cifar10_cli.classify import choose_model
from cifar10.errors import UserFacingError
from cifar10.inference import Classifier, ProviderError
from cifar10.organize import JOURNAL_NAME, UNSURE_DIR, OrganizeError, execute, plan_organize, undo


def fail(message: str) -> UserFacingError:
    return UserFacingError(f"organize: {message}")


def _progress(verb: str):
    show = sys.stderr.isatty()

    def on_progress(done: int, total: int) -> None:
        if show:
            print(f"\r{verb} {done}/{total}", end="", file=sys.stderr, flush=True)
    return on_progress, show


def run(args) -> int:
    if args.undo is not None:
        if args.sources or args.into is not None:
            raise fail("--undo DST takes no sources and no --into")
        return run_undo(args.undo)
    if not args.sources or args.into is None:
        raise fail("give the images to sort and where to put them: cifar10 organize SRC... --into DST")
    missing = [p for p in args.sources if not os.path.exists(p)]
    if missing:
        raise fail("no such file or folder: " + ", ".join(missing))
    if not 0.0 <= args.min_confidence <= 1.0:
        raise fail("--min-confidence must be between 0 and 1 (e.g. 0.5)")
    model = choose_model(args.model)
    try:
        classifier = Classifier(model, provider=args.provider)
    except ProviderError as exc:
        raise fail(str(exc)) from None
    start = time.perf_counter()
    on_progress, shown = _progress("classified")
    try:
        plan = plan_organize(classifier, args.sources, args.into, mode=args.mode, min_confidence=args.min_confidence,
                             batch_size=args.batch_size, on_progress=on_progress)
    except OrganizeError as exc:
        raise fail(str(exc)) from None
    if shown:
        print(file=sys.stderr)
    verb, past = ("copy", "copied") if plan.mode == "copy" else ("move", "moved")
    for result in plan.unreadable:
        print(f"not {past} (cannot be read): {result.path}: {result.error}")
    if args.dry_run:
        for step in plan.steps:
            why = f"  ({step.reason})" if step.reason else ""
            print(f"{step.src} -> {step.dst(plan.dst_root)}{why}")
        _summary(plan, "would " + verb)
        if plan.pending:
            print(f"{plan.pending} step(s) of an interrupted run would be finished first", file=sys.stderr)
        return 0
    classified_s = time.perf_counter() - start
    print(f"model {model.name}; {verb} {len(plan.steps)} files into {plan.dst_root} "
          f"(journal {os.path.join(plan.dst_root, JOURNAL_NAME)})", file=sys.stderr)
    on_progress, shown = _progress(past)
    try:
        report = execute(plan, on_progress=on_progress)
    except KeyboardInterrupt:
        print(f"\ncancelled: what was done is in the journal; run the same command again to go on, or "
              f"cifar10 organize --undo {plan.dst_root}", file=sys.stderr)
        return 130
    except OrganizeError as exc:
        raise fail(str(exc)) from None
    if shown:
        print(file=sys.stderr)
    if report.recovered:
        print(f"finished {report.recovered} step(s) an interrupted run had begun", file=sys.stderr)
    for problem in report.problems:
        print(f"left alone: {problem}")
    _summary(plan, past)
    total_s = time.perf_counter() - start
    doing = "copying" if plan.mode == "copy" else "moving"
    print(f"{len(report.done)} files in {total_s:.1f} s (classifying {classified_s:.1f} s, {doing} "
          f"{total_s - classified_s:.1f} s); undo with: "
          f"cifar10 organize --undo {plan.dst_root}", file=sys.stderr)
    return 1 if report.problems else 0


def _summary(plan, verb: str) -> None:
    counts = ", ".join(f"{folder} {n}" for folder, n in plan.counts().items()) or "nothing"
    print(f"{verb} {len(plan.steps)} files: {counts}", file=sys.stderr)
    if plan.counts().get(UNSURE_DIR):
        print(f"{UNSURE_DIR}/: confidence below {plan.min_confidence:.0%} or flagged unsure by the model",
              file=sys.stderr)
    if plan.unreadable:
        print(f"{len(plan.unreadable)} files could not be read and were left where they are (listed above)",
              file=sys.stderr)
    if plan.already_done:
        print(f"{len(plan.already_done)} files were already copied by an earlier run (journal); skipped",
              file=sys.stderr)


def run_undo(dst) -> int:
    on_progress, shown = _progress("put back")
    try:
        report = undo(dst, on_progress=on_progress)
    except OrganizeError as exc:
        raise fail(str(exc)) from None
    if shown:
        print(file=sys.stderr)
    for problem in report.problems:
        print(f"not undone: {problem}")
    print(f"undid {report.restored} steps" + ("" if report.journal_removed else
                                              f"; the journal stays in {dst} for what could not be undone"),
          file=sys.stderr)
    return 1 if report.problems else 0
