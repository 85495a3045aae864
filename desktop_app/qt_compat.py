"""Work-arounds for Qt binding bugs, kept in one place.

PySide6 6.12.0 on Python < 3.12: every Python-side ``SignalInstance.emit()`` returns ``True`` without
taking a reference to it, so each emit lowers ``True``'s reference count by one. After a few thousand
emits (an app that classifies folders emits per batch) CPython aborts with "Fatal Python error:
bool_dealloc: deallocating True or False". From Python 3.12 on, ``True`` is immortal and nothing
happens. :func:`emit` detects the bug once, at import, and gives the missing reference back.
All Python-side emits in the desktop app go through it.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal


def _incref(obj) -> None:
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _emit_drops_true() -> bool:
    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    rounds = 16
    before = sys.getrefcount(True)
    for _ in range(rounds):
        probe.ping.emit()
    dropped = before - sys.getrefcount(True)
    for _ in range(max(0, dropped)):  # undo the probe's own damage
        _incref(True)
    return dropped >= rounds


EMIT_DROPS_TRUE = _emit_drops_true()


def emit(signal, *args):
    """``signal.emit(*args)``, without PySide6 6.12.0's reference-count bug (see module docstring)."""
    result = signal.emit(*args)
    if EMIT_DROPS_TRUE and result is True:
        _incref(True)
    return result
