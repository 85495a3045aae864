"""Parse JSON that came from a file anyone could have written (model cards, ONNX metadata, journals) without
letting it crash or exhaust the process: a size limit, a nesting-depth limit checked *before* the recursive
parser runs, and a digit limit on integers (Python refuses ints over 4,300 digits with a ValueError that is
not a JSONDecodeError). Every problem is a :class:`JsonLimitError` (a ValueError) with a one-line reason.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

MAX_BYTES = 1 << 20        # 1 MiB: a model card is a few KB
MAX_DEPTH = 32             # shipped cards nest 4 levels
MAX_INT_DIGITS = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JsonLimitError(ValueError):
    """The JSON is unreadable, too big, too deep or has an absurd number in it; str() says which."""


def _limited_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonLimitError(f"holds an integer of {len(text)} digits (more than {MAX_INT_DIGITS})")
    return int(text)


def nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, without recursion (so any text is safe to measure)."""
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", _STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(text: str, *, max_depth: int = MAX_DEPTH, max_chars: int = MAX_BYTES):
    """``json.loads`` within the limits; :class:`JsonLimitError` for anything wrong (never RecursionError,
    MemoryError or the int-digits ValueError)."""
    if len(text) > max_chars:
        raise JsonLimitError(f"is {len(text):,} characters long (more than {max_chars:,})")
    try:
        depth = nesting_depth(text)
    except (RecursionError, MemoryError):  # the regex engine on pathological text
        raise JsonLimitError("cannot be scanned") from None
    if depth > max_depth:
        raise JsonLimitError(f"is nested {depth} levels deep (more than {max_depth})")
    try:
        return json.loads(text, parse_int=_limited_int)
    except JsonLimitError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (ValueError, RecursionError, MemoryError, TypeError) as exc:
        raise JsonLimitError(f"is not usable JSON ({type(exc).__name__}: {str(exc)[:120]})") from None


def load_file(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """Read and parse a JSON file within the limits. A file that is not a regular file (a FIFO, a device) is
    refused without being opened for reading data; OSError for a file that cannot be read at all."""
    path = Path(path)
    st = os.stat(path)
    import stat as stat_module

    if not stat_module.S_ISREG(st.st_mode):
        raise JsonLimitError("is not a regular file")
    if st.st_size > max_bytes:
        raise JsonLimitError(f"is {st.st_size:,} bytes (more than {max_bytes:,})")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise JsonLimitError(f"is more than {max_bytes:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return loads(text, max_depth=max_depth, max_chars=max_bytes)
