"""Which Keras dtype policy a run trains in.

``mixed_bfloat16`` pays only where the hardware computes bfloat16 natively: on the 2-core AMD EPYC with
AVX512-BF16 it made fast_cnn's step 33 % faster than float32 (docs/fast_cnn.md); on a CPU without it
(an AVX2-only AMD EPYC, 2026-12-06) TensorFlow emulates it and the same step ran 12.5x slower than
float32 (9.2 vs 115.3 images/s, benchmarks/results/precision_avx2.json). So the fast_cnn recipes register ``precision="auto"``:
:func:`resolve_precision` picks mixed_bfloat16 where it is native and float32 elsewhere, and says why.
The run record and the card keep the resolved policy.
"""

from __future__ import annotations

from cifar10.machine import BF16_FLAGS as NATIVE_BF16_CPU_FEATURES  # archspec uses the same names
from cifar10.machine import cpu_flags

PRECISIONS = ("auto", "float32", "mixed_bfloat16")
MIN_BF16_GPU_CAPABILITY = (8, 0)  # NVIDIA Ampere and later


def cpu_features() -> set[str]:
    """The host CPU's features: on Linux the flags the kernel reports (/proc/cpuinfo, the same source as the
    cards' ``cpu_flags``); elsewhere those archspec knows (the features of the newest microarchitecture the CPU
    fully supports); empty if neither can tell. Not archspec first: on a VM whose CPU model is masked ("AMD
    EPYC", 2026-12-07) archspec matches only the generic x86_64_v4, whose features lack avx512_bf16, and
    ``--precision auto`` trained fast_cnn in float32 on a CPU with native bfloat16."""
    flags = cpu_flags()
    if flags is not None:
        return flags
    try:
        import archspec.cpu

        return set(archspec.cpu.host().features)
    except Exception:  # noqa: BLE001  an unknown CPU or OS: claim nothing
        return set()


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the GPUs TensorFlow sees (none with tensorflow-cpu)."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            found.append(tuple(capability))
    return found


def native_bfloat16(features: set[str] | None = None, gpus: list[tuple[int, int]] | None = None) -> str | None:
    """Why bfloat16 is native here ("CPU has avx512_bf16", "GPU compute capability 8.0"), or None."""
    gpus = gpu_capabilities() if gpus is None else gpus
    if gpus:  # TensorFlow trains on the first GPU
        return f"GPU compute capability {gpus[0][0]}.{gpus[0][1]}" if gpus[0] >= MIN_BF16_GPU_CAPABILITY else None
    features = cpu_features() if features is None else features
    native = [flag for flag in NATIVE_BF16_CPU_FEATURES if flag in features]
    return f"the CPU has {' and '.join(native)}" if native else None


def resolve_precision(requested: str, *, features: set[str] | None = None,
                      gpus: list[tuple[int, int]] | None = None) -> tuple[str, str | None]:
    """``(policy, message)``: the Keras dtype policy to train in, and a line for the log (None when there is
    nothing to say). ``auto`` -> mixed_bfloat16 where bfloat16 is native, else float32; an explicit
    mixed_bfloat16 where it is not native is kept, with a warning."""
    if requested not in PRECISIONS:
        from cifar10.errors import UserFacingError

        raise UserFacingError(f"unknown precision {requested!r}; choose from {', '.join(PRECISIONS)}")
    if requested == "float32":
        return "float32", None
    native = native_bfloat16(features, gpus)
    if requested == "auto":
        if native:
            return "mixed_bfloat16", f"precision auto -> mixed_bfloat16 ({native})"
        return "float32", ("precision auto -> float32 (no native bfloat16 here: no AVX512-BF16 or AMX CPU, no "
                           "Ampere-or-later GPU; emulated bfloat16 would be many times slower)")
    if native:
        return "mixed_bfloat16", None
    return "mixed_bfloat16", ("warning: --precision mixed_bfloat16 without native bfloat16 (no AVX512-BF16 or AMX "
                              "CPU, no Ampere-or-later GPU): TensorFlow emulates it, many times slower than "
                              "float32; --precision auto or float32 avoids that")
