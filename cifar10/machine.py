"""The machine a figure was measured on, for model cards and benchmark results (standard library only: the
ONNX-only benchmarks use it too).

The CPU's name is not enough: two "AMD EPYC" machines of this project differed 6x in fast_cnn's training
step, one with AVX512-BF16 and one with AVX2 only (docs/fast_cnn.md), so the features that set the speed
of training are recorded too.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bfloat16 arithmetic (Linux /proc/cpuinfo names)
SPEED_FLAGS = ("avx2", "avx512f", *BF16_FLAGS)


def cpu_flags() -> set[str] | None:
    """Every feature flag of the first CPU as Linux reports it (``/proc/cpuinfo``: what CPUID, and a hypervisor's
    mask, say this CPU executes), or None where there is no such file (macOS, Windows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def machine() -> dict:
    """``{"cpu", "cores", "os", "python"}`` and, on Linux, ``"cpu_flags"``: which of SPEED_FLAGS the CPU has."""
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():  # the first CPU's lines
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    present = cpu_flags()
    flags = None if present is None else [flag for flag in SPEED_FLAGS if flag in present]
    found = {"cpu": cpu or platform.processor() or platform.machine(), "cores": os.cpu_count(),
             "os": platform.platform(), "python": platform.python_version()}
    return found if flags is None else {**found, "cpu_flags": flags}


def describe(found: dict) -> str:
    """One line for tables: "AMD EPYC, 2 cores, AVX512-BF16" (no feature named for records without cpu_flags)."""
    text = f"{found.get('cpu', '?')}, {found.get('cores', '?')} cores"
    flags = found.get("cpu_flags")  # cards from before 2026-12-06 do not say
    if flags is not None:
        text += ", " + ("AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags
                        else "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2")
    return text
