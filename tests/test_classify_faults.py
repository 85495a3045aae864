"""`cifar10 classify` and model loading against hostile files and faults, through the real command
(`cifar10_cli.main.main` in-process, or a subprocess where a regression could hang): real files, real
onnxruntime sessions on tiny real ONNX models (tests/onnx_fixtures.py), real mounts for read-only and full disks.

Each fault must end in one line (`cifar10: error: classify: ...`, exit 2) or an error row (exit 1), never a
traceback, never a hang, and never with a user's file replaced or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from cifar10.registry import discover_models
from cifar10.resume import shards_dir
from cifar10.results_io import read_results
from cifar10_cli.main import main
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED, contract_model, expected_label, write_model

ROOT = Path(__file__).resolve().parents[1]
WHITE = (250, 250, 250)


# --- fixtures and helpers ----------------------------------------------------------------------------------

@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A models folder with the good colour_a model, an empty user folder, three solid-colour images."""
    models = tmp_path / "models"
    write_model(models, "colour_a", test_accuracy=0.6)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    images = tmp_path / "images"
    for name, rgb in (("red.png", RED), ("green.png", GREEN), ("blue.png", BLUE)):
        solid(images / name, rgb)
    subprocess_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return {"models": models, "images": images, "tmp": tmp_path, "env": subprocess_env}


def cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cifar10_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_line_error(err: str, *words: str) -> str:
    """The single `cifar10: error: classify: ...` line of ``err`` (no traceback), containing ``words``."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("cifar10: error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("cifar10: error: classify: "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def mount(target: Path, *options: str) -> None:
    """A real tmpfs at ``target`` (root only: skips the test where mounting is not allowed)."""
    target.mkdir(parents=True, exist_ok=True)
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def fill(filler: Path, leave: int = 0) -> None:
    """Fill the file system of ``filler`` up, then give ``leave`` bytes back."""
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))


@pytest.fixture()
def mounts():
    mounted: list[Path] = []

    def make(target: Path, *options: str) -> Path:
        mount(target, *options)
        mounted.append(target)
        return target
    yield make
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


# --- models that break the contract in ways the declared signature does not show -----------------------------

def write_card(onnx_path: Path, **extra) -> None:
    onnx_path.with_suffix(".json").write_text(json.dumps({"name": onnx_path.stem, "test_accuracy": 0.9,
                                                          "summary": "a hostile test model", **extra}))


def write_wrong_shape_model(directory: Path, name: str = "wrong_shape") -> Path:
    """Declares probabilities [N, 10] (passes validation) but really returns [N, 7]: the class count comes out
    of a Tile whose repeats are computed from the image, so shape inference cannot see it."""
    weights = np.zeros((3, 7), np.float32)
    weights[0, 0] = weights[1, 1] = weights[2, 2] = 12 / 255
    inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.zeros(1, np.float32), "zero1")]
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean_rgb"], axes=[1, 2], keepdims=0),
             helper.make_node("MatMul", ["mean_rgb", "W"], ["xw"]),
             helper.make_node("Softmax", ["xw"], ["p7"], axis=1),
             helper.make_node("ReduceMin", ["image"], ["smallest"], keepdims=0),
             helper.make_node("Mul", ["smallest", "zero1"], ["zero"]),
             helper.make_node("Exp", ["zero"], ["one"]),
             helper.make_node("Concat", ["one", "one"], ["repeats_f"], axis=0),
             helper.make_node("Cast", ["repeats_f"], ["repeats"], to=onnx.TensorProto.INT64),
             helper.make_node("Tile", ["p7", "repeats"], ["probabilities"])]
    path = directory / f"{name}.onnx"
    onnx.save(contract_model(name, nodes, inits), path)
    write_card(path)
    return path


def write_nan_model(directory: Path, name: str = "nan_model") -> Path:
    """probabilities = softmax(sqrt(mean_rgb - 100) @ W): NaN for any image with a channel mean below 100 (a
    solid red, green or blue one), finite for a light grey one."""
    weights = np.eye(3, 10, dtype=np.float32)
    inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array([100.0], np.float32), "hundred")]
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean_rgb"], axes=[1, 2], keepdims=0),
             helper.make_node("Sub", ["mean_rgb", "hundred"], ["shifted"]),
             helper.make_node("Sqrt", ["shifted"], ["root"]),
             helper.make_node("MatMul", ["root", "W"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    path = directory / f"{name}.onnx"
    onnx.save(contract_model(name, nodes, inits), path)
    write_card(path)
    return path


# --- hostile cards and metadata: skipped with a reason, every other model still usable ---------------------

DEEP = "[" * 200_000 + "]" * 200_000
HUGE_INT = "9" * 100_000


def hostile_cards(models: Path) -> dict[str, str]:
    """Models whose card or ONNX metadata is hostile; returns {model name: words its skip reason must hold}."""
    write_model(models, "deep_card")
    (models / "deep_card.json").write_text('{"name": "deep_card", "test_accuracy": 0.99, "summary": "s", "x": '
                                           + DEEP + "}")
    write_model(models, "huge_int_card")
    (models / "huge_int_card.json").write_text('{"name": "huge_int_card", "test_accuracy": 0.99, "summary": "s", '
                                               '"parameters": ' + HUGE_INT + "}")
    write_model(models, "oversized_card", card={"summary": "x" * (3 << 20)})
    write_model(models, "deep_metadata", metadata={"class_names": DEEP})
    write_model(models, "huge_int_metadata", class_names=["a", "b"],
                metadata={"display_names": "[" + HUGE_INT + ", 1]"})
    (models / "classes.json").write_text(DEEP)  # a stray hostile metadata file beside the models: ignored
    return {"deep_card": "nested", "huge_int_card": "digits", "oversized_card": "bytes",
            "deep_metadata": "class_names", "huge_int_metadata": "display_names"}


def test_hostile_cards_and_metadata_are_skipped_with_a_reason(env, capsys):
    reasons = hostile_cards(env["models"])
    models, errors = discover_models([env["models"]])
    assert [m.name for m in models] == ["colour_a"]
    assert len(errors) == len(reasons)
    for name, words in reasons.items():
        (error,) = [e for e in errors if f"{name}." in e]
        assert words in error and len(error) < 400, error
    assert all("is skipped" in e or "metadata" in e for e in errors)

    # Every command: the good model works, named or by default, and the skipped ones are named once each.
    assert main(["classify", str(env["images"]), "--model", "colour_a"]) == 0
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert len(table) == 4 and sum(line.startswith("airplane") for line in table) == 1
    assert "Traceback" not in captured.err
    assert captured.err.count("warning: skipped a model:") == len(reasons)
    out = env["tmp"] / "r.csv"
    assert main(["classify", str(env["images"]), "-o", str(out)]) == 0
    assert {r["model"] for r in read_results(out)} == {"colour_a"}
    capsys.readouterr()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "colour_a" in listing and listing.count("skipped:") == len(reasons)
    assert main(["classify", "--list-models"]) == 0
    assert capsys.readouterr().out.startswith("* colour_a")
    # A hostile model named explicitly: one line, not a crash.
    assert main(["classify", str(env["images"]), "--model", str(env["models"] / "deep_card.onnx")]) == 2
    one_line_error(capsys.readouterr().err, "nested")


def test_the_desktop_apps_model_discovery_survives_hostile_cards(env):
    """The app's picker lists the good model (the same discovery, through its own code path)."""
    hostile_cards(env["models"])
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop_app.model_picker import ModelPicker
    from desktop_app.session import Session

    app = QApplication.instance() or QApplication([])  # noqa: F841  (offscreen Qt: conftest)
    settings = QSettings(str(env["tmp"] / "settings.ini"), QSettings.Format.IniFormat)
    session = Session()  # the app's state: its model discovery is the picker's
    picker = ModelPicker(session, settings)
    session.reload_models()
    assert [m.name for m in session.models] == ["colour_a"] and session.model.name == "colour_a"
    assert picker.count() == 1 and "colour_a" in picker.itemText(0)
    assert len(session.model_errors) == 5


# --- a model whose real outputs differ from its declared ones ---------------------------------------------

def test_wrong_real_output_shape_is_refused_at_load(env, capsys):
    wrong = write_wrong_shape_model(env["models"])
    models, errors = discover_models([env["models"]])
    assert {m.name for m in models} == {"colour_a", "wrong_shape"}  # the declared signature looks fine
    assert main(["classify", str(env["images"]), "--model", "wrong_shape"]) == 2
    line = one_line_error(capsys.readouterr().err, str(wrong), "[2, 7]", "refused")
    assert "[2, 10]" in line
    out = env["tmp"] / "r.csv"
    assert main(["classify", str(env["images"]), "--model", "wrong_shape", "-o", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "refused")
    assert not out.exists() and not shards_dir(out).exists()
    assert main(["classify", str(env["images"]), "--model", "colour_a"]) == 0


def test_nan_outputs_are_error_rows(env, capsys):
    write_nan_model(env["models"])
    solid(env["images"] / "white.png", WHITE)
    out = env["tmp"] / "r.json"
    assert main(["classify", str(env["images"]), "--model", "nan_model", "-o", str(out)]) == 1
    rows = {os.path.basename(r["path"]): r for r in json.loads(out.read_text())["rows"]}
    for name in ("red.png", "green.png", "blue.png"):
        assert rows[name]["error"] == "the model returned NaN/inf"
        assert rows[name]["label"] == "" and rows[name]["confidence"] is None and rows[name]["airplane"] is None
    assert rows["white.png"]["error"] == "" and rows["white.png"]["label"]
    assert "3 could not be classified" in capsys.readouterr().err
    assert main(["classify", str(env["images"]), "--model", "nan_model"]) == 1  # the table too
    table = capsys.readouterr().out
    assert table.count("ERROR") == 3 and table.count("the model returned NaN/inf") == 3


def test_nan_outputs_on_the_cifar10_test_batch_are_listed_not_counted(env, capsys):
    """`cifar10 evaluate` on the test batch: images the model returns NaN for are listed and left out of the
    figures (exit 1), as unreadable files are on a folder."""
    from cifar_fixtures import write_dataset

    write_nan_model(env["models"])
    data = write_dataset(env["tmp"] / "cifar", per_batch=40)
    assert main(["evaluate", "--model", "nan_model", "--data-dir", str(data)]) == 1
    out = capsys.readouterr().out
    listed = re.search(r"(\d+) could not be read", out)
    measured = re.search(r"accuracy [0-9.]+ on (\d+) test images", out)
    assert listed and measured and int(listed.group(1)) + int(measured.group(1)) == 40
    assert "the model returned NaN/inf" in out


# --- non-UTF-8 file names -----------------------------------------------------------------------------------

def test_non_utf8_names_in_csv_json_table_and_resume(env, capsys):
    images = env["images"]
    raw = os.path.join(os.fsencode(images), b"caf\xe9.png")
    os.rename(images / "red.png", raw)
    name = os.fsdecode(raw)  # 'caf\udce9.png': Python's lossless spelling of those bytes
    csv_out, json_out = env["tmp"] / "r.csv", env["tmp"] / "r.json"
    assert main(["classify", str(images), "--model", "colour_a", "-o", str(csv_out)]) == 0
    assert main(["classify", str(images), "--model", "colour_a", "-o", str(json_out)]) == 0
    # CSV: the cell holds the name's own bytes; read back to the same string; every other byte is UTF-8.
    assert raw in csv_out.read_bytes()
    rows = {r["path"]: r for r in read_results(csv_out)}
    assert rows[name]["label"] == expected_label(RED) and rows[name]["error"] == ""
    # JSON: valid, ASCII escapes for the bytes, the same string back, os.fsencode gives the real name.
    text = json_out.read_text(encoding="utf-8")
    assert "caf\\udce9.png" in text
    (row,) = [r for r in json.loads(text)["rows"] if r["path"] == name]
    assert os.fsencode(row["path"]) == raw and row["label"] == expected_label(RED)
    # The table shows it readably.
    capsys.readouterr()
    assert main(["classify", name, "--model", "colour_a"]) == 0
    assert "caf\\xe9.png" in capsys.readouterr().out

    # --resume: an unfinished journal holding the name, continued in a real process.
    from cifar10.inference import Classifier
    from cifar10.registry import find_model
    from cifar10.resume import Journal, classify_local

    model = find_model("colour_a", discover_models()[0])
    out = env["tmp"] / "resumed.csv"
    journal = Journal(out)
    journal.start(model, engine="local", resume=False)
    todo, _ = journal.pending([name])
    classify_local(Classifier(model, provider="cpu"), todo, journal, batch_size=4)
    journal.abandon()
    done = cli("classify", str(images), "--model", "colour_a", "-o", str(out), "--resume", env=env["env"])
    assert done.returncode == 0, done.stderr
    assert "1 file done earlier, 1 of the 3 files given skipped, 2 to do" in done.stderr  # the name matched
    rows = read_results(out)
    assert sorted(r["path"] for r in rows) == sorted([name, str(images / "green.png"), str(images / "blue.png")])
    assert not shards_dir(out).exists()


def test_non_utf8_names_survive_a_parquet_shard(tmp_path):
    """The Ray engine's journal shards (Parquet, strings must be UTF-8) keep such a name too: real pyarrow files."""
    pq = pytest.importorskip("pyarrow.parquet")
    from cifar10.resume import records_to_table, table_to_records

    name = os.fsdecode(b"/photos/caf\xe9.png")
    records = [{"path": name, "key": name, "size": 3, "mtime_ns": 4, "label": "cat", "confidence": 0.9, "error": "",
                "unsure": False, "ood_score": None, "probabilities": [0.1] * 10},
               {"path": "/photos/plain.png", "key": "/photos/plain.png", "size": 1, "mtime_ns": 2, "label": "",
                "confidence": None, "error": "not an image", "unsure": None, "ood_score": None, "probabilities": None}]
    pq.write_table(records_to_table(records), tmp_path / "shard.parquet")
    back = list(table_to_records(pq.read_table(tmp_path / "shard.parquet")))
    assert [r["path"] for r in back] == [name, "/photos/plain.png"] and back[0]["key"] == name
    assert back[1]["error"] == "not an image" and back[0]["label"] == "cat"


# --- FIFOs, devices, empty input ----------------------------------------------------------------------------

def test_a_fifo_named_on_the_command_line_is_refused_without_opening_it(env):
    fifo = env["tmp"] / "pipe.png"
    os.mkfifo(fifo)
    started = time.monotonic()
    done = cli("classify", str(fifo), str(env["images"] / "red.png"), "--model", "colour_a", env=env["env"],
               timeout=60)  # a regression hangs on open(): the timeout fails the test instead of the suite
    assert done.returncode == 1, done.stderr
    assert "named pipe (FIFO)" in done.stdout and "Traceback" not in done.stderr
    alone = cli("classify", str(fifo), "--model", "colour_a", "-o", str(env["tmp"] / "f.csv"), env=env["env"],
                timeout=60)
    assert alone.returncode == 2
    one_line_error(alone.stderr, "no images found")
    # In a folder walk a FIFO is skipped (no row), the images are classified.
    os.mkfifo(env["images"] / "inside.png")
    walked = cli("classify", str(env["images"]), "--model", "colour_a", env=env["env"], timeout=60)
    assert walked.returncode == 0 and "inside.png" not in walked.stdout and walked.stdout.count(".png") == 3
    assert time.monotonic() - started < 60
    # A character device named explicitly: refused too (never read).
    dev = cli("classify", "/dev/zero", str(env["images"] / "red.png"), "--model", "colour_a", env=env["env"],
              timeout=60)
    assert dev.returncode == 1 and "a device" in dev.stdout


def test_nothing_to_classify_says_no_images_found(env, capsys):
    empty = env["tmp"] / "empty"
    empty.mkdir()
    readme = env["tmp"] / "README.md"
    readme.write_text("# not an image\n")
    for target in (empty, readme):
        assert main(["classify", str(target)]) == 2
        one_line_error(capsys.readouterr().err, "no images found in", str(target))
    assert main(["classify", str(env["images"] / "red.png")]) == 0
    assert "1 file in" in capsys.readouterr().err


# --- --output faults ----------------------------------------------------------------------------------------

def test_output_is_a_folder_or_batch_size_zero(env, capsys):
    folder = env["tmp"] / "out.csv"
    folder.mkdir()
    for extra in ([], ["--force"]):
        assert main(["classify", str(env["images"]), "-o", str(folder), *extra]) == 2
        one_line_error(capsys.readouterr().err, "is a folder")
    assert leftovers(folder) == set() and not shards_dir(folder).exists()
    out = env["tmp"] / "r.csv"
    assert main(["classify", str(env["images"]), "-o", str(out), "--batch-size", "0"]) == 2
    one_line_error(capsys.readouterr().err, "--batch-size")
    assert main(["classify", str(env["images"]), "--batch-size", "0"]) == 2
    one_line_error(capsys.readouterr().err, "--batch-size")
    assert not out.exists() and not shards_dir(out).exists()


def test_existing_unrelated_file_and_part_file_are_kept(env, capsys):
    out = env["tmp"] / "results.csv"
    out.write_bytes(b"my own spreadsheet,do not lose\n1,2\n")
    part = env["tmp"] / "results.csv.part"
    part.write_bytes(b"my notes named .part\n")
    before, part_before = sha256(out), sha256(part)
    assert main(["classify", str(env["images"]), "-o", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "not a results file", "--force")
    assert sha256(out) == before and sha256(part) == part_before
    assert leftovers(env["tmp"]) >= {"results.csv", "results.csv.part"} and not shards_dir(out).exists()
    # A results file cifar10 wrote is replaced without --force; the user's .part file is never touched.
    json_out = env["tmp"] / "results.json"
    assert main(["classify", str(env["images"]), "-o", str(json_out)]) == 0
    assert main(["classify", str(env["images"] / "red.png"), "-o", str(json_out)]) == 0
    assert len(json.loads(json_out.read_text())["rows"]) == 1
    # --force replaces the unrelated file; still no temporary file and the .part file as it was.
    assert main(["classify", str(env["images"]), "-o", str(out), "--force"]) == 0
    assert len(read_results(out)) == 3 and sha256(part) == part_before
    assert {n for n in leftovers(env["tmp"]) if "part" in n} == {"results.csv.part"}
    assert not shards_dir(out).exists() and not shards_dir(json_out).exists()  # success: no journal left


def test_read_only_output_folder(env, mounts, capsys):
    ro = mounts(env["tmp"] / "ro", "ro", "size=1m")
    out = ro / "r.csv"
    assert main(["classify", str(env["images"]), "-o", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "read-only")
    assert leftovers(ro) == set()


def test_full_disk_leaves_nothing_half_written_and_resumes(env, mounts, capsys):
    full = mounts(env["tmp"] / "full", "size=256k")
    images = env["tmp"] / "many"
    for i in range(240):
        solid(images / f"img_{i:03d}.png", (RED, GREEN, BLUE)[i % 3], size=(8, 8))
    filler = full / "filler"
    fill(filler, leave=16384)  # the journal runs out of space part-way
    out = full / "r.csv"
    assert main(["classify", str(images), "-o", str(out), "--model", "colour_a", "--batch-size", "8"]) == 2
    line = one_line_error(capsys.readouterr().err, "No space left on device")
    assert not out.exists()
    assert {n for n in leftovers(full)} <= {"filler", "r.csv.shards"}  # no temporary file left behind
    assert "--resume" in line and shards_dir(out).is_dir()  # the batches done are kept for --resume
    print(line)
    filler.unlink()
    assert main(["classify", str(images), "-o", str(out), "--model", "colour_a", "--resume"]) == 0
    err = capsys.readouterr().err
    skipped = int(re.search(r"([\d,]+) of the 240 files given skipped", err).group(1))
    assert 0 < skipped < 240, err  # the rows written before the disk filled up count
    rows = read_results(out)
    assert len(rows) == 240 and len({r["path"] for r in rows}) == 240
    assert leftovers(full) == {"r.csv"}


def test_a_full_disk_before_anything_is_written(env, mounts, capsys):
    full = mounts(env["tmp"] / "full0", "size=64k")
    filler = full / "filler"
    fill(filler)
    out = full / "r.json"
    assert main(["classify", str(env["images"]), "-o", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "No space left on device")
    assert leftovers(full) == {"filler"}


def test_a_second_run_on_the_same_output_is_refused_while_the_first_writes(env, capsys):
    write_model(env["models"], "slow", slow_layers=4, slow_channels=64)
    images = env["tmp"] / "many"
    for i in range(300):
        solid(images / f"img_{i:03d}.png", (RED, GREEN, BLUE)[i % 3], size=(8, 8))
    out = env["tmp"] / "r.csv"
    first = subprocess.Popen([sys.executable, "-m", "cifar10_cli", "classify", str(images), "-o", str(out),
                              "--model", "slow", "--batch-size", "2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env["env"])
    try:
        deadline = time.monotonic() + 120
        while not list(shards_dir(out).glob("part-*.jsonl")):  # it holds the lock and is under way
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first run never started"
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # paused mid-run, holding the lock: the window cannot close early
        try:
            assert main(["classify", str(images), "-o", str(out), "--model", "slow"]) == 2
            one_line_error(capsys.readouterr().err, "another run is writing", str(out))
            assert main(["classify", str(images), "-o", str(out), "--model", "slow", "--force"]) == 2
            one_line_error(capsys.readouterr().err, "another run is writing")
            assert main(["classify", str(images), "-o", str(out), "--model", "slow", "--resume"]) == 2
            one_line_error(capsys.readouterr().err, "another run is writing")
        finally:
            first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert len(read_results(out)) == 300 and not shards_dir(out).exists()
