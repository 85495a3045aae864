"""`cifar10 classify --output OUT --resume` on the local engine: a real run killed with SIGKILL half-way and
resumed, changed files done again, the journal refusing a different model; the progress line; and the
'ray' extra staying optional (nothing in the core imports it)."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10.progress import format_duration, format_progress
from cifar10.resume import shards_dir
from cifar10.results_io import read_results
from cifar10_cli.main import main
from onnx_fixtures import MAPPING_B, write_model

ROOT = Path(__file__).resolve().parents[1]


def noisy_folder(root: Path, count: int, *, broken_every: int = 25) -> list[str]:
    """``count`` small PNGs in sub-folders of 100 (every ``broken_every``-th a broken file); sorted paths."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        folder = root / f"{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i:05d}.png"
        if broken_every and i % broken_every == 7:
            path.write_bytes(b"not a png")
        else:
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def cli(*args: str, env=None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cifar10_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def start_and_kill(args: list[str], out: Path, *, enough: callable, env=None, timeout: float = 120) -> None:
    """Start `cifar10 classify` as a real process; SIGKILL it once ``enough()`` says it is under way."""
    process = subprocess.Popen([sys.executable, "-m", "cifar10_cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while not enough():
            assert process.poll() is None, "finished before it could be killed:\n" + process.stdout.read().decode()
            assert time.monotonic() < deadline, "no progress to kill in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed run must not leave OUT (only its journal)"


def journal_rows(out: Path) -> int:
    return sum(p.read_text(errors="replace").count("\n") for p in shards_dir(out).glob("part-*.jsonl"))


def assert_rows_once_and_equal(rows: list[dict], reference: list[dict]) -> None:
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)), "a file appears twice"
    assert sorted(paths) == sorted(r["path"] for r in reference)
    by_path = {r["path"]: r for r in reference}
    for row in rows:
        expected = by_path[row["path"]]
        assert row["label"] == expected["label"] and row["error"] == expected["error"]
        assert row.get("unsure") == expected.get("unsure")
        for key, value in row.items():
            if isinstance(value, float):
                assert value == pytest.approx(expected[key], abs=1e-6)


@pytest.fixture()
def slow_env(tmp_path, monkeypatch):
    """A model slow enough (real convolutions) that a run of a few hundred files can be killed half-way."""
    models = tmp_path / "models"
    write_model(models, "slow", test_accuracy=0.5, mapping=MAPPING_B, slow_layers=4, slow_channels=64)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return {"models": models, "env": env, "tmp": tmp_path}


def test_progress_line_shows_rate_and_eta():
    assert format_progress(500, 2000, 2.0) == "500/2,000 files  250 files/s  ETA 0:06"
    # files skipped by --resume count as done but not in the rate
    assert format_progress(1500, 2000, 2.0, skipped=1000) == "1,500/2,000 files  250 files/s  ETA 0:02"
    assert format_progress(2000, 2000, 4.0).endswith("done")
    assert format_progress(0, 10, 0.0).endswith("ETA ?")
    assert format_duration(3725) == "1:02:05" and format_duration(65) == "1:05"


def test_killed_local_run_resumes_with_every_file_once(slow_env):
    tmp = slow_env["tmp"]
    images = tmp / "images"
    paths = noisy_folder(images, 600)
    reference = tmp / "reference.csv"
    assert main(["classify", str(images), "-o", str(reference), "--model", "slow", "--batch-size", "16"]) == 1  # broken
    reference_rows = read_results(reference)
    assert len(reference_rows) == len(paths) and sum(bool(r["error"]) for r in reference_rows) == 24

    out = tmp / "out.csv"
    args = ["classify", str(images), "-o", str(out), "--model", "slow", "--batch-size", "16"]
    start_and_kill(args, out, enough=lambda: journal_rows(out) >= 96, env=slow_env["env"])
    done_before = journal_rows(out)
    assert 96 <= done_before < len(paths), "killed half-way"

    again = cli(*args, env=slow_env["env"])  # without --resume: refuses to throw the killed run away
    assert again.returncode == 2 and "unfinished run" in again.stderr and "--resume" in again.stderr

    resumed = cli(*args, "--resume", env=slow_env["env"])
    assert resumed.returncode == 1, resumed.stderr  # every 25th file is broken: exit 1, their rows say why
    assert "resuming" in resumed.stderr and "skipped" in resumed.stderr
    rows = read_results(out)
    assert_rows_once_and_equal(rows, reference_rows)
    assert [r["path"] for r in rows] == [r["path"] for r in reference_rows]  # the local engine's order
    assert not shards_dir(out).exists(), "a finished run removes its journal"


def unfinished_run(out: Path, model_name: str, images: Path) -> None:
    """A real journal of every file in ``images`` left unfinished (as by a run killed before writing OUT): the
    journal's own start/append, the real local engine, no OUT."""
    from cifar10.inference import Classifier, iter_image_files
    from cifar10.registry import discover_models, find_model
    from cifar10.resume import Journal, classify_local

    model = find_model(model_name, discover_models()[0])
    journal = Journal(out)
    journal.start(model, engine="local", resume=False)
    todo, _ = journal.pending(list(iter_image_files([images])))
    classify_local(Classifier(model, provider="cpu"), todo, journal, batch_size=16)
    journal.abandon()  # closes it and releases the lock; rows done are kept
    assert shards_dir(out).is_dir() and not out.exists()


def test_resume_skips_unchanged_files_and_redoes_changed_ones(slow_env, capsys):
    tmp = slow_env["tmp"]
    images = tmp / "images"
    noisy_folder(images, 40, broken_every=0)
    reference = tmp / "first.json"
    assert main(["classify", str(images), "-o", str(reference), "--model", "slow"]) == 0
    assert not shards_dir(reference).exists()  # finished: no journal left
    first = {r["path"]: r for r in json.loads(reference.read_text())["rows"]}
    out = tmp / "out.json"
    unfinished_run(out, "slow", images)
    changed = images / "000" / "img_00003.png"
    Image.new("RGB", (8, 8), (250, 10, 10)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))  # a newer mtime whatever the clock resolution
    Image.new("RGB", (8, 8), (10, 10, 250)).save(images / "000" / "new.png")
    capsys.readouterr()
    assert main(["classify", str(images), "-o", str(out), "--model", "slow", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "2 files classified" in err and "40 skipped" not in err and "39 skipped" in err
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 41 and len({r["path"] for r in rows}) == 41
    new_rows = {r["path"]: r for r in rows}
    assert new_rows[str(changed)]["label"] == "horse"  # red -> horse in mapping B: the new content's row
    assert new_rows[str(changed)]["horse"] > first[str(changed)]["horse"] + 0.3
    assert new_rows[str(images / "000" / "new.png")]["label"] == "truck"  # blue -> truck in mapping B
    assert not shards_dir(out).exists()
    # A finished OUT has no journal any more: --resume says so (and keeps OUT).
    before = out.read_bytes()
    assert main(["classify", str(images), "-o", str(out), "--model", "slow", "--resume"]) == 2
    assert "no journal" in capsys.readouterr().err and out.read_bytes() == before


def test_resume_refuses_another_model(slow_env, capsys):
    tmp = slow_env["tmp"]
    write_model(slow_env["models"], "other", test_accuracy=0.4)
    images = tmp / "images"
    noisy_folder(images, 10, broken_every=0)
    out = tmp / "out.csv"
    unfinished_run(out, "slow", images)
    capsys.readouterr()
    assert main(["classify", str(images), "-o", str(out), "--model", "other", "--resume"]) == 2
    assert "was started with model 'slow'" in capsys.readouterr().err
    assert main(["classify", str(images), "-o", str(out), "--model", "slow", "--resume"]) == 0
    # a finished run (a results file cifar10 wrote) is simply replaced by a new one without --resume
    assert main(["classify", str(images), "-o", str(out), "--model", "other"]) == 0
    assert {r["model"] for r in read_results(out)} == {"other"}


def test_resume_and_ray_need_an_output_file(slow_env, capsys):
    images = slow_env["tmp"] / "images"
    noisy_folder(images, 2, broken_every=0)
    assert main(["classify", str(images), "--resume"]) == 2
    assert "add --output" in capsys.readouterr().err
    assert main(["classify", str(images), "--address", "127.0.0.1:1"]) == 2
    assert "--address is for --engine ray" in capsys.readouterr().err


def test_engine_ray_without_ray_names_the_extra(tmp_path):
    """Ray made unimportable in a real process: one line saying which extra to install."""
    code = ("import sys; sys.modules['ray'] = None; from cifar10_cli.main import main; "
            f"sys.exit(main(['classify', {str(tmp_path)!r}, '--engine', 'ray', '-o', {str(tmp_path / 'o.csv')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2
    assert done.stderr.strip() == ("cifar10: error: --engine ray needs the 'ray' extra (ray is not installed): "
                                   "pip install -e '.[ray]'")


def test_core_and_cli_never_import_ray_at_module_level():
    """The app-only install (no Ray, no pyarrow) must keep working: Ray is imported inside functions only."""
    for package in ("cifar10", "cifar10_cli"):
        for path in sorted((ROOT / package).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            top = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
            top |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
            assert not {m for m in top if m.split(".")[0] in ("ray", "pyarrow")}, f"{path} imports Ray at load time"


def test_resume_never_drops_an_output_without_journal(slow_env, capsys):
    """OUT written without a journal (an older version, or the journal deleted): --resume refuses to replace it."""
    images = slow_env["tmp"] / "images"
    noisy_folder(images, 3, broken_every=0)
    out = slow_env["tmp"] / "old.csv"
    out.write_text("path,label,confidence,error\nsomething,cat,0.9,\n")  # an older version's results file
    assert main(["classify", str(images), "-o", str(out), "--model", "slow", "--resume"]) == 2
    assert "has no journal" in capsys.readouterr().err
    assert out.read_text() == "path,label,confidence,error\nsomething,cat,0.9,\n"
    other = slow_env["tmp"] / "notes.csv"  # not a results file at all: left alone, --resume or not
    other.write_text("path,label\nsomething,cat\n")
    for extra in ([], ["--resume"]):
        assert main(["classify", str(images), "-o", str(other), "--model", "slow", *extra]) == 2
        assert "not a results file written by cifar10" in capsys.readouterr().err
        assert other.read_text() == "path,label\nsomething,cat\n"
