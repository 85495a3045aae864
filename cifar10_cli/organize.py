"""``cifar10 organize``: sort images into class folders (copy or move) under a journal; ``--undo`` puts them back.

Exit codes, as for ``classify`` and ``evaluate``: 0 every file done, 1 some files could not be read or were left
alone (each listed with why), 2 a usage error or nothing to do ("no images found in ...").
"""

from __future__ import annotations

import os
import sys
import time

from cifar10_cli.classify import choose_model, plural
from cifar10.errors import UserFacingError
from cifar10.inference import Classifier, ProviderError, looks_like_image
from cifar10.organize import JOURNAL_NAME, UNSURE_DIR, OrganizeError, execute, plan_organize, shown, undo


def printable(text: str, stream=None) -> str:
    """``text`` as ``stream`` can print it: bytes of a non-UTF-8 file name as ``\\xe9``, characters the stream's
    encoding lacks as ``\\u00e9`` (a name never makes organize crash while it reports)."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    encoding = getattr(stream or sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return text


def say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(printable(text, stream), file=stream)


def fail(message: str) -> UserFacingError:
    return UserFacingError(printable(f"organize: {message}", sys.stderr))


def _why(exc: Exception) -> str:
    """One line for an OrganizeError, or for an OSError nothing else caught (an unreadable journal, say)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{shown(exc.filename)}: {exc.strerror or exc}"
    return str(exc)


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
        raise fail("no such file or folder: " + ", ".join(shown(p) for p in missing))
    if not 0.0 <= args.min_confidence <= 1.0:
        raise fail("--min-confidence must be between 0 and 1 (e.g. 0.5)")
    model = choose_model(args.model, command="organize")
    try:
        classifier = Classifier(model, provider=args.provider)
    except ProviderError as exc:
        raise fail(str(exc)) from None
    start = time.perf_counter()
    on_progress, shown_progress = _progress("classified")
    try:
        plan = plan_organize(classifier, args.sources, args.into, mode=args.mode, min_confidence=args.min_confidence,
                             batch_size=args.batch_size, on_progress=on_progress)
    except (OrganizeError, OSError) as exc:
        raise fail(_why(exc)) from None
    if shown_progress:
        print(file=sys.stderr)
    if not (plan.steps or plan.pending or plan.already_done or plan.skipped
            or any(looks_like_image(result.path) for result in plan.unreadable)):
        raise fail(f"no images found in {', '.join(shown(p) for p in args.sources)}")
    verb, past = ("copy", "copied") if plan.mode == "copy" else ("move", "moved")
    for result in plan.unreadable:
        say(f"not {past} (cannot be read): {shown(result.path)}: {result.error}")
    for path, why in plan.skipped:
        say(f"not {past} ({why}): {shown(path)}")
    if args.dry_run:
        for step in plan.steps:
            why = f"  ({step.reason})" if step.reason else ""
            say(f"{shown(step.src)} -> {shown(step.dst(plan.dst_root))}{why}")
        _summary(plan, "would " + verb, plan.counts(), len(plan.steps))
        if plan.pending:
            say(f"{plural(plan.pending, 'step')} of an interrupted run would be finished first", err=True)
        return 0
    classified_s = time.perf_counter() - start
    say(f"model {model.name}; {verb} {plural(len(plan.steps))} into {shown(plan.dst_root)} "
        f"(journal {shown(os.path.join(plan.dst_root, JOURNAL_NAME))})", err=True)
    on_progress, shown_progress = _progress(past)
    try:
        report = execute(plan, on_progress=on_progress)
    except KeyboardInterrupt:
        say(f"\ncancelled: what was done is in the journal; run the same command again to go on, or "
            f"cifar10 organize --undo {shown(plan.dst_root)}", err=True)
        return 130
    except (OrganizeError, OSError) as exc:
        if shown_progress:
            print(file=sys.stderr)
        raise fail(_why(exc)) from None
    if shown_progress:
        print(file=sys.stderr)
    if report.recovered:
        say(f"finished {plural(report.recovered, 'step')} an interrupted run had begun", err=True)
    for problem in report.problems:
        say(f"left alone: {problem}")
    done_now = len(report.done) - report.recovered
    _summary(plan, past, report.counts(), len(report.done))
    if done_now < len(plan.steps):
        say(f"{len(plan.steps) - done_now} of the {len(plan.steps)} planned files were not {past} "
            f"({'cancelled' if report.cancelled else 'listed above'})", err=True)
    total_s = time.perf_counter() - start
    doing = "copying" if plan.mode == "copy" else "moving"
    say(f"{plural(len(report.done))} in {total_s:.1f} s (classifying {classified_s:.1f} s, {doing} "
        f"{total_s - classified_s:.1f} s); undo with: cifar10 organize --undo {shown(plan.dst_root)}", err=True)
    return 1 if report.problems or plan.unreadable else 0


def _summary(plan, verb: str, counts: dict[str, int], total: int) -> None:
    listed = ", ".join(f"{folder} {n}" for folder, n in counts.items()) or "nothing"
    say(f"{verb} {plural(total)}: {listed}", err=True)
    if counts.get(UNSURE_DIR):
        say(f"{UNSURE_DIR}/: confidence below {plan.min_confidence:.0%} or flagged unsure by the model", err=True)
    if plan.unreadable:
        say(f"{plural(len(plan.unreadable))} could not be read: left where they were (listed above)", err=True)
    if plan.skipped:
        say(f"{plural(len(plan.skipped), 'symbolic link')} left where they are (listed above)", err=True)
    if plan.already_done:
        say(f"{plural(len(plan.already_done))} already copied by an earlier run (journal); skipped", err=True)


def run_undo(dst) -> int:
    on_progress, shown_progress = _progress("put back")
    try:
        report = undo(dst, on_progress=on_progress)
    except (OrganizeError, OSError) as exc:
        raise fail(_why(exc)) from None
    if shown_progress:
        print(file=sys.stderr)
    for problem in report.problems:
        say(f"not undone: {problem}")
    kept = (f"; {len(report.problems)} not undone (listed above), and the journal stays in {shown(dst)}: fix what "
            "is listed and run --undo again")
    say(f"undid {plural(report.restored, 'step')}" + ("" if report.journal_removed else kept), err=True)
    return 1 if report.problems else 0
