"""``cifar10 classify ... --output OUT`` on either engine, journaled so that ``--resume`` can continue it.

The command line's wiring calls :func:`run_to_output`; the engines live in :mod:`cifar10.resume` (local)
and :mod:`cifar10.ray_engine` (Ray, imported only when asked for).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

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


def run_to_output(paths, output, model, *, engine: str = "local", resume: bool = False, address: str | None = None,
                  batch_size: int = 256, provider: str = "auto", top_k: int = 3, actors: int | None = None,
                  classifier=None, progress: bool = True, log=None) -> OutputRun:
    """Classify ``paths`` into ``output`` (CSV/JSON) with ``engine``; every finished batch is journaled."""
    log = log or (lambda message: print(message, file=sys.stderr))
    if engine not in ENGINES:
        raise UserFacingError(f"unknown engine '{engine}': local or ray")
    if address and engine != "ray":
        raise UserFacingError("--address is for --engine ray")
    started = time.perf_counter()
    session = None
    if engine == "ray":
        from cifar10.ray_engine import RaySession, import_ray

        import_ray()  # the 'ray' extra, named in one line if missing, before any work
    journal = Journal(output)
    already = journal.start(model, engine=engine, resume=resume)
    files = list(iter_image_files(paths))
    todo, skipped = journal.pending(files)
    run = OutputRun(total=len(files), skipped=skipped)
    if resume:
        log(f"resuming {output}: {already:,} files done earlier, {skipped:,} of the {len(files):,} given skipped, "
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
    run.failed, run.unsure, run.scored = journal.failed, journal.unsure, journal.scored
    run.seconds = time.perf_counter() - started
    return run
