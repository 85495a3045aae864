"""cifar10/labelling.py: labelling into a dataset folder through organize's journal (copy, move, undo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10.labelling import LabelBook, LabelError, label_next_order
from cifar10.organize import JOURNAL_NAME
from cifar10.results import Result
from test_organize_faults import noise_photos, small_disk  # noqa: F401 (small_disk: a fixture, a real 2 MiB tmpfs)


def picture(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 20, 3), colour, np.uint8)).save(path)
    return path


def test_add_copies_never_overwrites_and_undo_reverses_only_the_last_action(tmp_path):
    data = tmp_path / "dataset"
    picture(data / "cat" / "a.png", 10)
    outside = picture(tmp_path / "photos" / "a.png", 200)  # the same name as the dataset's cat/a.png
    other = picture(tmp_path / "photos" / "b.png", 100)
    book = LabelBook(data)
    assert book.classes() == ["cat"]
    first = book.add([outside], "cat")
    assert [d for _, d in first.done] == [str(data / "cat" / "a (2).png")]
    assert (data / "cat" / "a.png").read_bytes() != outside.read_bytes()  # the old one untouched
    second = book.add([other], "dog")  # a new class
    assert book.classes() == ["cat", "dog"] and (data / "dog" / "b.png").exists()
    assert outside.exists() and other.exists()  # the originals stay
    assert book.undo_last() is second
    assert not (data / "dog").exists() and (data / "cat" / "a (2).png").exists()
    assert book.undo_last() is first
    assert sorted(p.name for p in (data / "cat").iterdir()) == ["a.png"]
    assert not (data / JOURNAL_NAME).exists() and book.undo_last() is None


def test_move_corrects_a_dataset_picture_and_undo_puts_it_back(tmp_path):
    data = tmp_path / "dataset"
    wrong = picture(data / "cat" / "x.png", 50)
    picture(data / "dog" / "y.png", 60)
    book = LabelBook(data)
    action = book.move([wrong], "dog")
    assert not wrong.exists() and (data / "dog" / "x.png").exists() and action.kind == "move"
    with pytest.raises(LabelError):
        book.move([picture(tmp_path / "elsewhere.png", 1)], "cat")
    book.undo_last()
    assert wrong.exists() and not (data / "dog" / "x.png").exists()


def test_bad_class_names_are_refused(tmp_path):
    book = LabelBook(tmp_path / "d")
    src = picture(tmp_path / "p.png", 1)
    for bad in ("", "a/b", "_unsure", "confidence"):
        with pytest.raises(LabelError):
            book.add([src], bad)


def test_label_next_puts_the_most_unsure_first(tmp_path):
    book = LabelBook(tmp_path / "d")
    picture(tmp_path / "d" / "cat" / "in.png", 1)
    rows = [Result(str(tmp_path / name), "cat", max(p), probabilities=np.array(p), classes=("cat", "dog"))
            for name, p in (("sure.png", [0.95, 0.05]), ("unsure.png", [0.52, 0.48]), ("mid.png", [0.7, 0.3]))]
    rows.append(Result(str(tmp_path / "d" / "cat" / "in.png"), "cat", 0.5, probabilities=np.array([0.5, 0.5]),
                       classes=("cat", "dog")))
    assert [r.path.rsplit("/", 1)[1] for r in label_next_order(rows, book)] == ["unsure.png", "mid.png", "sure.png"]


def test_a_split_dataset_gets_new_pictures_in_its_train_folder(tmp_path):
    data = tmp_path / "dataset"
    picture(data / "train" / "cat" / "a.png", 10)
    picture(data / "test" / "cat" / "b.png", 20)
    book = LabelBook(data)
    assert book.classes() == ["cat"]
    book.add([picture(tmp_path / "new.png", 30)], "dog")
    assert (data / "train" / "dog" / "new.png").exists() and book.classes() == ["cat", "dog"]


def test_a_full_disk_stops_part_way_and_what_was_copied_is_undoable(tmp_path, small_disk):
    """A labelling copy that fills the disk: one clear error, the copies made until then are an action of the
    book (the app's Undo reverses them), the originals never change."""
    import hashlib

    photos = noise_photos(tmp_path / "photos", 14)  # 14 x ~197 KB into a 2 MiB disk: about 10 fit
    originals = sorted(photos.rglob("*.png"))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals}
    book = LabelBook(small_disk / "dataset")
    with pytest.raises(LabelError, match="No space left on device") as stopped:
        book.add(originals, "noise")
    action = stopped.value.action
    copied = [dst for _, dst in action.done]
    assert 0 < len(copied) < 14 and book.can_undo and book.actions == [action]
    assert all(hashlib.sha256(open(dst, "rb").read()).hexdigest() == before[Path(src)] for src, dst in action.done)
    assert book.undo_last() is action
    assert not list((small_disk / "dataset").rglob("*.png"))  # every copy taken back
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals} == before


def test_a_stopped_copy_keeps_what_it_did_as_an_undoable_action(tmp_path):
    """should_stop() turning true part-way (Labels ▸ Stop Labelling): the copy stops at a group boundary, the
    pictures copied so far are byte-identical and form one action marked stopped, the rest are not copied,
    and undo_last takes back exactly those; the originals never change."""
    import hashlib

    from cifar10.organize import GROUP

    photos = noise_photos(tmp_path / "photos", 3 * GROUP, side=32)
    originals = sorted(photos.rglob("*.png"))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals}
    book = LabelBook(tmp_path / "dataset")
    progress: list[int] = []
    action = book.add(originals, "noise", on_progress=lambda done, total: progress.append(done),
                      should_stop=lambda: bool(progress) and progress[-1] >= GROUP)
    copied = sorted((tmp_path / "dataset" / "noise").glob("*.png"))
    assert action.stopped and len(action.done) == GROUP == len(copied) and book.actions == [action]
    assert all(hashlib.sha256(Path(dst).read_bytes()).hexdigest() == before[Path(src)] for src, dst in action.done)
    assert book.can_undo and book.undo_last() is action
    assert not list((tmp_path / "dataset").rglob("*.png"))
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in originals} == before
    again = book.add(originals[:3], "noise")  # a later action is not stopped
    assert not again.stopped and len(again.done) == 3
