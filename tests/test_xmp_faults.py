"""`cifar10 classify --xmp` and `--xmp-undo` on a user's own photos and sidecars when things go wrong: sidecars a
photo manager owns (merged, then put back byte for byte), edited after tagging, a run or an undo killed with
SIGKILL, a full disk, hostile file names, planted or edited journals, tampered backups and symbolic links. Every
test drives the real command (a subprocess, or ``main([...])``) on real files with the tiny real onnxruntime models
of onnx_fixtures, and checks with sha256 (tree_digest) that no byte was lost, that the images were never written
and that nothing outside the folder the command was given was touched."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from cifar10_cli.main import main
from cifar10.organize import tree_digest as tree
from cifar10.xmp import read_keywords, sidecar_path
from cifar10.xmp_journal import STATE_DIR
from image_files import solid
from onnx_fixtures import BLUE, GREEN, RED
from test_organize_faults import small_disk  # noqa: F401 (a fixture: a real 2 MiB tmpfs)
from test_xmp import DARKTABLE_SIDECAR, models  # noqa: F401 (a fixture: the colour_a and colour_b models)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def world(tmp_path):
    """``photos/`` (what is classified: two sidecars a photo manager owns, one image without a sidecar, a
    subfolder, a broken image) and ``victim/`` (never named: must never change, not even its sidecars)."""
    root = tmp_path / "world"
    photos = root / "photos"
    solid(photos / "red.jpg", RED, quality=95)
    (photos / "red.jpg.xmp").write_text(DARKTABLE_SIDECAR)
    solid(photos / "blue.png", BLUE)
    solid(photos / "trip" / "green.png", GREEN)
    (photos / "trip" / "green.png.xmp").write_text(DARKTABLE_SIDECAR.replace("holiday", "family"))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    solid(root / "victim" / "tax.png", GREEN)
    (root / "victim" / "tax.png.xmp").write_text(DARKTABLE_SIDECAR)
    (root / "victim" / "diary.txt").write_text("private")
    return root


def env(models, tmp_path):
    return {**os.environ, "CIFAR10_MODELS_DIR": str(models), "XDG_DATA_HOME": str(tmp_path / "user-data"),
            "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONIOENCODING": "utf-8:strict"}


def cli(models, tmp_path, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cifar10_cli", "classify", *map(str, args)], env=env(models, tmp_path),
                          capture_output=True, text=True, errors="strict", **kw)


def start(models, tmp_path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cifar10_cli", "classify", *map(str, args)],
                            env=env(models, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def images(root: Path) -> dict[str, str]:
    return {rel: h for rel, h in tree(root).items() if not rel.endswith(".xmp") and STATE_DIR not in rel}


def journal(folder: Path) -> list[dict]:
    path = folder / STATE_DIR / "journal.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("cifar10: error:")]


def every_sidecar_is_old_or_new(folder: Path, before: dict[str, str]) -> None:
    """Each sidecar holds its bytes from before, or exactly the bytes the journal says were written: never half
    (and each one we wrote is XMP with its label); no file we did not journal changed; no temporary file is left."""
    now = tree(folder)
    journaled = {}
    for record in journal(folder):
        if record["op"] == "begin":
            rel = os.path.relpath(record["sidecar"], folder)
            journaled.setdefault(rel, {before.get(rel)}).add(record["new_sha256"])
    for rel, digest in now.items():
        if STATE_DIR in rel or rel.endswith(".cifar10-part"):
            continue
        if rel in journaled:
            assert digest in journaled[rel], rel
            if digest != before.get(rel):
                assert read_keywords(folder / rel)["label"], rel
        else:
            assert before.get(rel) == digest, rel  # the images included
    assert images(folder) == images_of(before)


def images_of(digest: dict[str, str]) -> dict[str, str]:
    return {rel: h for rel, h in digest.items() if not rel.endswith(".xmp") and STATE_DIR not in rel}


# --- tag, re-tag, undo -------------------------------------------------------------------------------------------

def test_tag_twice_then_undo_puts_back_every_sidecar_byte_for_byte(world, models, tmp_path):
    photos, before, photos_before = world / "photos", tree(world), tree(world / "photos")
    done = cli(models, tmp_path, photos, "--xmp", "--model", "colour_a")
    assert done.returncode == 1, done.stderr  # 1: broken.jpg
    assert f"undo with `cifar10 classify --xmp-undo {photos}`" in done.stderr
    assert "XMP sidecars written: 3" in done.stderr
    merged = read_keywords(photos / "red.jpg.xmp")
    assert merged["subject"] == ["holiday", "airplane"] and "darktable:operation" in (photos / "red.jpg.xmp").read_text()
    assert read_keywords(photos / "blue.png.xmp")["subject"] == ["bird"]
    # The wrong model, over the same folder: merged again (our keyword replaced, the user's kept).
    assert cli(models, tmp_path, photos, "--xmp", "--model", "colour_b").returncode == 1
    assert read_keywords(photos / "trip" / "green.png.xmp")["subject"] == ["family", "ship"]
    assert images(photos) == images_of(photos_before)  # no image written, ever
    # Kept: the journal, the lock and each earlier version (2 user sidecars, then the 3 run 1 wrote).
    assert len(list((photos / STATE_DIR).iterdir())) == 2 + 5
    undone = cli(models, tmp_path, "--xmp-undo", photos)
    assert undone.returncode == 0, undone.stderr
    assert "put back 5 earlier sidecars, removed 1 sidecar cifar10 had created" in undone.stderr
    assert tree(world) == before  # byte for byte, no sidecar of ours, no journal, no backup, victim untouched
    again = cli(models, tmp_path, "--xmp-undo", photos)
    assert again.returncode == 2 and len(errors(again.stderr)) == 1 and "no sidecars were tagged there" in again.stderr
    assert tree(world) == before


def test_xmp_with_an_output_file_is_undone_too(world, models, tmp_path):
    photos, before = world / "photos", tree(world)
    out = tmp_path / "results.csv"
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a", "-o", str(out)]) == 1
    assert read_keywords(photos / "red.jpg.xmp")["label"] == "airplane"
    assert main(["classify", "--xmp-undo", str(photos)]) == 0
    assert tree(world) == before


def test_images_are_never_opened_for_writing(world, models, monkeypatch, capsys):
    """Every file tagging and undo open for writing, in-process: only sidecars' temporary files (renamed over a
    sidecar) and the journal, lock and backups in .cifar10-xmp/."""
    import builtins

    from cifar10.folder_journal import part_path

    photos, before = world / "photos", tree(world)
    written: list[str] = []
    real_open, real_os_open = builtins.open, os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def spy_open(file, mode="r", *args, **kw):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+"):
            written.append(os.fsdecode(file))
        return real_open(file, mode, *args, **kw)

    def spy_os_open(path, flags, *args, **kw):
        if flags & writing:
            written.append(os.fsdecode(path))
        return real_os_open(path, flags, *args, **kw)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 1
    assert main(["classify", str(photos), "--xmp", "--model", "colour_b"]) == 1
    assert main(["classify", "--xmp-undo", str(photos)]) == 0
    monkeypatch.undo()
    ours = {part_path(str(p) + ".xmp") for p in photos.rglob("*") if p.is_file()}
    assert written and all(os.path.dirname(p) == str(photos / STATE_DIR) or p in ours for p in written), written
    assert tree(world) == before


def test_xmp_undo_takes_one_folder_and_nothing_else(world, models, capsys):
    photos = world / "photos"
    assert main(["classify", "--xmp-undo", str(photos), str(photos)]) == 2
    assert main(["classify", "--xmp-undo", str(photos), "--xmp"]) == 2
    assert capsys.readouterr().err.count("--xmp-undo FOLDER takes no other paths") == 2
    assert main(["classify", "--xmp-undo", str(photos / "trip")]) == 2  # not the folder that was classified
    assert "name the folder that was classified" in capsys.readouterr().err


def test_a_sidecar_edited_or_deleted_after_tagging_is_left_and_said(world, models, tmp_path, capsys):
    photos = world / "photos"
    before = tree(photos)
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 1
    # The user's photo manager adds a keyword to one sidecar, the user deletes another and one we created.
    edited = (photos / "red.jpg.xmp").read_text().replace("<rdf:li>airplane</rdf:li>",
                                                          "<rdf:li>airplane</rdf:li><rdf:li>mine</rdf:li>")
    (photos / "red.jpg.xmp").write_text(edited)
    (photos / "trip" / "green.png.xmp").unlink()
    (photos / "blue.png.xmp").unlink()
    capsys.readouterr()
    for _ in range(2):  # and again: the same answer, nothing else touched
        assert main(["classify", "--xmp-undo", str(photos)]) == 1
        out, err = capsys.readouterr()
        assert f"not undone: {photos / 'red.jpg.xmp'}: left as it is: changed since it was tagged" in out
        assert f"{photos / 'trip' / 'green.png.xmp'}: missing, so it was not put back" in out
        assert out.count("not undone:") == 2 and "stay in" in err
        assert (photos / "red.jpg.xmp").read_text() == edited
        assert not (photos / "blue.png.xmp").exists() and not (photos / "trip" / "green.png.xmp").exists()
        assert images(photos) == images_of(before)
    # The earlier version of the edited sidecar is kept where the message says, verified by its name.
    backup = photos / STATE_DIR / before["red.jpg.xmp"]
    assert tree(backup.parent)[backup.name] == before["red.jpg.xmp"] and str(backup) in out


def test_a_sidecar_that_is_a_link_or_not_xmp_is_left_alone(world, models, tmp_path, capsys):
    photos = world / "photos"
    os.symlink(world / "victim" / "tax.png.xmp", photos / "blue.png.xmp")  # a link out of the folder
    (photos / "trip" / "green.png.xmp").write_text("<html>not xmp</html>")
    before, victim = tree(world), tree(world / "victim")
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 1
    err = capsys.readouterr().err
    assert "not a plain file (a link or a folder); left alone" in err and "not an XMP sidecar" in err
    assert tree(world / "victim") == victim
    assert os.path.islink(photos / "blue.png.xmp")
    assert main(["classify", "--xmp-undo", str(photos)]) == 0
    assert tree(world) == before


# --- killed -----------------------------------------------------------------------------------------------------

def many_photos(folder: Path, n: int) -> Path:
    """``n`` tiny images in two subfolders; every third has a sidecar a photo manager wrote."""
    for i in range(n):
        image = solid(folder / f"roll{i % 2}" / f"img_{i:03d}.png", (i % 256, 255 - i % 256, 40), size=(8, 8))
        if i % 3 == 0:
            sidecar_path(image).write_text(DARKTABLE_SIDECAR.replace("holiday", f"shot {i}"))
    return folder


def kill_when(process: subprocess.Popen, path: Path, text: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(text.encode()) >= count:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"it ended before it could be killed: {process.stderr.read()}"


def test_a_run_killed_mid_group_leaves_old_or_new_sidecars_and_is_undone(tmp_path, models):
    photos = many_photos(tmp_path / "photos", 600)
    before = tree(photos)
    process = start(models, tmp_path, photos, "--xmp", "--model", "colour_a", "--batch-size", "16")
    kill_when(process, photos / STATE_DIR / "journal.jsonl", '"op": "begin"', 40)  # in the middle of a group
    every_sidecar_is_old_or_new(photos, before)
    assert main(["classify", "--xmp-undo", str(photos)]) == 0
    assert tree(photos) == before  # no temporary file, no journal, every sidecar as it was


def test_a_killed_undo_run_again_ends_in_the_same_state(tmp_path, models):
    photos = many_photos(tmp_path / "photos", 600)
    before = tree(photos)
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 0
    tagged = tree(photos)
    process = start(models, tmp_path, "--xmp-undo", photos)
    kill_when(process, photos / STATE_DIR / "journal.jsonl", '"op": "undone"', 40)
    now = tree(photos)
    for rel, digest in now.items():  # each sidecar as tagged or as before: never half
        if STATE_DIR not in rel and not rel.endswith(".cifar10-part"):
            assert digest in (before.get(rel), tagged.get(rel)), rel
    assert main(["classify", "--xmp-undo", str(photos)]) == 0
    assert tree(photos) == before


# --- full disk --------------------------------------------------------------------------------------------------

def test_a_full_disk_stops_in_one_line_loses_nothing_and_is_undone(small_disk, models, tmp_path):  # noqa: F811
    photos = small_disk / "photos"
    note = "<lr:note>" + "x" * 10_000 + "</lr:note>"
    big = DARKTABLE_SIDECAR.replace("</darktable:history>", "</darktable:history>\n   " + note)
    for i in range(80):  # 80 user sidecars of ~10 KB: the first group's backups fit, the second's do not
        image = solid(photos / f"img_{i:02d}.png", (i * 3, 0, 0), size=(4, 4))
        sidecar_path(image).write_text(big.replace("holiday", f"shot {i}"))
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 500_000))
    before = tree(photos)
    for attempt in range(2):  # the run that fills the disk, then the same command on the still-full disk
        done = cli(models, tmp_path, photos, "--xmp", "--model", "colour_a")
        message = errors(done.stderr)
        assert done.returncode == 2 and len(message) == 1, done.stderr
        assert "No space left on device" in message[0] and f"--xmp-undo {photos}" in message[0], message
        every_sidecar_is_old_or_new(photos, before)
        assert (photos / STATE_DIR / "journal.jsonl").read_bytes().endswith(b"\n")
    assert any(tree(photos)[rel] != before[rel] for rel in before if rel.endswith(".xmp"))  # some were written
    undone = cli(models, tmp_path, "--xmp-undo", photos)  # on the full disk: done, or stopped in one line
    if undone.returncode != 0:
        assert undone.returncode == 2 and len(errors(undone.stderr)) == 1 and "--xmp-undo" in undone.stderr
        every_sidecar_is_old_or_new(photos, before)
        filler.unlink()
        undone = cli(models, tmp_path, "--xmp-undo", photos)
    assert undone.returncode == 0, undone.stderr
    assert tree(photos) == before


# --- any file name ----------------------------------------------------------------------------------------------

def test_any_file_name_is_tagged_and_undone(tmp_path, models):
    photos = tmp_path / "-photos with spaces"
    photos.mkdir()
    names = ["with space.png", unicodedata.normalize("NFC", "café.png"), unicodedata.normalize("NFD", "café.png"),
             "-rf.png", "--xmp-undo.png", "new\nline.png", "tab\there.png", "r" * 251 + ".png"]
    for i, name in enumerate(names):
        solid(photos / name, (RED, GREEN, BLUE)[i % 3])
    with open(os.fsencode(photos) + b"/caf\xe9.png", "wb") as f:  # a Latin-1 name from an old camera
        f.write((photos / "-rf.png").read_bytes())
    (photos / "with space.png.xmp").write_text(DARKTABLE_SIDECAR)
    before = tree(photos)
    done = cli(models, tmp_path, "--xmp", "--model", "colour_a", "--", photos.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "XMP sidecars written: 8" in done.stderr  # the 255-byte name's sidecar would be 259 bytes long
    assert done.stderr.count("warning: no sidecar:") == 1 and "File name too long" in done.stderr
    for name in names[:-1]:
        assert read_keywords(photos / (name + ".xmp"))["label"], name
    assert os.path.exists(os.fsencode(photos) + b"/caf\xe9.png.xmp")
    assert (photos / STATE_DIR / "journal.jsonl").read_bytes().isascii()
    undone = cli(models, tmp_path, f"--xmp-undo={photos.name}", cwd=tmp_path)
    assert undone.returncode == 0, undone.stderr
    assert tree(photos) == before


# --- the journal is evidence, not orders ------------------------------------------------------------------------

def _append(folder: Path, records: list[dict]) -> None:
    (folder / STATE_DIR).mkdir(exist_ok=True)
    with open(folder / STATE_DIR / "journal.jsonl", "a", encoding="ascii") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def _hostile_steps(world: Path, run: str) -> list[dict]:
    photos, victim = world / "photos", world / "victim"
    red = tree(photos)["red.jpg"]
    return [  # "delete the sidecar we created" / "restore a backup over it", aimed at files we never wrote
        {"op": "begin", "run": run, "id": f"{run}-0", "sidecar": str(victim / "tax.png.xmp"), "existed": False,
         "old_sha256": None, "new_sha256": tree(victim)["tax.png.xmp"]},
        {"op": "begin", "run": run, "id": f"{run}-1", "sidecar": str(photos / "red.jpg"), "existed": False,
         "old_sha256": None, "new_sha256": red},
        {"op": "begin", "run": run, "id": f"{run}-2", "sidecar": str(photos / ".." / "victim" / "tax.png.xmp"),
         "existed": False, "old_sha256": None, "new_sha256": "0" * 64}]


@pytest.mark.parametrize("binding", ["none", "inode"])
def test_a_planted_journal_is_refused_and_nothing_is_touched(world, models, capsys, binding):
    """A folder someone gave you, with a journal whose lines point at files outside it or at an image. none: a
    run that knows nothing of the folder; inode: the right path, st_dev and st_ino, but not the key."""
    photos = world / "photos"
    run = {"op": "run", "run": "evil", "version": 1, "folder": str(photos)}
    if binding == "inode":
        st = os.stat(photos)
        run.update(folder_real=str(photos), folder_dev=st.st_dev, folder_ino=st.st_ino, key="0" * 32)
    _append(photos, [run, *_hostile_steps(world, "evil")])
    (photos / STATE_DIR / "lock").write_text("1" * 32)
    before = tree(world)
    capsys.readouterr()
    assert main(["classify", "--xmp-undo", str(photos)]) == 2
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 2
    err = capsys.readouterr().err
    assert err.count("cifar10: error: classify: ") == 2 and len(err.strip().splitlines()) == 2, err
    assert "nothing was changed" in err
    assert tree(world) == before  # not a byte, not a sidecar


def test_lines_added_to_a_real_journal_are_refused_whole(world, models, capsys):
    photos = world / "photos"
    original = tree(world)
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 1
    run = next(r for r in journal(photos) if r["op"] == "run")["run"]
    genuine = (photos / STATE_DIR / "journal.jsonl").read_bytes()
    for record in [*_hostile_steps(world, run),
                   {"op": "begin", "run": "other", "id": "other-0", "sidecar": str(photos / "blue.png.xmp"),
                    "existed": False, "old_sha256": None, "new_sha256": tree(photos)["blue.png.xmp"]},
                   {"op": "begin", "run": run, "id": f"{run}-99", "sidecar": str(photos / "x.xmp"),
                    "existed": True, "old_sha256": "../../victim/tax", "new_sha256": "0" * 64}]:
        _append(photos, [record])
        before = tree(world)
        capsys.readouterr()
        assert main(["classify", "--xmp-undo", str(photos)]) == 2, record
        assert main(["classify", str(photos), "--xmp", "--model", "colour_b"]) == 2, record
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 2 and "nothing was changed" in err, (record, err)
        assert tree(world) == before, record
        (photos / STATE_DIR / "journal.jsonl").write_bytes(genuine)
    # A subfolder swapped for a link to victim/ (which has a sidecar of the same name): refused too.
    os.rename(photos / "trip", world / "trip-real")
    os.symlink(world / "victim", photos / "trip")
    shutil.copy(world / "trip-real" / "green.png.xmp", world / "victim" / "green.png.xmp")
    before = tree(world)
    assert main(["classify", "--xmp-undo", str(photos)]) == 2 and tree(world) == before
    os.unlink(photos / "trip")
    os.unlink(world / "victim" / "green.png.xmp")
    os.rename(world / "trip-real", photos / "trip")
    assert main(["classify", "--xmp-undo", str(photos)]) == 0 and tree(world) == original


def test_a_line_aimed_at_a_file_we_did_not_write_leaves_it(world, models, capsys):
    """A line that passes the binding (appended to the real journal) naming the user's own sidecar, with a hash
    that is not its content: undo leaves it. A backup whose bytes were swapped is not restored."""
    photos = world / "photos"
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 1
    run = next(r for r in journal(photos) if r["op"] == "run")["run"]
    (photos / "mine.jpg.xmp").write_text(DARKTABLE_SIDECAR)
    _append(photos, [{"op": "begin", "run": run, "id": f"{run}-50", "sidecar": str(photos / "mine.jpg.xmp"),
                      "existed": False, "old_sha256": None, "new_sha256": "ab" * 32}])
    red = next(r for r in journal(photos) if r["op"] == "begin" and r["sidecar"].endswith("red.jpg.xmp"))
    (photos / STATE_DIR / red["old_sha256"]).write_text(DARKTABLE_SIDECAR.replace("holiday", "forged"))
    tagged_red = tree(photos)["red.jpg.xmp"]
    capsys.readouterr()
    assert main(["classify", "--xmp-undo", str(photos)]) == 1
    out = capsys.readouterr().out
    assert f"{photos / 'mine.jpg.xmp'}: left as it is: changed since it was tagged" in out
    assert f"{photos / 'red.jpg.xmp'}: left as tagged: its backup" in out and "missing or damaged" in out
    assert (photos / "mine.jpg.xmp").read_text() == DARKTABLE_SIDECAR
    assert tree(photos)["red.jpg.xmp"] == tagged_red
    assert not (photos / "blue.png.xmp").exists()  # the rest was undone


def test_links_planted_in_the_journal_folder_are_refused(world, models, capsys):
    photos, victim = world / "photos", world / "victim"
    before = tree(world)
    os.symlink(victim, photos / STATE_DIR)  # our folder, pointing elsewhere: the lock would be written there
    capsys.readouterr()
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 2
    assert main(["classify", "--xmp-undo", str(photos)]) == 2
    assert "not a folder (a link?)" in capsys.readouterr().err
    os.unlink(photos / STATE_DIR)
    (photos / STATE_DIR).mkdir()
    os.symlink(victim / "diary.txt", photos / STATE_DIR / "lock")  # the key would be written into it
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 2
    assert "cannot create" in capsys.readouterr().err
    os.unlink(photos / STATE_DIR / "lock")
    os.rmdir(photos / STATE_DIR)
    assert tree(world) == before


def test_a_second_run_on_the_same_folder_waits_its_turn(world, models, tmp_path, capsys):
    photos = world / "photos"
    assert main(["classify", str(photos), "--xmp", "--model", "colour_a"]) == 1
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from cifar10.xmp_journal import _open_journal;"
                               " held = _open_journal(sys.argv[1]); print('locked', flush=True); time.sleep(60)",
                               str(photos)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(world)
        capsys.readouterr()
        assert main(["classify", str(photos), "--xmp", "--model", "colour_b"]) == 2
        assert main(["classify", "--xmp-undo", str(photos)]) == 2
        assert capsys.readouterr().err.count("is working on") == 2 and tree(world) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert main(["classify", "--xmp-undo", str(photos)]) == 0


def test_nested_runs_undone_outer_first_say_so_and_converge(world, models, tmp_path):
    """`--xmp photos` then `--xmp photos/trip` (a re-run on a subfolder: its own journal). Undoing the outer one
    first leaves trip's sidecar (changed since by the inner run) and names the inner journal's undo; doing that,
    then the outer undo again, brings back every sidecar byte for byte."""
    photos, trip, before = world / "photos", world / "photos" / "trip", tree(world)
    assert cli(models, tmp_path, photos, "--xmp", "--model", "colour_a").returncode == 1  # broken.jpg
    assert cli(models, tmp_path, trip, "--xmp", "--model", "colour_b").returncode == 0
    outer = cli(models, tmp_path, "--xmp-undo", photos)
    assert outer.returncode == 1
    assert (f"{trip / 'green.png.xmp'}: left as it is: changed since it was tagged" in outer.stdout
            and f"{trip} has an XMP journal of its own" in outer.stdout
            and f"`cifar10 classify --xmp-undo {trip}` first, then this undo again" in outer.stdout)
    assert read_keywords(trip / "green.png.xmp")["subject"] == ["family", "ship"]  # left as the inner run wrote
    assert cli(models, tmp_path, "--xmp-undo", trip).returncode == 0
    again = cli(models, tmp_path, "--xmp-undo", photos)
    assert again.returncode == 0, again.stdout + again.stderr
    assert tree(world) == before
