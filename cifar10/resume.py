"""Resumable ``cifar10 classify --output OUT`` runs: a journal of finished rows beside OUT.

Both engines write every finished row to ``OUT.shards/`` (``results.csv`` -> ``results.csv.shards/``) as
they go, and OUT itself (CSV or JSON, through :mod:`cifar10.results_io`, the one results writer) is
written from that journal at the end::

    OUT.shards/run.json                          the model (name, sha256 of its .onnx), complete or not
    OUT.shards/.lock                             held (fcntl.flock) by the run writing OUT: one run at a time
    OUT.shards/part-<time>-<pid>.jsonl           local engine: appended and fsync'd after every batch
    OUT.shards/part-<time>-<pid>-<n>.parquet     Ray engine: one Parquet shard per batch (temp name, then renamed)

Each row carries its file's key: absolute path, size and mtime (ns). ``--resume`` skips the files whose
key is already in the journal and appends the rest; a file changed since (other size or mtime) is done
again and its newer row wins. A run killed with kill -9 loses at most the batch in flight: a JSONL line
cut short is ignored, a Parquet shard is either complete (renamed) or absent, and a file that two runs
both finished (a worker that outlived its killed driver) still gets one row in OUT.

The journal folder is removed once OUT has been written (a finished run needs no journal); it stays when a run
fails or is killed, which is what ``--resume`` continues from.

Only numpy and the standard library here; Parquet shards need pyarrow (the ``ray`` extra), imported
only when one is read or written.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from cifar10.contract import CLASS_NAMES
from cifar10.errors import UserFacingError
from cifar10.filelock import FileLock, LockBusy
from cifar10.registry import json_load_file_limited, json_loads_limited
from cifar10.results import Result
from cifar10.results_io import json_text

MANIFEST = "run.json"
SHARD_PREFIX = "part-"
LOCK_NAME = ".lock"


class ResumeError(UserFacingError):
    """The journal beside OUT does not fit this run (another model, an unfinished run without --resume)."""


@dataclass(frozen=True)
class FileKey:
    """What identifies a file for --resume: absolute path, size and mtime in ns (-1, -1 if it cannot be read)."""
    key: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> "FileKey":
        absolute = os.path.abspath(path)
        try:
            st = os.stat(absolute)
        except OSError:
            return cls(absolute, -1, -1)
        return cls(absolute, int(st.st_size), int(st.st_mtime_ns))


def shards_dir(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".shards")


# --- rows <-> journal records ----------------------------------------------------------------------------

def make_record(result: Result, key: FileKey) -> dict:
    """The journal record of one result: its row fields at full float32 precision plus the file's key."""
    ok = result.probabilities is not None and not result.error
    return {"path": str(result.path), "key": key.key, "size": key.size, "mtime_ns": key.mtime_ns,
            "label": result.label if ok else "", "confidence": float(result.confidence) if ok else None,
            "error": result.error,
            "unsure": bool(result.unsure) if ok else None,
            "ood_score": float(result.ood_score) if ok and math.isfinite(result.ood_score) else None,
            "probabilities": [float(p) for p in np.asarray(result.probabilities, np.float32)] if ok else None}


def result_from_record(record: dict, classes: tuple[str, ...] = CLASS_NAMES) -> Result:
    """The :class:`Result` a journal record stands for (the results writer turns it into the row)."""
    probs = record.get("probabilities")
    if probs is None or record.get("error"):
        return Result(record["path"], error=record.get("error") or "no result", classes=tuple(classes))
    score = record.get("ood_score")
    return Result(record["path"], record["label"], float(record["confidence"]), np.asarray(probs, np.float32), "",
                  ood_score=float("nan") if score is None else float(score), unsure=bool(record.get("unsure")),
                  classes=tuple(classes))


PROBABILITIES_COLUMN = "probabilities"


def records_to_table(records: list[dict]):
    """A pyarrow Table of records (the Parquet shard layout: the probabilities as one float32 list column, for
    any number of classes; shards written before contract v3 had one column per CIFAR-10 class, still read)."""
    import pyarrow as pa

    probs = [r["probabilities"] for r in records]

    def text(name: str):
        """A string column; as bytes (the name's own, surrogateescape) when a file name is not UTF-8, which a
        Parquet string cannot hold: :func:`table_to_records` decodes them back to the same strings."""
        values = [r[name] for r in records]
        if any(isinstance(v, str) and _has_surrogate(v) for v in values):
            return pa.array([None if v is None else v.encode("utf-8", "surrogateescape") for v in values],
                            pa.binary())
        return pa.array(values, pa.string())

    columns = {
        "path": text("path"),
        "key": text("key"),
        "size": pa.array([r["size"] for r in records], pa.int64()),
        "mtime_ns": pa.array([r["mtime_ns"] for r in records], pa.int64()),
        "label": pa.array([r["label"] for r in records], pa.string()),
        "confidence": pa.array([r["confidence"] for r in records], pa.float64()),
        "error": text("error"),
        "unsure": pa.array([r.get("unsure") for r in records], pa.bool_()),
        "ood_score": pa.array([r.get("ood_score") for r in records], pa.float64()),
    }
    columns[PROBABILITIES_COLUMN] = pa.array(probs, pa.list_(pa.float32()))
    return pa.table(columns)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _str(value):
    """A text cell of a Parquet shard: bytes (a non-UTF-8 file name's own) back to the surrogateescape string."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def table_to_records(table) -> Iterator[dict]:
    for row in table.to_pylist():
        if PROBABILITIES_COLUMN in row:
            probs = row[PROBABILITIES_COLUMN]
        else:  # a shard written before contract v3: one column per CIFAR-10 class
            probs = [row[name] for name in CLASS_NAMES] if row[CLASS_NAMES[0]] is not None else None
        ok = probs is not None and not row["error"]
        yield {"path": _str(row["path"]), "key": _str(row["key"]), "size": row["size"], "mtime_ns": row["mtime_ns"],
               "label": row["label"], "confidence": row["confidence"], "error": _str(row["error"]),
               "unsure": row.get("unsure"), "ood_score": row.get("ood_score"),
               "probabilities": probs if ok else None}


# --- the journal -----------------------------------------------------------------------------------------

def model_id(model) -> dict:
    """Name and sha256 of a model's .onnx file: a journal belongs to one model."""
    digest = hashlib.sha256()
    with open(model.onnx_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": model.name, "sha256": digest.hexdigest()}


class Journal:
    """The finished rows of one OUT, over every run that wrote it (see the module docstring)."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.dir = shards_dir(self.out)
        self._jsonl: int | None = None                # this run's JSONL shard (a raw descriptor, O_APPEND)
        self._lock: FileLock | None = None
        self._made_dir = False                        # this run created the journal folder
        self._parquet_count = 0
        self.done: dict[str, tuple[int, int]] = {}   # key -> (size, mtime_ns) of a finished row
        self.dropped: list[str] = []                  # shards that could not be read (their files are redone)
        self.failed = 0                               # rows with an error in the last OUT written
        self.unsure = 0                               # rows flagged "may be none of the classes" (contract v2)
        self.scored = 0                               # rows with an open-set score (0 for a contract-v1 model)

    # -- state ----------------------------------------------------------------------------------------

    def shards(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir()
                      if p.name.startswith(SHARD_PREFIX) and p.suffix in (".jsonl", ".parquet"))

    def manifest(self) -> dict | None:
        try:
            manifest = json_load_file_limited(self.dir / MANIFEST)
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) else None

    def _write_manifest(self, manifest: dict) -> None:
        from cifar10.results_io import temporary_beside

        stream, partial = temporary_beside(self.dir / MANIFEST, encoding="utf-8")
        try:
            with stream:
                stream.write(json_text(manifest))
            partial.replace(self.dir / MANIFEST)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def lock(self) -> None:
        """Create the journal folder if needed and take its lock; :class:`ResumeError` if another run holds it."""
        for attempt in range(3):
            if not self.dir.is_dir():
                self.dir.mkdir(exist_ok=True)
                self._made_dir = True
            try:
                self._lock = FileLock(self.dir / LOCK_NAME).acquire()
                return
            except LockBusy:
                raise ResumeError(f"another run is writing {self.out} (its journal {self.dir} is locked): wait for "
                                  "it to finish, or write to another --output") from None
            except FileNotFoundError:  # a run that just finished removed the folder: make it again
                if attempt == 2:
                    raise

    def start(self, model, *, engine: str, resume: bool, force: bool = False) -> int:
        """Open (and lock) the journal for a run; returns how many finished rows it already holds (0 unless resume).

        Without ``resume`` an earlier *finished* run's journal is replaced (as OUT is); an unfinished one
        is kept and the run refuses to start, so a killed run is never thrown away by accident (``force``:
        it is thrown away).
        """
        identity = model_id(model)
        self.model = model  # recorded in OUT (results_io.export_metadata)
        if self._lock is None:
            self.lock()
        manifest = self.manifest()
        shards = self.shards()
        if shards and not resume:
            if not force and (manifest is None or not manifest.get("complete")):
                count = sum(1 for _ in self.iter_records())
                raise ResumeError(f"{self.out} has an unfinished run ({count:,} file{'s' * (count != 1)} done, in "
                                  f"{self.dir}): add --resume to continue it, or --force to start over")
            for shard in shards:
                shard.unlink()
            shards = []
        if resume and not shards and self.out.exists():
            raise ResumeError(f"{self.out} has no journal ({self.dir}) to resume from: its run finished (the journal "
                              "is removed then), or it was written by an older version; write to another --output, "
                              "or add --force instead of --resume to classify everything again")
        started_with = manifest.get("model") if manifest is not None else None
        started_with = started_with if isinstance(started_with, dict) else {}
        if shards and manifest is not None and started_with.get("sha256") != identity["sha256"]:
            raise ResumeError(f"{self.out} was started with model {started_with.get('name')!r} (another "
                              f".onnx file than {model.name!r}): resume with that model, or write to another --output")
        self._write_manifest({"model": identity, "engine": engine, "complete": False,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "output": self.out.name})
        self.done = {}
        for record in self.iter_records():
            self.done[record["key"]] = (record["size"], record["mtime_ns"])
        return len(self.done)

    def pending(self, paths: Iterable[str]) -> tuple[list[tuple[str, FileKey]], int]:
        """The (path, key) pairs still to classify, in order, and how many were skipped as already done."""
        todo, skipped = [], 0
        for path in paths:
            key = FileKey.of(path)
            if self.done.get(key.key) == (key.size, key.mtime_ns) and key.size >= 0:
                skipped += 1
            else:
                todo.append((path, key))
        return todo, skipped

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, records: list[dict]) -> None:
        """Local engine: append records to this run's JSONL shard, flushed and fsync'd (kill -9 safe)."""
        if self._jsonl is None:
            name = f"{SHARD_PREFIX}{time.time_ns():020d}-{os.getpid()}.jsonl"
            self._jsonl = os.open(self.dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        # Unbuffered: a failed write (disk full) leaves no buffer behind to fail again at close; a line cut
        # short is ignored when read. json_text keeps a non-UTF-8 file name (surrogates) as escapes.
        data = memoryview("".join(json_text(r) + "\n" for r in records).encode("utf-8"))
        while data:
            data = data[os.write(self._jsonl, data):]
        os.fsync(self._jsonl)

    def append_table(self, table) -> None:
        """Ray engine: one Parquet shard (a pyarrow Table in the :func:`records_to_table` layout)."""
        import pyarrow.parquet as pq

        self._parquet_count += 1
        name = f"{SHARD_PREFIX}{time.time_ns():020d}-{os.getpid()}-{self._parquet_count:06d}.parquet"
        partial = self.dir / f".{name}.tmp"
        pq.write_table(table, partial)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        partial.replace(self.dir / name)

    def close(self) -> None:
        if self._jsonl is not None:
            os.close(self._jsonl)
            self._jsonl = None

    def _remove_own_files(self) -> None:
        """Delete what runs put in the journal folder (shards, manifest, lock), then the folder if it is empty."""
        self.close()
        if not self.dir.is_dir():
            return
        for path in self.dir.iterdir():
            name = path.name
            if (name == MANIFEST or (name.startswith(SHARD_PREFIX) and path.suffix in (".jsonl", ".parquet"))
                    or (name.startswith(f".{SHARD_PREFIX}") and name.endswith(".tmp"))
                    or (name.startswith(f".{MANIFEST}.") and name.endswith(".cifar10-part"))):
                path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release(delete=True)
            self._lock = None
        try:
            self.dir.rmdir()
        except OSError:
            pass  # something else is in it: left alone

    def finish(self) -> None:
        """OUT is written: the journal is not needed any more (removed, lock released)."""
        self._remove_own_files()

    def abandon(self) -> bool:
        """The run failed: keep the journal if it holds finished rows (for --resume), else remove it; release the
        lock. Returns True when rows were kept."""
        self.close()
        try:
            kept = any(True for _ in self.iter_records())
        except Exception:
            kept = bool(self.shards())
        if not kept:
            try:
                self._remove_own_files()
            except OSError:
                pass
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        return kept

    # -- reading ---------------------------------------------------------------------------------------

    def iter_records(self) -> Iterator[dict]:
        """Every record of every readable shard, in the order they were written."""
        for shard in self.shards():
            if shard.suffix == ".jsonl":
                yield from _jsonl_records(shard)
            else:
                try:
                    import pyarrow.parquet as pq
                except ImportError:
                    raise ResumeError(f"{self.dir} holds Parquet shards of a Ray run: reading them needs "
                                      "pyarrow (pip install -e '.[ray]')") from None
                try:
                    table = pq.read_table(shard)
                except Exception as exc:  # a shard cut short: its files are done again
                    if str(shard) not in self.dropped:
                        self.dropped.append(str(shard))
                        print(f"warning: ignoring an unreadable shard {shard.name} ({exc}); its files are redone",
                              file=sys.stderr)
                    continue
                yield from table_to_records(table)

    def results(self) -> Iterator[Result]:
        """One :class:`Result` per file, the newest row of each, in the order the rows were written."""
        last: dict[str, int] = {}
        for index, record in enumerate(self.iter_records()):
            last[record["key"]] = index
        for index, record in enumerate(self.iter_records()):
            if last.get(record["key"]) == index:
                yield result_from_record(record, getattr(getattr(self, "model", None), "labels", CLASS_NAMES))

    def write_output(self, *, top_k: int = 3) -> int:
        """Write OUT (CSV/JSON by its suffix) from the journal and mark the run complete; returns the rows."""
        from cifar10.results_io import export_metadata, write_results

        self.close()
        self.failed = self.unsure = self.scored = 0

        def counted():
            for result in self.results():
                self.failed += bool(result.error)
                self.unsure += bool(result.ok and result.unsure)
                self.scored += bool(result.ok and math.isfinite(result.ood_score))
                yield result

        count = write_results(counted(), self.out, top_k=top_k, meta=export_metadata(getattr(self, "model", None)))
        manifest = self.manifest() or {}
        self._write_manifest({**manifest, "complete": True, "rows": count,
                              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return count


_RECORD_KEYS = ("path", "key", "size", "mtime_ns")


def _jsonl_records(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the last line of a killed run, cut short: that file is done again
            try:
                record = json_loads_limited(line, max_depth=4)
            except ValueError:
                continue
            if isinstance(record, dict) and all(key in record for key in _RECORD_KEYS):
                yield record


# --- the local engine over a journal ---------------------------------------------------------------------

def classify_local(classifier, todo: list[tuple[str, FileKey]], journal: Journal, *, batch_size: int,
                   on_batch: Callable[[list[Result]], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> int:
    """Classify ``todo`` with the streaming local engine, journaling every batch; returns files done."""
    from cifar10.inference import iter_result_batches

    keys = {os.path.normcase(key.key): key for _, key in todo}
    done = 0
    for batch in iter_result_batches(classifier, [path for path, _ in todo], batch_size=batch_size,
                                     should_stop=should_stop):
        journal.append([make_record(r, keys[os.path.normcase(os.path.abspath(r.path))]) for r in batch])
        done += len(batch)
        if on_batch is not None:
            on_batch(batch)
    return done
