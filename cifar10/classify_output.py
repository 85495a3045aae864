"""``cifar10 classify ... --output OUT`` on either engine, journaled so that ``--resume`` can continue it.

The command line's wiring calls :func:`run_to_output`; the engines live in :mod:`cifar10.resume` (local)
and :mod:`cifar10.ray_engine` (Ray, imported only when asked for).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cifar10.errors import UserFacingError
from cifar10.inference import iter_image_files
from cifar10.progress import ProgressLine
from cifar10.resume import Journal, classify_local

ENGINES = ("local", "ray")


@dataclass
class OutputRun:
    rows: int = 0           # rows in OUT (this run's and earlier runs')
    total: int = 0          # files given this time
    skipped: int = 0        # of which already in OUT (--resume)
    classified: int = 0     # classified by this run
    failed: int = 0         # rows in OUT that could not be classified
    unsure: int = 0         # rows in OUT flagged "may be none of the classes" (contract v2 models)
    scored: int = 0         # rows in OUT with an open-set score (0: a contract-v1 model)
    seconds: float = 0.0    # this run, listing to OUT written
    startup_s: float = 0.0  # Ray: connecting or starting the instance


def output_problem(output: str | os.PathLike, *, force: bool = False, resume: bool = False) -> str | None:
    """Why ``output`` cannot be written (one sentence), or None.

    The rule: OUT must not be a folder or anything but a regular file; an existing OUT is replaced only when it
    is a results file that cifar10 wrote (its CSV header or JSON opening says so) or with ``force``; its folder
    must exist and be writable. (``resume``: OUT is continued, its journal decides.)
    """
    output = Path(output)
    try:
        st = os.stat(output)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"cannot use --output {output}: {exc.strerror or exc}"
    if st is not None and stat.S_ISDIR(st.st_mode):
        return f"--output {output} is a folder: name a results file (.csv or .json) in it"
    if st is not None and not stat.S_ISREG(st.st_mode):
        return f"--output {output} exists and is not a regular file (a pipe or a device): name another file"
    parent = output.parent
    if not parent.is_dir():
        return f"the folder for --output does not exist: {parent}"
    if not os.access(parent, os.W_OK | os.X_OK):
        why = "it is on a read-only file system" if _read_only(parent) else "no permission to write there"
        return f"cannot write --output {output}: {why}"
    if st is not None and not force and not is_results_file(output):
        return (f"--output {output} exists and is not a results file written by cifar10: it is left alone; add "
                "--force to replace it, or name another file")
    return None


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def is_results_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a results file that cifar10 wrote (CSV header / JSON opening; read: 4 KB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    return (text.startswith("path,label,confidence,error") or text.startswith('{"model": ')
            or (text.startswith("[") and text[1:].lstrip().startswith('{"path": ')))


def run_to_output(paths, output, model, *, engine: str = "local", resume: bool = False, address: str | None = None,
                  batch_size: int = 256, provider: str = "auto", top_k: int = 3, actors: int | None = None,
                  classifier=None, progress: bool = True, log=None, force: bool = False) -> OutputRun:
    """Classify ``paths`` into ``output`` (CSV/JSON) with ``engine``; every finished batch is journaled.

    One run per OUT at a time (the journal's lock). An existing OUT that cifar10 did not write is refused
    unless ``force`` (:func:`output_problem`). When the run fails, nothing half-written is left under OUT's
    name: the journal is kept if it holds finished rows (``--resume`` continues), else removed. Errors are
    :class:`UserFacingError`s (one line)."""
    log = log or (lambda message: print(message, file=sys.stderr))
    if engine not in ENGINES:
        raise UserFacingError(f"unknown engine '{engine}': local or ray")
    if address and engine != "ray":
        raise UserFacingError("--address is for --engine ray")
    if batch_size < 1:
        raise UserFacingError("--batch-size must be at least 1")
    output = Path(output)
    problem = output_problem(output, force=force, resume=resume)
    if problem:
        raise UserFacingError(problem)
    started = time.perf_counter()
    session = None
    if engine == "ray":
        from cifar10.ray_engine import RaySession, import_ray

        import_ray()  # the 'ray' extra, named in one line if missing, before any work
    journal = Journal(output)
    try:
        journal.lock()
    except OSError as exc:
        raise UserFacingError(f"cannot write the journal {journal.dir} for --output {output}: "
                              f"{exc.strerror or exc}") from None
    finished = False
    try:
        problem = output_problem(output, force=force, resume=resume)  # again, now that OUT is ours alone
        if problem:
            raise UserFacingError(problem)
        already = journal.start(model, engine=engine, resume=resume, force=force)
        files = list(iter_image_files(paths))
        todo, skipped = journal.pending(files)
        run = OutputRun(total=len(files), skipped=skipped)
        if resume:
            log(f"resuming {output}: {_n(already)} done earlier, {skipped:,} of the {_n(len(files))} given skipped, "
                f"{len(todo):,} to do")
        line = ProgressLine(len(files), skipped=skipped, enabled=progress)
        try:
            if engine == "ray":
                with RaySession(address) as session:
                    run.startup_s = session.startup_s
                    log(f"engine ray on {session.describe()} ({session.startup_s:.1f} s to start)")
                    from cifar10.ray_engine import classify_ray

                    run.classified = classify_ray(session, model, todo, journal, batch_size=batch_size,
                                                  provider=provider, actors=actors, on_rows=line.advance)
            else:
                if classifier is None:
                    from cifar10.inference import Classifier

                    classifier = Classifier(model, provider=provider)
                run.classified = classify_local(classifier, todo, journal, batch_size=batch_size,
                                                on_batch=lambda batch: line.advance(len(batch)))
        finally:
            line.close()
            journal.close()
        run.rows = journal.write_output(top_k=top_k)
        finished = True
    except OSError as exc:  # disk full, read-only, permissions, a file system gone away
        kept = journal.abandon()
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        tail = (f"; the files done so far are kept in {journal.dir}: fix that, then add --resume to continue"
                if kept else "; nothing was written")
        raise UserFacingError(f"cannot write{where} for --output {output}: {exc.strerror or exc}{tail}") from None
    except BaseException:
        journal.abandon()
        raise
    finally:
        if finished:
            try:
                journal.finish()
            except OSError as exc:
                log(f"warning: could not remove the journal {journal.dir} ({exc.strerror or exc})")
    run.failed, run.unsure, run.scored = journal.failed, journal.unsure, journal.scored
    run.seconds = time.perf_counter() - started
    return run


def _n(count: int, word: str = "file") -> str:
    return f"{count:,} {word}{'s' * (count != 1)}"
