"""`cifar10 organize` on a user's own files when things go wrong: originals deleted or replaced before --undo, a
journal that was planted, copied or torn, a full disk, file names that are not UTF-8 or 255 bytes long, symbolic
links. Every test drives the real command (``main([...])`` or a subprocess) on real files with the real
onnxruntime model of test_organize.py, and checks with sha256 (tree_digest) that no byte was lost and that
nothing outside the folders the command was given was touched."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10_cli.main import main
from cifar10.organize import JOURNAL_NAME, JOURNAL_VERSION, read_journal, tree_digest
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED
from test_organize import ROOT, contents

tree = tree_digest


@pytest.fixture()
def world(tmp_path):
    """``camera/`` (the photos), ``victim/`` (files no command names: must never change)."""
    root = tmp_path / "world"
    solid(root / "camera" / "red.png", RED)
    solid(root / "camera" / "green.png", GREEN)
    solid(root / "camera" / "day2" / "blue.png", BLUE)
    solid(root / "camera" / "day2" / "red.png", RED, size=(20, 20))
    solid(root / "victim" / "tax.png", GREEN)
    (root / "victim" / "diary.txt").write_text("private")
    return root


def organize(*args) -> int:
    return main(["organize", *map(str, args)])


def outside(world: Path, *named: str) -> dict[str, str]:
    """The digest of everything in ``world`` except the named top-level folders."""
    return {rel: h for rel, h in tree(world).items() if rel.split(os.sep)[0].rstrip("/") not in named}


def files(root: Path) -> list[str]:
    """sha256 multiset of the photos under root (hidden journal/lock files left out)."""
    return contents(root)


# --- undo never destroys the last copy ----------------------------------------------------------------------

def test_undo_after_the_originals_were_deleted_keeps_the_copies(world, models, capsys):
    camera, dst = world / "camera", world / "sorted"
    original, rest = tree(camera), outside(world, "camera", "sorted")
    assert organize(camera, "--into", dst, "--mode", "copy", "--model", "colour_a") == 0
    saved = world.parent / "saved-camera"
    shutil.copytree(camera, saved)
    shutil.rmtree(camera)  # the user deletes the card's folder: the sorted copies are all that is left
    capsys.readouterr()
    assert organize("--undo", dst) == 1
    out, err = capsys.readouterr()
    assert out.count("kept: the original is gone") == 4 and "journal stays" in err
    assert files(dst) == files(saved)  # every photo still there, byte for byte
    assert organize("--undo", dst) == 1 and files(dst) == files(saved)  # and again: still usable, still kept
    shutil.copytree(saved, camera)  # the originals are back: now undo may remove the copies
    assert organize("--undo", dst) == 0
    assert not dst.exists() and tree(camera) == original and outside(world, "camera", "sorted") == rest


def test_undo_after_a_move_onto_a_reused_card_keeps_both(world, models, capsys):
    camera, dst = world / "camera", world / "sorted"
    original, rest = tree(camera), outside(world, "camera", "sorted")
    assert organize(camera, "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    assert files(camera) == []
    # The card is re-used: new shots get the old names.
    solid(camera / "red.png", (200, 10, 90))
    solid(camera / "day2" / "blue.png", (10, 90, 200))
    new_shots = tree(camera)
    capsys.readouterr()
    assert organize("--undo", dst) == 1
    out = capsys.readouterr().out
    assert out.count("now holds another file") == 2
    assert tree(camera) == {**new_shots, "green.png": original["green.png"], "day2/red.png": original["day2/red.png"]}
    everything = sorted(files(dst) + files(camera))  # each original once, plus the two new shots
    assert everything == sorted([h for h in original.values() if h != "DIR"] + [new_shots["red.png"],
                                                                               new_shots["day2/blue.png"]])
    assert files(dst) == sorted([original["red.png"], original["day2/blue.png"]])
    # The user moves the new shots aside; --undo again puts the rest back and removes the journal.
    (world / "new").mkdir()
    os.rename(camera / "red.png", world / "new" / "red.png")
    os.rename(camera / "day2" / "blue.png", world / "new" / "blue.png")
    assert organize("--undo", dst) == 0
    assert tree(camera) == original and not dst.exists()
    assert outside(world, "camera", "sorted", "new") == rest


# --- the journal is evidence, not orders ---------------------------------------------------------------------

def _write_journal(dst: Path, records: list[dict]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    with open(dst / JOURNAL_NAME, "a", encoding="ascii") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def _planted_steps(world: Path, dst: Path, run: str) -> list[dict]:
    victim = str(world / "victim" / "tax.png")
    return [{"op": "mkdir", "run": run, "path": str(dst / "airplane")},
            # "finish" a move of the victim's file into DST (recover), or "put back" a DST file over it (undo)
            {"op": "begin", "run": run, "id": f"{run}-0", "mode": "move", "src": victim,
             "dst": str(dst / "airplane" / "tax.png")},
            {"op": "begin", "run": run, "id": f"{run}-1", "mode": "move", "src": str(world / "victim" / "new.png"),
             "dst": str(dst / "airplane" / "x.png")},
            {"op": "done", "id": f"{run}-1", "size": 1, "sha256": "0" * 64}]


@pytest.mark.parametrize("binding", ["version1", "guessed", "inode"])
def test_a_planted_journal_is_refused_and_nothing_is_touched(world, models, capsys, binding):
    """A journal found in a folder someone gave you: hand-written lines pointing at files outside DST.
    version1: no binding at all; guessed: a version-2 run naming the right path but the wrong inode and no key;
    inode: even the right path, dev and inode (a local attacker can stat the folder), but not the key."""
    dst = world / "received"
    solid(dst / "airplane" / "x.png", RED)  # a DST file the planted undo would "move back" into victim/
    st = os.stat(world) if binding == "guessed" else None
    run = {"op": "run", "run": "evil", "mode": "move", "sources": [str(world / "victim")]}
    if binding != "version1":
        dst.mkdir(exist_ok=True)
        st = st or os.stat(dst)
        run.update(version=JOURNAL_VERSION, dst=str(dst), dst_real=os.path.realpath(dst), dst_dev=st.st_dev,
                   dst_ino=st.st_ino, key="0" * 32)
    _write_journal(dst, [run, *_planted_steps(world, dst, "evil")])
    before = tree(world)
    capsys.readouterr()
    assert organize(world / "camera", "--into", dst, "--mode", "move", "--model", "colour_a") == 2
    assert organize("--undo", dst) == 2
    assert organize(world / "camera", "--into", dst, "--dry-run", "--model", "colour_a") == 2
    err = capsys.readouterr().err
    assert err.count("cifar10: error: organize: ") == 3 and len(err.strip().splitlines()) == 3
    assert "nothing was changed" in err and "Traceback" not in err
    if binding == "version1":
        assert "journal version 1" in err and "still in" in err
    assert tree(world) == before  # not a byte, not a lock file


def test_steps_added_to_a_real_journal_that_point_outside_are_refused(world, models, capsys):
    """A genuine journal (right folder, inode and key) with extra lines appended: a source outside the run's
    sources, a destination with '..', a class folder replaced by a link out of DST. Each is refused whole."""
    camera, dst = world / "camera", world / "sorted"
    original, rest = tree(camera), outside(world, "camera", "sorted")
    assert organize(camera, "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    run = next(r for r in read_journal(dst) if r["op"] == "run")["run"]
    journal = (dst / JOURNAL_NAME).read_bytes()
    victim = world / "victim"
    cases = {
        "source outside": {"op": "begin", "run": run, "id": f"{run}-99", "mode": "move",
                           "src": str(victim / "tax.png"), "dst": str(dst / "airplane" / "tax.png")},
        "dst with ..": {"op": "begin", "run": run, "id": f"{run}-98", "mode": "move",
                        "src": str(camera / "red.png"),
                        "dst": str(dst / "airplane" / ".." / ".." / "victim" / "a.png")},
        "dst outside": {"op": "begin", "run": run, "id": f"{run}-97", "mode": "move",
                       "src": str(camera / "red.png"), "dst": str(victim.parent / "victim" / "tax.png")},
        "unknown run": {"op": "begin", "run": "other", "id": "other-0", "mode": "move",
                        "src": str(camera / "red.png"), "dst": str(dst / "airplane" / "zz.png")},
    }
    for name, record in cases.items():
        _write_journal(dst, [record])
        before = tree(world)
        capsys.readouterr()
        assert organize("--undo", dst) == 2, name
        assert organize(camera, "--into", dst, "--model", "colour_a") == 2, name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 2 and "nothing was changed" in err, (name, err)
        assert tree(world) == before, name
        (dst / JOURNAL_NAME).write_bytes(journal)
    before = tree(world)
    # A class folder swapped for a link to victim/: an undo would move files out of the link's target.
    os.rename(dst / "airplane", world / "airplane-real")
    os.symlink(victim, dst / "airplane")
    before = tree(world)
    assert organize("--undo", dst) == 2 and tree(world) == before
    os.unlink(dst / "airplane")
    os.rename(world / "airplane-real", dst / "airplane")
    assert organize("--undo", dst) == 0 and tree(camera) == original and not dst.exists()
    assert outside(world, "camera", "sorted", "airplane-real") == rest


def test_undo_of_a_copied_or_renamed_sorted_folder_is_refused(world, models, capsys):
    camera, dst = world / "camera", world / "sorted"
    original = tree(camera)
    assert organize(camera, "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    shutil.copytree(dst, world / "sorted2", symlinks=True)  # cp -a sorted sorted2 (journal and lock included)
    before = tree(world)
    capsys.readouterr()
    assert organize("--undo", world / "sorted2") == 2
    assert organize(camera, "--into", world / "sorted2", "--model", "colour_a") == 2
    err = capsys.readouterr().err
    assert "another folder" in err and len(err.strip().splitlines()) == 2
    assert tree(world) == before  # sorted/, sorted2/ and the camera untouched
    os.rename(dst, world / "renamed")  # the real folder, renamed: refused until it is back where it was
    capsys.readouterr()
    assert organize("--undo", world / "renamed") == 2
    assert "moved or renamed" in capsys.readouterr().err
    os.rename(world / "renamed", dst)
    assert organize("--undo", dst) == 0 and tree(camera) == original and not dst.exists()
    assert files(world / "sorted2") == sorted(h for h in original.values() if h != "DIR")  # the copy is as it was


# --- torn journal, full disk ---------------------------------------------------------------------------------

def test_a_torn_last_line_does_not_wedge_the_next_run_or_undo(world, models, capsys):
    camera, dst = world / "camera", world / "sorted"
    original = tree(camera)
    assert organize(camera, "--into", dst, "--model", "colour_a") == 0
    with open(dst / JOURNAL_NAME, "ab") as f:  # the power went out while a line was being written
        f.write(b'{"op": "begin", "run": "x", "id": "x-0", "mode": "copy", "src": "/etc/pass')
    solid(camera / "later.png", BLUE)  # a new photo: the next run has lines to append
    assert organize(camera, "--into", dst, "--model", "colour_a") == 0
    lines = (dst / JOURNAL_NAME).read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # the torn line was cut away
    assert organize("--undo", dst) == 0
    assert tree(camera) == {**original, "later.png": tree(camera)["later.png"]} and not dst.exists()


def noise_photos(root: Path, n: int, side: int = 256) -> Path:
    rng = np.random.default_rng(3)
    for i in range(n):
        sub = root / f"roll{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(sub / f"img_{i:02d}.png")
    return root


@pytest.fixture()
def small_disk(tmp_path):
    """A real 2 MiB tmpfs (root only): copies into it fill it part-way through a run."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("mode", ["copy", "move"])
def test_a_full_disk_ends_in_one_line_loses_nothing_and_can_be_undone(world, models, small_disk, capsys, mode):
    src = noise_photos(world / "shots", 14)  # 14 x ~197 KB: about 10 fit
    original, rest = tree(src), outside(world, "shots")
    dst = small_disk / "sorted"
    args = [src, "--into", dst, "--mode", mode, "--model", "colour_a", "--min-confidence", "0"]
    capsys.readouterr()
    for attempt in range(2):  # the failed run, then the same command again on the still-full disk
        assert organize(*args) == 2
        err = capsys.readouterr().err
        message = [line for line in err.splitlines() if line.startswith("cifar10: error:")]
        assert len(message) == 1 and "No space left on device" in message[0], err
        assert "Traceback" not in err and "not a journal record" not in err
        assert "--undo" in message[0]
        # Nothing lost: every photo is in the source or in DST, byte-identical; no half file, no torn line.
        if mode == "copy":
            assert tree(src) == original and set(files(dst)) <= set(original.values())
        else:
            assert sorted(files(src) + files(dst)) == sorted(h for h in original.values() if h != "DIR")
        assert 0 < len(files(dst)) < 14
        assert not [p for p in tree(small_disk) if p.endswith(".cifar10-part")]
        assert (dst / JOURNAL_NAME).read_bytes().endswith(b"\n")
    assert organize("--undo", dst) == 0
    assert tree(src) == original and tree(small_disk) == {}
    # Not wedged: a run that fits works, and is undone.
    assert organize(src / "roll0" / "img_00.png", src / "roll1" / "img_01.png", "--into", dst, "--mode", mode,
                    "--model", "colour_a") == 0
    assert len(files(dst)) == 2
    assert organize("--undo", dst) == 0
    assert tree(src) == original and tree(small_disk) == {} and outside(world, "shots") == rest


def test_a_journal_write_cut_short_is_cut_away_and_reported(world, models, tmp_path):
    """RLIMIT_FSIZE makes the kernel write only part of a group's journal lines, then fail (EFBIG): the torn
    part must be truncated away, the run must end in one line, and what was done must stay undoable."""
    import resource

    src = world / "camera"
    for i in range(80):
        solid(src / f"roll{i % 3}" / f"shot_{i:03d}.png", (i * 3, 255 - i * 3, 128), size=(8, 8))
    original, rest = tree(src), outside(world, "camera", "sorted")
    dst = world / "sorted"
    args = [src, "--into", dst, "--mode", "move", "--model", "colour_a"]
    limit = 24_000  # bytes: the run line and the first group's lines fit, the second group's begin lines do not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: write() gets EFBIG

    done = subprocess.run([sys.executable, "-m", "cifar10_cli", "organize", *map(str, args)],
                          env=_env(models, tmp_path), capture_output=True, text=True, preexec_fn=small_files)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    message = [line for line in done.stderr.splitlines() if line.startswith("cifar10: error:")]
    assert len(message) == 1 and "cannot write the journal" in message[0] and "--undo" in message[0], done.stderr
    journal = (dst / JOURNAL_NAME).read_bytes()
    assert journal.endswith(b"\n") and all(json.loads(line) for line in journal.splitlines())
    moved = len(files(dst))
    assert 0 < moved < 84 and len(files(src)) + moved == 84  # 80 + the 4 of the fixture
    # Not wedged: the same command finishes the job; undo puts everything back.
    assert organize(*args) == 0 and files(src) == []
    assert organize("--undo", dst) == 0
    assert tree(src) == original and not dst.exists() and outside(world, "camera", "sorted") == rest


def test_an_undo_killed_while_copying_back_across_file_systems_is_not_blocked(world, models, small_disk):
    """Undoing a move across file systems copies each file back through a temporary file beside the source;
    one left by a killed undo (same name the undo derives from the source) must not block the next undo."""
    from cifar10.organize import _part_path

    camera, dst = world / "camera", small_disk / "sorted"
    original, rest = tree(camera), outside(world, "camera")
    assert organize(camera, "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    assert files(camera) == [] and os.stat(dst).st_dev != os.stat(camera).st_dev
    stale = Path(_part_path(str(camera / "red.png")))
    stale.write_bytes(b"half a copy")  # what a kill -9 in the middle of copying red.png back leaves
    assert organize("--undo", dst) == 0
    assert tree(camera) == original and not stale.exists() and tree(small_disk) == {}
    assert outside(world, "camera") == rest


# --- any file name, any file -----------------------------------------------------------------------------------

def _env(models, tmp_path):
    return {**os.environ, "CIFAR10_MODELS_DIR": str(models), "XDG_DATA_HOME": str(tmp_path / "user-data"),
            "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONIOENCODING": "utf-8:strict"}


@pytest.mark.parametrize("mode", ["copy", "move"])
def test_names_that_are_not_utf8_round_trip(world, models, tmp_path, mode):
    camera, dst = world / "camera", world / "sorted"
    red = (camera / "red.png").read_bytes()
    with open(os.fsencode(camera) + b"/caf\xe9.png", "wb") as f:  # Latin-1 name from an old camera
        f.write(red)
    os.mkdir(os.fsencode(camera) + b"/r\xf6ll")
    with open(os.fsencode(camera) + b"/r\xf6ll/\xff\xfe.png", "wb") as f:
        f.write((camera / "green.png").read_bytes())
    original, rest = tree(camera), outside(world, "camera", "sorted")
    for args in ([camera, "--into", dst, "--mode", mode, "--model", "colour_a", "--dry-run"],
                 [camera, "--into", dst, "--mode", mode, "--model", "colour_a"], ["--undo", dst]):
        done = subprocess.run([sys.executable, "-m", "cifar10_cli", "organize", *map(str, args)],
                              env=_env(models, tmp_path), capture_output=True, text=True, errors="strict")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        if "--dry-run" in args:
            assert "caf\\xe9.png -> " in done.stdout and "r\\xf6ll" in done.stdout
        elif "--undo" not in args:
            assert "6 files" in done.stderr
            assert os.path.exists(os.fsencode(dst) + b"/airplane/caf\xe9.png")
            assert (dst / JOURNAL_NAME).read_bytes().isascii()
    assert tree(camera) == original and not dst.exists() and outside(world, "camera", "sorted") == rest


def test_255_byte_names_are_copied_and_undone(world, models, capsys):
    camera, dst = world / "camera", world / "sorted"
    long = "r" * 251 + ".png"  # 255 bytes, the most ext4 allows; its clash gets a shortened "(2)" name
    solid(camera / long, RED)
    solid(camera / "day2" / long, RED, size=(31, 17))
    solid(camera / ("é" * 125 + "x.png"), GREEN)  # 255 bytes in UTF-8
    original, rest = tree(camera), outside(world, "camera", "sorted")
    assert organize(camera, "--into", dst, "--model", "colour_a") == 0
    names = os.listdir(dst / "airplane")
    assert long in names and any(n.endswith(" (2).png") and len(os.fsencode(n)) == 255 for n in names)
    assert files(dst) == sorted(h for h in original.values() if h != "DIR")
    assert organize("--undo", dst) == 0
    assert tree(camera) == original and not dst.exists() and outside(world, "camera", "sorted") == rest
    assert organize(camera, "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    assert organize("--undo", dst) == 0 and tree(camera) == original


def test_a_relative_symlink_is_not_moved_and_does_not_block_undo(world, models, capsys):
    camera, dst = world / "camera", world / "sorted"
    os.symlink("red.png", camera / "favourite.png")  # relative: moved into DST it would point nowhere
    os.symlink("../../victim/tax.png", camera / "day2" / "tax.png")
    original, rest = tree(camera), outside(world, "camera", "sorted")
    capsys.readouterr()
    assert organize(camera, "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    out, err = capsys.readouterr()
    assert f"not moved (symbolic link: not moved; move the file it points to): {camera / 'favourite.png'}" in out
    assert str(camera / "day2" / "tax.png") in out
    assert "moved 4 files: airplane 2, automobile 1, bird 1" in err and "2 symbolic links" in err
    assert os.path.islink(camera / "favourite.png") and os.path.islink(camera / "day2" / "tax.png")
    assert organize("--undo", dst) == 0
    assert tree(camera) == original and not dst.exists() and outside(world, "camera", "sorted") == rest
    # Copy follows links: the bytes they point to are copied; undo removes those copies, links untouched.
    assert organize(camera, "--into", dst, "--model", "colour_a") == 0
    assert len(files(dst)) == 6 and not [p for p in tree(dst).values() if p.startswith("LINK")]
    assert organize("--undo", dst) == 0
    assert tree(camera) == original and not dst.exists() and outside(world, "camera", "sorted") == rest


def test_a_linked_source_folder_named_by_the_user_is_followed(world, models):
    camera, dst = world / "camera", world / "sorted"
    os.symlink("camera", world / "card")
    original = tree(camera)
    assert organize(world / "card", "--into", dst, "--mode", "move", "--model", "colour_a") == 0
    assert files(camera) == [] and len(files(dst)) == 4
    assert organize("--undo", dst) == 0 and tree(camera) == original and not dst.exists()


def test_the_summary_counts_what_was_done(world, models, capsys, monkeypatch):
    """A file that vanishes between classifying and copying is not counted as copied."""
    import cifar10.organize as organize_module

    camera, dst = world / "camera", world / "sorted"
    real_execute = organize_module.execute

    def execute_after_the_user_deleted_one(plan, **kw):
        os.unlink(camera / "green.png")  # the user deletes a photo while organize classifies
        return real_execute(plan, **kw)

    monkeypatch.setattr("cifar10_cli.organize.execute", execute_after_the_user_deleted_one)
    capsys.readouterr()
    assert organize(camera, "--into", dst, "--model", "colour_a") == 1
    out, err = capsys.readouterr()
    assert "gone since it was classified" in out
    assert "copied 3 files: airplane 2, bird 1" in err and "1 of the 4 planned files were not copied" in err
    assert organize("--undo", dst) == 0 and not dst.exists()


def test_the_apps_sort_task_returns_what_a_full_disk_let_it_move(tmp_path, small_disk):
    """The desktop Sort's worker: a move that fills the disk returns the files moved until then (the window's
    rows follow them) with the one-line error, instead of only the error."""
    from cifar10.organize import Plan, Step
    from desktop_app.organize_dialog import _execute_task

    src = noise_photos(tmp_path / "shots", 14)
    photos = sorted(src.rglob("*.png"))
    plan = Plan(str(small_disk / "sorted"), "move", "test", 0.0, [str(src)],
                [Step(str(p), "noise", p.name, "noise", 1.0) for p in photos])
    report = _execute_task(plan, on_progress=lambda *_: None, should_stop=lambda: False)
    assert "No space left on device" in report.error and "--undo" in report.error
    assert 0 < len(report.done) < 14
    assert all(not Path(s).exists() and Path(d).is_file() for s, d in report.done)
