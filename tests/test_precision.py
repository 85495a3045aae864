"""--precision auto: bfloat16 only where the hardware computes it natively (training/precision.py)."""

from pathlib import Path

import pytest

from cifar10.errors import UserFacingError
from training.precision import cpu_features, resolve_precision
from training.report import recipe_changes

ZEN4_FLAGS = {"avx2", "avx512f", "avx512_bf16"}
SAPPHIRE_RAPIDS_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
AVX2_ONLY_FLAGS = {"avx", "avx2", "fma"}


@pytest.mark.parametrize("features, expected", [(ZEN4_FLAGS, "mixed_bfloat16"),
                                                (SAPPHIRE_RAPIDS_FLAGS, "mixed_bfloat16"),
                                                (AVX2_ONLY_FLAGS, "float32"), (set(), "float32")])
def test_auto_is_bfloat16_only_on_cpus_that_compute_it(features, expected):
    policy, message = resolve_precision("auto", features=features, gpus=[])
    assert policy == expected
    assert message.startswith(f"precision auto -> {expected}")


@pytest.mark.parametrize("capability, expected", [((8, 0), "mixed_bfloat16"), ((9, 0), "mixed_bfloat16"),
                                                  ((7, 0), "float32")])
def test_auto_on_a_gpu_follows_its_compute_capability_not_the_cpu(capability, expected):
    assert resolve_precision("auto", features=ZEN4_FLAGS, gpus=[capability])[0] == expected


def test_explicit_choices_are_kept_and_an_emulated_bfloat16_is_warned_about():
    assert resolve_precision("float32", features=ZEN4_FLAGS, gpus=[]) == ("float32", None)
    assert resolve_precision("mixed_bfloat16", features=ZEN4_FLAGS, gpus=[]) == ("mixed_bfloat16", None)
    policy, message = resolve_precision("mixed_bfloat16", features=AVX2_ONLY_FLAGS, gpus=[])
    assert policy == "mixed_bfloat16" and message.startswith("warning:") and "--precision auto" in message
    with pytest.raises(UserFacingError, match="choose from auto, float32, mixed_bfloat16"):
        resolve_precision("float16")


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads Linux's /proc/cpuinfo")
def test_auto_follows_this_cpus_own_bfloat16_flags():
    """Both ways: no bfloat16 claimed that the CPU lacks, none missed that it has (archspec alone missed
    avx512_bf16 on a VM with a masked CPU model, and auto picked float32)."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    bf16 = {"avx512_bf16", "amx_bf16"}
    assert cpu_features() & bf16 == flags & bf16
    expected = "mixed_bfloat16" if flags & bf16 else "float32"
    assert resolve_precision("auto", gpus=[])[0] == expected


def test_the_leaderboard_does_not_call_a_resolved_auto_a_change():
    card = {"training": {"settings": {"model": "fast_cnn", "epochs": 10, "precision": "float32"}}}
    assert recipe_changes(card, "fast_cnn") == []
    card["training"]["settings"]["epochs"] = 8
    assert recipe_changes(card, "fast_cnn") == ["epochs 8 (10)"]


def test_the_command_line_takes_auto():
    from cifar10_cli.main import build_parser

    assert build_parser().parse_args(["train", "--model", "fast_cnn", "--precision", "auto"]).precision == "auto"
    assert build_parser().parse_args(["train", "--model", "fast_cnn"]).precision is None  # the model's default


def test_cards_name_the_cpu_features_that_set_training_speed():
    from cifar10.machine import SPEED_FLAGS, machine
    from training.report import _machine

    found = machine()
    if Path("/proc/cpuinfo").is_file():
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
        assert found["cpu_flags"] == [f for f in SPEED_FLAGS if f in line.split(":", 1)[1].split()]
    epyc = {"cpu": "AMD EPYC", "cores": 2}
    assert _machine({"machine": {**epyc, "cpu_flags": ["avx2", "avx512f", "avx512_bf16"]}}) == "AMD EPYC, 2 cores, AVX512-BF16"
    assert _machine({"machine": {**epyc, "cpu_flags": ["avx2"]}}) == "AMD EPYC, 2 cores, AVX2"
    assert _machine({"machine": epyc}) == "AMD EPYC, 2 cores"  # an older card: no guess
