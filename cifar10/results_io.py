"""Write classification results: one writer for the CLI and the desktop app, so their files match.

Columns (CSV header, JSON keys): ``path, label, confidence, error, unsure, ood_score`` then one
probability column per class of the model, named by the class, in the model's order (CIFAR-10's ten for the
shipped models; :func:`cifar10.results.columns`). ``unsure`` is ``true`` when
the model's open-set flag is raised ("may be none of the 10 classes"; ``label`` still holds the most likely
class) and ``ood_score`` the score behind it (larger = less like CIFAR-10; empty for a contract-v1 model,
whose ``unsure`` is always ``false``). A failed file has an empty label/confidence/unsure/ood_score/
probabilities (JSON: null) and its message in ``error``.

File names that are not valid UTF-8 (Linux allows any bytes; Python reads them as "surrogate-escaped"
strings) are kept losslessly: in JSON as ``\\udcXX`` escapes (``json.loads`` gives back the same string, and
``os.fsencode`` the file's real bytes); in CSV as the name's own bytes (the file is written with
``errors="surrogateescape"``, so that one cell holds the raw bytes, exactly as the file system spells it, and
every other cell stays UTF-8); :func:`read_results` reads both back to the same strings.

Which model made the results, and when, is recorded too (:func:`export_metadata`): the CSV has
``model, model_test_accuracy, date`` columns before the class columns (the same on every row: CSV has no
other place for it, and comment lines would break CSV readers); the JSON file is an object ``{"model",
"model_test_accuracy", "date", "classes", "rows": [...]}`` whose rows also carry ``top_k``: the k best
``[class, probability]`` pairs (``top_k=0`` leaves it out).
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Iterable

from cifar10.contract import CLASS_NAMES
from cifar10.results import META_COLUMNS, Result, file_columns, result_row

FORMATS = {".csv": "csv", ".json": "json"}


def format_for(path: str | os.PathLike) -> str:
    """``csv`` or ``json`` from the file suffix; ValueError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the output format of '{path}': use a .csv or .json file name")
    return FORMATS[suffix]


def export_metadata(model=None) -> dict:
    """``{"model", "model_test_accuracy", "date", "classes"}`` for a :class:`cifar10.registry.ModelInfo` (or None:
    unknown model, CIFAR-10's classes)."""
    from datetime import datetime, timezone

    return {"model": getattr(model, "name", None), "model_test_accuracy": getattr(model, "test_accuracy", None),
            "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            "classes": list(getattr(model, "labels", CLASS_NAMES))}


class ResultWriter:
    """Streams rows to a CSV or JSON file as they come (constant memory for any number of files)."""

    def __init__(self, stream: IO[str], fmt: str, *, top_k: int = 3, meta: dict | None = None):
        """``meta``: :func:`export_metadata` of the model (its ``classes`` name the probability columns)."""
        if fmt not in ("csv", "json"):
            raise ValueError(f"unknown results format '{fmt}' (csv or json)")
        self.stream, self.fmt, self.top_k, self.count = stream, fmt, top_k, 0
        self.meta = {key: (meta or {}).get(key) for key in META_COLUMNS}
        self.classes = tuple((meta or {}).get("classes") or CLASS_NAMES)
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=file_columns(self.classes), lineterminator="\n")
            self._csv.writeheader()
        else:
            head = json_text({**self.meta, "classes": list(self.classes)})[:-1]  # stays open
            stream.write(head + ', "rows": [')

    def write(self, result: Result) -> None:
        if result.classes != self.classes:
            raise ValueError(f"a result in the classes {result.classes} cannot go into a file of {self.classes}")
        if self.fmt == "csv":
            self._csv.writerow({k: _csv_cell(v) for k, v in {**result_row(result), **self.meta}.items()})
        else:
            row = result_row(result, top_k=self.top_k)
            self.stream.write(("\n  " if self.count == 0 else ",\n  ") + json_text(row))
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]}\n" if self.count else "]}\n")
        self.stream.flush()


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(value) -> str:
    """``json.dumps`` keeping non-ASCII text readable (UTF-8) but writing a lone surrogate (a byte of a file name
    that is not UTF-8) as its ``\\udcXX`` escape: valid JSON that reads back to the same string."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def display_text(text: str) -> str:
    """For terminals: a name's undecodable bytes as ``\\xe9`` (never an encoding error on stdout)."""
    if not _SURROGATE.search(text):
        return text
    return _fs_safe(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _fs_safe(text: str) -> str:
    """Surrogates that stand for no byte (U+D800..U+DC7F, U+DD00..: never from a file name) as ``\\udXXX`` text,
    so that surrogateescape can encode the rest (U+DC80..U+DCFF, a name's raw bytes)."""
    return re.sub("[\ud800-\udc7f\udd00-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)


def temporary_beside(path: str | os.PathLike, *, mode: str = "w", **open_args):
    """A new file with a unique hidden name beside ``path`` (``.NAME.<random>.cifar10-part``, created with
    O_EXCL: it can never be a user's file), opened; returns ``(file, its Path)``. Its permissions follow the
    umask like any new file."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".cifar10-part", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        return os.fdopen(fd, mode, **open_args), Path(name)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"  # fixed notation: spreadsheets and humans read 0.000032 better than 3.2e-05
    return _fs_safe(str(value)) if _SURROGATE.search(str(value)) else str(value)


def write_results(results: Iterable[Result], path: str | os.PathLike, *, fmt: str | None = None,
                  top_k: int = 3, meta: dict | None = None) -> int:
    """Write ``results`` to ``path`` (format from its suffix unless ``fmt``); returns the row count.
    ``meta``: :func:`export_metadata` of the model that made them.

    Written to a unique hidden temporary file beside ``path`` (:func:`temporary_beside`) then renamed, so a
    cancelled or failed run never leaves half a file under the real name, and never touches a user's file
    (such as ``<path>.part``) other than ``path`` itself.
    """
    path = Path(path)
    fmt = fmt or format_for(path)
    stream, partial = temporary_beside(path, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        with stream:
            writer = ResultWriter(stream, fmt, top_k=top_k, meta=meta)
            for result in results:
                writer.write(result)
            writer.close()
            stream.flush()
            os.fsync(stream.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return writer.count


def read_results(path: str | os.PathLike) -> list[dict]:
    """Read a results file back into row dicts (numbers as floats, missing as None). For tests and tools."""
    path = Path(path)
    if format_for(path) == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["rows"] if isinstance(data, dict) else data  # older files: a bare list of rows
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.DictReader(f))
    text = ("path", "label", "error", "model", "date")  # every other column is a number (the classes' too)

    def cell(key: str, value: str):
        if key == "unsure":
            return {"true": True, "false": False}.get(value)
        if key not in text:
            return float(value) if value != "" else None
        return value
    return [{k: cell(k, v) for k, v in row.items()} for row in rows]


def format_table(results: Iterable[Result], *, top_k: int = 3, stream: IO[str]) -> int:
    """Print a readable table, one line per file, as results arrive; returns the row count."""
    count = 0
    header = f"{'class':<11} {'conf':>6}  {'top ' + str(top_k) if top_k > 1 else '':<{_top_width(top_k)}}  path"
    stream.write(header.rstrip() + "\n")
    for result in results:
        if result.error:
            line = f"{'ERROR':<11} {'':>6}  {'':<{_top_width(top_k)}}  {result.path}: {result.error}"
        else:
            top = "  ".join(f"{label} {p:.0%}" for label, p in result.top_k(top_k)) if top_k > 1 else ""
            label = "UNSURE" if result.unsure else result.label
            line = f"{label:<11} {result.confidence:>6.1%}  {top:<{_top_width(top_k)}}  {result.path}"
        stream.write(display_text(line.rstrip()) + "\n")
        count += 1
        if count % 64 == 0:
            stream.flush()
    stream.flush()
    return count


def _top_width(top_k: int) -> int:
    return 0 if top_k <= 1 else 16 * top_k
