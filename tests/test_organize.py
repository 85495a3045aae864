"""`cifar10 organize`: copy, move, dry run, undo, name clashes, unreadable files, and runs killed with SIGKILL."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10_cli.main import main
from cifar10.inference import Classifier, Result
from cifar10.organize import (JOURNAL_NAME, UNSURE_DIR, destination_folder, execute, plan_organize, read_journal,
                              tree_digest,
                              undo)
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED, write_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GREY = (128, 128, 128)  # colour_a: a three-way tie, confidence ~0.33 -> _unsure at the default 0.5


tree = tree_digest  # {relative path: sha256}, folders as "DIR"


def contents(root: Path) -> list[str]:
    """Sorted sha256 of every non-hidden file under root: a multiset to check 'each file exactly once'."""
    return sorted(h for rel, h in tree(root).items() if h != "DIR" and not os.path.basename(rel).startswith("."))


@pytest.fixture()
def photos(tmp_path):
    root = tmp_path / "photos"
    solid(root / "red.png", RED)
    solid(root / "trip" / "red.png", RED, size=(50, 20))  # same name: gets a suffix in DST/airplane/
    solid(root / "green.jpg", GREEN, quality=95)
    solid(root / "trip" / "blue.bmp", BLUE)
    solid(root / "grey.png", GREY)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "notes.txt").write_text("not an image")
    return root


def test_dry_run_touches_nothing(tmp_path, models, photos, capsys):
    before = tree(photos)
    assert main(["organize", str(photos), "--into", str(tmp_path / "sorted"), "--dry-run", "--model", "colour_a"]) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "sorted").exists() and tree(photos) == before
    assert f"{photos / 'red.png'} -> {tmp_path / 'sorted' / 'airplane' / 'red.png'}" in out
    assert f"{photos / 'trip' / 'red.png'} -> {tmp_path / 'sorted' / 'airplane' / 'red (2).png'}" in out
    assert f"-> {tmp_path / 'sorted' / UNSURE_DIR / 'grey.png'}  (confidence" in out
    assert "not copied (cannot be read)" in out and "broken.png" in out and "notes.txt" in out


def test_copy_never_overwrites_and_leaves_sources(tmp_path, models, photos, capsys):
    dst = tmp_path / "sorted"
    solid(dst / "airplane" / "red.png", (1, 2, 3))  # the user's own file with the same name
    theirs = (dst / "airplane" / "red.png").read_bytes()
    before = tree(photos)
    assert main(["organize", str(photos), "--into", str(dst), "--model", "colour_a"]) == 1  # 1: the unreadable files are listed
    assert tree(photos) == before
    assert (dst / "airplane" / "red.png").read_bytes() == theirs
    copies = {rel: h for rel, h in tree(dst).items() if h != "DIR" and not rel.startswith(".")}
    assert copies == {
        "airplane/red.png": hashlib.sha256(theirs).hexdigest(),
        "airplane/red (2).png": before["red.png"], "airplane/red (3).png": before["trip/red.png"],
        "automobile/green.jpg": before["green.jpg"], "bird/blue.bmp": before["trip/blue.bmp"],
        f"{UNSURE_DIR}/grey.png": before["grey.png"]}
    assert (dst / "bird" / "blue.bmp").stat().st_mtime_ns == (photos / "trip" / "blue.bmp").stat().st_mtime_ns
    out = capsys.readouterr().out
    assert "broken.png" in out and "notes.txt" in out
    # Running it again copies nothing twice (the journal knows), and --min-confidence 0 would not matter.
    assert main(["organize", str(photos), "--into", str(dst), "--model", "colour_a"]) == 1  # broken.png again
    assert "5 files already copied" in capsys.readouterr().err
    assert len([h for h in tree(dst).values() if h != "DIR"]) == len(copies) + 2  # + the journal and its lock
    # Undo removes exactly the copies, keeps the user's file and the folder it was in.
    assert main(["organize", "--undo", str(dst)]) == 0
    assert tree(dst) == {"airplane/": "DIR", "airplane/red.png": hashlib.sha256(theirs).hexdigest()}
    assert tree(photos) == before


def test_move_and_undo_restore_the_tree(tmp_path, models, photos):
    before = tree(photos)
    dst = tmp_path / "sorted"
    assert main(["organize", str(photos), "--into", str(dst), "--mode", "move", "--model", "colour_a",
                 "--min-confidence", "0"]) == 1  # 1: the unreadable files are listed
    assert sorted(rel for rel, h in tree(photos).items() if h != "DIR") == ["broken.png", "notes.txt"]
    assert (dst / "automobile" / "green.jpg").exists() and (dst / "airplane" / "grey.png").exists()  # 0: no _unsure
    assert main(["organize", "--undo", str(dst)]) == 0
    assert tree(photos) == before
    assert not dst.exists()  # organize created it; undo removed it


def test_into_a_folder_inside_the_source(tmp_path, models, photos):
    """`organize photos --into photos/sorted` sorts what is there once; a second run finds nothing new."""
    before = tree(photos)
    assert main(["organize", str(photos), "--into", str(photos / "sorted"), "--mode", "move", "--model",
                 "colour_a"]) == 1  # 1: the unreadable files are listed
    moved = tree(photos / "sorted")
    assert main(["organize", str(photos), "--into", str(photos / "sorted"), "--mode", "move", "--model",
                 "colour_a"]) == 1  # only the unreadable files are left, and listed again
    assert tree(photos / "sorted") == {**moved, JOURNAL_NAME: tree(photos / "sorted")[JOURNAL_NAME]}
    assert main(["organize", "--undo", str(photos / "sorted")]) == 0
    assert tree(photos) == before


def test_cross_file_system_move_copies_verifies_then_removes(tmp_path, models, photos):
    """force_copy takes the path a move across file systems takes (copy, fsync, verify, remove);
    /dev/shm is another file system on Linux, used for a real cross-device move when there is one."""
    before = tree(photos)
    classifier = Classifier(models / "colour_a.onnx", provider="cpu")
    dst = tmp_path / "sorted"
    report = execute(plan_organize(classifier, [photos], dst, mode="move"), force_copy=True)
    assert len(report.done) == 5 and not report.problems
    assert contents(dst) == sorted(h for rel, h in before.items() if h != "DIR" and rel not in
                                   ("broken.png", "notes.txt"))
    assert not undo(dst).problems and tree(photos) == before
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev:
        other = shm / f"cifar10-organize-test-{os.getpid()}"
        try:
            report = execute(plan_organize(classifier, [photos], other, mode="move"))
            assert len(report.done) == 5 and os.stat(other).st_dev != os.stat(photos).st_dev
            assert not undo(other).problems and tree(photos) == before and not other.exists()
        finally:
            import shutil
            shutil.rmtree(other, ignore_errors=True)


def test_unsure_flag_of_the_model_goes_to_unsure():
    probs = np.full(10, 0.01, np.float32)
    probs[3] = 0.91
    result = Result.from_probabilities("x.png", probs)
    assert destination_folder(result, 0.5) == ("cat", "")
    result.unsure = True  # what a model with an open-set threshold sets on its results
    assert destination_folder(result, 0.5)[0] == UNSURE_DIR
    assert destination_folder(Result.from_probabilities("y.png", probs), 0.95)[0] == UNSURE_DIR


def test_undo_without_a_journal_is_a_clear_error(tmp_path, models, capsys):
    assert main(["organize", "--undo", str(tmp_path)]) == 2
    assert "nothing organised there to undo" in capsys.readouterr().err


# --- killed half-way --------------------------------------------------------------------------------------

def many_photos(root: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        sub = root / f"roll{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8 + i % 5, 8), colour).save(sub / f"img_{i % 150:03d}.png")  # names repeat
    (root / "roll0" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


def start_organize(args, models, tmp_path):
    env = {**os.environ, "CIFAR10_MODELS_DIR": str(models), "XDG_DATA_HOME": str(tmp_path / "user-data"),
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "cifar10_cli", "organize", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after(process, journal: Path, done_lines: int, timeout: float = 120.0, op: str = "done") -> int:
    """SIGKILL the process once the journal holds ``done_lines`` lines of ``op`` ("done": completed steps,
    "begin": steps committed to, most likely while their group's files are being moved); returns the count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            done = journal.read_text().count(f'"op": "{op}"')
            if done >= done_lines:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return done
        if process.poll() is not None:
            break
        time.sleep(0.002)
    process.kill()
    out, err = process.communicate()
    pytest.fail(f"organize ended (rc {process.returncode}) before the journal showed {done_lines} steps: {err}")


@pytest.mark.parametrize("mode", ["move", "copy"])
def test_killed_run_is_resumed_with_every_file_once(tmp_path, models, mode):
    src = many_photos(tmp_path / "src")
    original = tree(src)
    readable = sorted(h for rel, h in original.items() if h != "DIR" and not rel.endswith("corrupt.jpg"))
    dst = tmp_path / "sorted"
    args = [str(src), "--into", str(dst), "--mode", mode, "--model", "colour_a", "--batch-size", "32"]
    process = start_organize(args, models, tmp_path)
    done_before = kill_after(process, dst / JOURNAL_NAME, 20)
    assert process.returncode == -signal.SIGKILL
    assert done_before < 300, "the run had finished: nothing was interrupted"
    resumed = start_organize(args, models, tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 1, err  # 1: corrupt.jpg could not be read (listed)
    assert contents(dst) == readable  # every readable file exactly once, byte-identical
    assert not [rel for rel in tree(dst) if rel.endswith(".cifar10-part")]
    left = sorted(rel for rel, h in tree(src).items() if h != "DIR")
    if mode == "move":
        assert left == ["roll0/corrupt.jpg"]  # unreadable: stays where it was
    else:
        assert tree(src) == original
    # And the whole thing can still be undone.
    assert main(["organize", "--undo", str(dst)]) == 0
    assert tree(src) == original and not dst.exists()


@pytest.mark.parametrize("mode", ["move", "copy"])
def test_killed_run_is_undone_to_the_original_tree(tmp_path, models, mode):
    src = many_photos(tmp_path / "src")
    original = tree(src)
    dst = tmp_path / "sorted"
    process = start_organize([str(src), "--into", str(dst), "--mode", mode, "--model", "colour_a"], models, tmp_path)
    kill_after(process, dst / JOURNAL_NAME, 40, op="begin")  # in the middle of a group
    assert process.returncode == -signal.SIGKILL
    records = read_journal(dst)
    assert any(r["op"] == "begin" for r in records) and not any(r["op"] == "end" for r in records)
    assert main(["organize", "--undo", str(dst)]) == 0
    assert tree(src) == original  # byte-identical, nothing missing, nothing extra
    assert not dst.exists()


def test_killed_undo_can_be_run_again(tmp_path, models):
    src = many_photos(tmp_path / "src")
    original = tree(src)
    dst = tmp_path / "sorted"
    assert main(["organize", str(src), "--into", str(dst), "--mode", "move", "--model", "colour_a"]) == 1  # 1: the unreadable files are listed
    process = start_organize(["--undo", str(dst)], models, tmp_path)
    journal = dst / JOURNAL_NAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and journal.read_text().count('"op": "undone"') >= 30:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the undo finished before it could be interrupted"
    assert main(["organize", "--undo", str(dst)]) == 0
    assert tree(src) == original and not dst.exists()


def test_a_journal_line_cut_off_by_a_crash_is_ignored(tmp_path, models, photos):
    """A crash while a journal line was being written leaves half a line: it was never acted on."""
    before = tree(photos)
    dst = tmp_path / "sorted"
    classifier = Classifier(models / "colour_a.onnx", provider="cpu")
    execute(plan_organize(classifier, [photos], dst, mode="move"))
    with open(dst / JOURNAL_NAME, "a", encoding="utf-8") as journal:
        journal.write('{"op": "begin", "run": "x", "id": "x-0", "mode": "move", "src": "/nowhere/a.png", "ds')
    assert len([r for r in read_journal(dst) if r["op"] == "begin"]) == 5
    assert not undo(dst).problems and tree(photos) == before and not dst.exists()


def test_a_second_run_on_the_same_folder_waits_its_turn(tmp_path, models, photos, capsys):
    """Two runs never interleave in one journal: while another process holds DST's lock, organize and --undo
    refuse with one line; once that process is gone (even killed with SIGKILL), the lock is free again."""
    dst = tmp_path / "sorted"
    assert main(["organize", str(photos), "--into", str(dst), "--model", "colour_a"]) == 1  # 1: the unreadable files are listed
    before = tree(dst)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from cifar10.organize import Journal; "
                               "held = Journal(sys.argv[1]); print('locked', flush=True); time.sleep(60)", str(dst)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert main(["organize", str(photos), "--into", str(dst), "--model", "colour_a", "--mode", "move"]) == 2
        assert main(["organize", "--undo", str(dst)]) == 2
        assert capsys.readouterr().err.count("is working on") == 2
        assert tree(dst) == before and (photos / "green.jpg").exists()  # nothing moved, nothing undone
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert main(["organize", "--undo", str(dst)]) == 0  # the killed holder left no lock behind
    assert not dst.exists()


def test_nothing_to_sort_is_a_usage_error_and_touches_nothing(tmp_path, models, capsys):
    """The exit-code rule of classify, organize and evaluate: 2 when there is nothing to do."""
    empty, notes = tmp_path / "empty", tmp_path / "notes"
    empty.mkdir()
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "todo.txt").write_text("not an image")
    for source in (empty, notes):
        assert main(["organize", str(source), "--into", str(tmp_path / "sorted"), "--model", "colour_a"]) == 2
        assert f"no images found in {source}" in capsys.readouterr().err
    assert not (tmp_path / "sorted").exists() and (notes / "sub" / "todo.txt").read_text() == "not an image"


def test_messages_count_in_words(tmp_path, models, capsys):
    one = tmp_path / "one"
    solid(one / "red.png", RED)
    assert main(["organize", str(one), "--into", str(tmp_path / "sorted"), "--model", "colour_a"]) == 0
    err = capsys.readouterr().err
    assert "copy 1 file into" in err and "copied 1 file: airplane 1" in err and "1 files" not in err
    assert main(["organize", "--undo", str(tmp_path / "sorted")]) == 0
    err = capsys.readouterr().err
    assert "undid 1 step" in err and "1 steps" not in err
