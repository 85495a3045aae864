"""Label, correct, new class, retrain and undo in the real window (pytest-qt, offscreen), and Check Labels.

The retrain is a REAL `cifar10 train` child process, with ``test_linear`` (a tiny frozen CNN + the instant
model's linear head: seconds) on colour classes; the user's folders point at tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")


from cifar10.labelling import margin  # noqa: E402
from cifar10.organize import JOURNAL_NAME  # noqa: E402
from cifar10.paths import user_models_dir  # noqa: E402
from desktop_app.train_process import retrain_runs_dir, training_unavailable  # noqa: E402
from desktop_fixtures import isolate_user_dirs, open_window  # noqa: E402
from test_retrain_runs import run as run_folder  # noqa: E402
from test_train_folder import CLASSES, write_folder  # noqa: E402

pytestmark = pytest.mark.skipif(training_unavailable() is not None, reason="needs the training extra")
TIMEOUT_MS = 300_000


@pytest.fixture()
def window(qtbot, tmp_path, monkeypatch):
    isolate_user_dirs(tmp_path, monkeypatch)
    with open_window(qtbot, tmp_path / "settings.ini") as win:
        yield win


def photo(path, colour, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(np.clip(rng.normal(colour, 30, (48, 48, 3)), 0, 255).astype(np.uint8)).save(path)
    return path


def select(window, *paths):
    view = window.results
    view.clearSelection()
    rows = [row for row in range(view.proxy.rowCount())
            if view.result_at(view.proxy.index(row, 0)).path in {str(p) for p in paths}]
    assert len(rows) == len(paths)
    for row in rows:
        view.selectionModel().select(view.proxy.index(row, 0), view.selectionModel().SelectionFlag.Select
                                     | view.selectionModel().SelectionFlag.Rows)
    view.setCurrentIndex(view.proxy.index(rows[0], 0)) if len(rows) == 1 else None


def wait_labelled(qtbot, labelling):
    """Until the labelling copies, moves and undos under way (on a worker) are done."""
    assert labelling.wait(60)


def undo(qtbot, labelling):
    """Labels ▸ Undo, waited for: the action it undid (None: there was none)."""
    assert labelling.undo()
    wait_labelled(qtbot, labelling)
    return labelling.last_undone


def retrain(qtbot, labelling, model="test_linear"):
    assert labelling.retrain(model)
    qtbot.waitUntil(lambda: not labelling.process.running, timeout=TIMEOUT_MS)
    outcome = labelling.last_outcome
    assert outcome.ok, f"{outcome.error}\n" + "\n".join(outcome.stderr_tail)
    return outcome


def test_add_correct_new_class_retrain_and_undo(qtbot, window, tmp_path, monkeypatch):
    dataset = write_folder(tmp_path / "dataset", per_class=8)
    labelling = window.labelling
    labelling.set_dataset(dataset)
    assert labelling.classes == list(CLASSES) and labelling.add_menu.isEnabled()
    first = retrain(qtbot, labelling)
    assert window.current_model.name == "dataset-instant"
    assert "Improve" not in labelling.retrain_text  # 8 pictures per class: far below where fine-tuning pays off
    assert (user_models_dir() / "dataset-instant.onnx").is_file()
    # The run is in the user's cache folder (tmp_path here), made for the user only; Improve starts from its head.
    runs = retrain_runs_dir()
    assert Path(first.run_dir).parent == runs and str(runs).startswith(str(tmp_path))
    assert runs.stat().st_mode & 0o777 == 0o700
    dialog = window.show_train_dialog()
    dialog.set_folder(str(dataset))
    assert dialog.wait_scan(30)
    dialog.model_box.setCurrentText("test_transfer")
    command = dialog.command()
    assert command[command.index("--init-head") + 1] == first.run_dir
    dialog.close()

    photos = tmp_path / "photos"
    red, green, purple = (photo(photos / f"{n}.png", c, i) for i, (n, c) in
                          enumerate((("red", (200, 60, 40)), ("green", (40, 170, 60)), ("purple", (200, 40, 220)))))
    window.add_paths([photos])
    qtbot.waitUntil(lambda: not window.busy and len(window.results_model.results()) == 3, timeout=60000)

    # Key 1 adds the selection to the first class (cat): a verified copy, the original stays.
    select(window, red)
    labelling.key_actions[0].trigger()
    wait_labelled(qtbot, labelling)
    assert (dataset / "cat" / "red.png").read_bytes() == red.read_bytes() and red.exists()
    # "This is actually ▸ dog" on a picture from elsewhere copies it into dog/.
    select(window, green)
    next(a for a in labelling.actually_menu.actions() if a.text() == "dog").trigger()
    wait_labelled(qtbot, labelling)
    assert (dataset / "dog" / "green.png").exists() and green.exists()
    # ... and on a dataset picture it moves it (a correction); its row follows the file.
    wrong = dataset / "cat" / "cat_00.jpg"
    window.add_paths([wrong])
    qtbot.waitUntil(lambda: not window.busy and len(window.results_model.results()) == 4, timeout=60000)
    select(window, wrong)
    labelling.label_selected("frog", correct=True)
    wait_labelled(qtbot, labelling)
    assert not wrong.exists() and (dataset / "frog" / "cat_00.jpg").exists()
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    assert window.session.result(str(dataset / "frog" / "cat_00.jpg")) is not None
    assert undo(qtbot, labelling).kind == "move"  # undo: back to cat/, and the row with it
    assert wrong.exists() and not (dataset / "frog" / "cat_00.jpg").exists()
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)

    # New class… with the purple picture, then Retrain: the rows re-classify with four classes.
    select(window, purple)
    labelling.new_class("plum")
    wait_labelled(qtbot, labelling)
    monkeypatch.setattr("desktop_app.labelling.IMPROVE_FROM_PER_CLASS", 1)  # so this tiny folder is "large enough"
    assert (dataset / "plum" / "purple.png").exists() and labelling.classes == [*CLASSES, "plum"]
    assert [a.text() for a in labelling.add_menu.actions()][:4] == ["cat\t1", "dog\t2", "frog\t3", "plum\t4"]
    planted = [run_folder(runs, f"older-{day}", data=dataset, classes=[*CLASSES, "plum"], model="test_linear",
                          size=32, finished=f"2025-01-0{day}T00:00:00") for day in (1, 2)]
    outcome = retrain(qtbot, labelling)
    assert outcome.exported["classes"] == [*CLASSES, "plum"]
    # After it, the newest two runs on this folder with these classes stay (and the one with the old classes).
    assert not planted[0].exists() and planted[1].is_dir() and Path(first.run_dir).is_dir()
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    assert tuple(window.current_model.labels) == (*CLASSES, "plum")
    results = {r.path: r for r in window.results_model.results()}
    assert all(r.classes == (*CLASSES, "plum") for r in results.values())
    assert labelling.retrain_text.startswith("Retrained dataset-instant in ")
    assert labelling.retrain_text.endswith("fine-tuning should do better: Models ▸ Train on a Folder… ▸ Improve (minutes)")

    # Undo reverses the newest action first: the new class's picture, then the other additions.
    assert undo(qtbot, labelling).label == "plum" and not (dataset / "plum").exists()
    assert undo(qtbot, labelling).label == "dog" and not (dataset / "dog" / "green.png").exists()
    assert undo(qtbot, labelling).label == "cat" and not (dataset / "cat" / "red.png").exists()
    assert undo(qtbot, labelling) is None and not labelling.undo_action.isEnabled()
    assert not (dataset / JOURNAL_NAME).exists() and red.exists() and green.exists() and purple.exists()


def test_label_next_orders_unlabelled_pictures_by_uncertainty(qtbot, window, tmp_path):
    dataset = write_folder(tmp_path / "dataset", per_class=8)
    labelling = window.labelling
    labelling.set_dataset(dataset)
    retrain(qtbot, labelling)
    photos = tmp_path / "photos"
    sure = photo(photos / "sure.png", (200, 60, 40), 1)
    between = photo(photos / "between.png", (120, 115, 50), 2)  # halfway between cat's and dog's colours
    window.add_paths([photos, dataset / "dog" / "dog_01.png"])
    qtbot.waitUntil(lambda: not window.busy and len(window.results_model.results()) == 3, timeout=60000)
    dialog = labelling.show_label_next()
    assert sorted(dialog.paths()) == sorted([str(between), str(sure)])  # the dataset picture is not listed
    margins = [margin(window.session.result(p).probabilities) for p in dialog.paths()]
    assert margins == sorted(margins)  # most unsure first
    first = dialog.paths()[0]
    labelling.key_actions[0].trigger()  # the first one is selected in the table: 1 labels it
    wait_labelled(qtbot, labelling)
    assert (dataset / "cat" / first.rsplit("/", 1)[1]).exists()
    assert dialog.paths() == [p for p in (str(between), str(sure)) if p != first]


def test_check_labels_lists_planted_mistakes_and_moves_them(qtbot, window, tmp_path):
    dataset = write_folder(tmp_path / "dataset", per_class=12)
    planted = {dataset / "dog" / "cat_03.png": "cat", dataset / "cat" / "frog_04.jpg": "frog"}
    shutil.move(dataset / "cat" / "cat_03.png", dataset / "dog" / "cat_03.png")
    shutil.move(dataset / "frog" / "frog_04.jpg", dataset / "cat" / "frog_04.jpg")
    labelling = window.labelling
    labelling.set_dataset(dataset)
    dialog = labelling.show_check_labels("test_linear")
    qtbot.waitUntil(lambda: not labelling.checker.running, timeout=TIMEOUT_MS)
    rows = labelling.issues
    assert {r["path"] for r in rows[:2]} == {str(p) for p in planted}
    # Its progress: the pictures read, then their features computed (36 pictures + the corrupt JPEG), then done.
    stages = [e for e in dialog.events if e["event"] in ("cache", "features")]
    assert [e["event"] for e in stages][-1] == "features" and stages[0]["event"] == "cache"
    assert stages[-1]["done"] == stages[-1]["total"] == 36 and dialog.events[-1]["event"] == "done"
    assert dialog.progress.format() == "Done" and not dialog.cancel_button.isEnabled()
    assert dialog.list.count() == len(rows) and not dialog.list.item(0).icon().isNull()
    assert dialog.move_button.isEnabled()
    for i in range(2):
        dialog.list.item(i).setSelected(True)
    dialog.move_button.click()
    assert not dialog.move_button.isEnabled()  # one labelling at a time
    wait_labelled(qtbot, labelling)
    for wrong, true in planted.items():
        assert not wrong.exists() and (dataset / true / wrong.name).exists()
    assert dialog.list.count() == len(rows) - 2
    labelling.undo()
    labelling.undo()  # pressed while the first Undo runs: it waits for it
    wait_labelled(qtbot, labelling)
    assert all(p.exists() for p in planted)


def test_check_labels_can_be_cancelled_and_closing_its_dialog_cancels_it(qtbot, window, tmp_path):
    from PySide6.QtWidgets import QApplication, QMessageBox

    dataset = write_folder(tmp_path / "dataset", per_class=12)
    before = sorted(dataset.rglob("*"))
    labelling = window.labelling
    labelling.set_dataset(dataset)
    dialog = labelling.show_check_labels("test_linear")
    assert labelling.checker.running and dialog.cancel_button.isEnabled()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not labelling.checker.running, timeout=60000)
    assert dialog.progress.format() == "Cancelled" and dialog.status.text().startswith("Cancelled")
    assert "done" not in [e["event"] for e in dialog.events]  # the child was stopped, it did not finish
    assert labelling.issues == [] and dialog.list.count() == 0 and not dialog.move_button.isEnabled()
    assert not any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets())
    assert sorted(dataset.rglob("*")) == before  # nothing in the user's folder changed

    again = labelling.show_check_labels("test_linear")
    again.close()
    qtbot.waitUntil(lambda: not labelling.checker.running, timeout=60000)
    assert again.progress.format() == "Cancelled" and "done" not in [e["event"] for e in again.events]


def test_a_correction_keeps_the_row_in_place_with_its_answer(qtbot, window, tmp_path):
    """"This is actually" on a dataset picture moves the file to another class folder: its row follows it where
    it stands, with the answer it had (the same bytes: nothing is read again), and Undo takes it back."""
    dataset = tmp_path / "dataset"
    paths = [photo(dataset / cls / f"{cls}_{i}.png", colour, i)
             for cls, colour in (("cat", (200, 60, 40)), ("dog", (40, 170, 60))) for i in range(3)]
    labelling = window.labelling
    labelling.set_dataset(dataset)
    window.add_paths([dataset])
    qtbot.waitUntil(lambda: not window.busy and len(window.results_model.results()) == 6, timeout=60000)
    before = window.results_model.results()
    wrong = next(p for p in paths if p.name == "cat_1.png")
    row = [r.path for r in before].index(str(wrong))
    answer = before[row]
    select(window, wrong)
    labelling.label_selected("dog", correct=True)
    wait_labelled(qtbot, labelling)
    moved = dataset / "dog" / "cat_1.png"
    assert moved.is_file() and not wrong.exists()
    assert not window.busy  # nothing to classify again: the file is the same
    after = window.results_model.results()
    assert [r.path for r in after] == [str(moved) if r.path == str(wrong) else r.path for r in before]
    assert after[row].label == answer.label and after[row].probabilities == pytest.approx(answer.probabilities)
    assert window.selected_result().path == str(moved)
    undo(qtbot, labelling)
    assert wrong.is_file() and not moved.exists() and not window.busy
    assert [r.path for r in window.results_model.results()] == [r.path for r in before]


def test_labelling_many_large_pictures_keeps_the_window_responsive(qtbot, window, tmp_path):
    """Add to Class copies and verifies every file: on a worker, with progress in the status bar. The window's
    event loop keeps running, further labelling waits (its actions are disabled), Undo pressed meanwhile undoes
    it once it is done, and the files land byte for byte as before."""
    import hashlib

    from PySide6.QtCore import QTimer

    def sha256(path):
        return hashlib.sha256(path.read_bytes()).hexdigest()

    dataset = tmp_path / "dataset"
    for cls in ("cat", "dog"):
        (dataset / cls).mkdir(parents=True)
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    paths = []
    for i in range(150):  # "large photos": 512 KiB each (the copy does not decode them)
        path = photos / f"IMG_{i:04d}.jpg"
        path.write_bytes(rng.bytes(512 * 1024))
        paths.append(path)
    sums = {p.name: sha256(p) for p in paths}
    labelling = window.labelling
    labelling.set_dataset(dataset)
    messages, labelled = [], []
    window.session.message.connect(lambda text, ms: messages.append(text))
    labelling.labelled.connect(labelled.append)
    ticks = []
    timer = QTimer(window)
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(labelling.busy))
    timer.start()

    assert labelling.label_selected("cat", paths=[str(p) for p in paths])
    # The action returned before the copy was done: its result comes later, and labelling waits meanwhile.
    assert labelling.busy and labelled == []
    assert not labelling.add_menu.isEnabled() and not labelling.key_actions[0].isEnabled()
    assert not labelling.label_selected("dog", paths=[str(paths[0])])
    wait_labelled(qtbot, labelling)
    timer.stop()
    assert ticks.count(True) >= 3  # the event loop ran while the files were copied
    assert len(labelled) == 1 and labelled[0].label == "cat" and len(labelled[0].done) == 150
    assert any("/ 150" in text for text in messages)  # progress in the status bar
    assert messages[-1].startswith("150 pictures added to cat")
    assert labelling.add_menu.isEnabled() and labelling.key_actions[0].isEnabled()
    assert {p.name: sha256(p) for p in (dataset / "cat").iterdir()} == sums
    assert {p.name: sha256(p) for p in paths} == sums  # the originals stay as they were

    # Undo while another labelling copies: it waits for it, then undoes it (the newest action).
    assert labelling.label_selected("dog", paths=[str(p) for p in paths[:60]])
    assert labelling.undo() and labelling.busy
    wait_labelled(qtbot, labelling)
    assert labelling.last_undone is not None and labelling.last_undone.label == "dog"
    assert not any((dataset / "dog").glob("*.jpg"))
    assert {p.name: sha256(p) for p in (dataset / "cat").iterdir()} == sums


def test_stop_labelling_and_closing_the_window_during_a_copy(qtbot, window, tmp_path):
    """Labels ▸ Stop Labelling stops a long copy after the files in hand: what was copied is byte-identical,
    the status bar says how many of how many, and Undo takes them back. Closing the window while pictures are
    copied asks: Keep Working keeps the window and the copy going, Stop and Close stops it, waits for the
    worker and closes; every file in the dataset then is a verified copy of its original."""
    import hashlib

    from test_desktop_train import answer_replace_question

    def sha256(path):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    dataset = tmp_path / "dataset"
    (dataset / "cat").mkdir(parents=True)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(200):
        path = photos / f"IMG_{i:04d}.jpg"
        path.write_bytes(rng.bytes(512 * 1024))
        paths.append(path)
    sums = {str(p): sha256(p) for p in paths}
    labelling = window.labelling
    labelling.set_dataset(dataset)
    messages, labelled = [], []
    window.session.message.connect(lambda text, ms: messages.append(text))
    labelling.labelled.connect(labelled.append)

    assert not labelling.stop_action.isEnabled() and not labelling.stop()  # nothing to stop
    assert labelling.label_selected("cat", paths=[str(p) for p in paths])
    assert labelling.stop_action.isEnabled()
    qtbot.waitUntil(lambda: any(m.startswith("Adding pictures to cat: ") and not m.startswith("Adding pictures to "
                                                                                            "cat: 0 /")
                                for m in messages), timeout=60_000)  # some pictures copied
    assert labelling.stop() and not labelling.stop_action.isEnabled()  # asked once
    wait_labelled(qtbot, labelling)
    action = labelled[-1]
    copied = sorted((dataset / "cat").glob("*.jpg"))
    assert action.stopped and len(action.done) == len(copied) < 200
    assert all(sha256(dst) == sums[src] for src, dst in action.done)
    assert messages[-1].startswith(f"Stopped: {len(copied)} of 200 pictures added to cat")
    assert undo(qtbot, labelling) is action and not list((dataset / "cat").glob("*.jpg"))

    # Closing the window during a copy: Keep Working keeps both going.
    assert labelling.label_selected("cat", paths=[str(p) for p in paths])
    asked = answer_replace_question(qtbot, "Keep Working", "labelling_close_question")
    window.close()
    assert asked == ["Pictures are still being copied into the dataset."]
    assert window.isVisible() and labelling.busy
    # Stop and Close: the copy stops after the files in hand, the window closes once the worker is done.
    asked = answer_replace_question(qtbot, "Stop and Close", "labelling_close_question")
    window.close()
    assert asked and not window.isVisible() and not labelling.busy
    done = [pair for action in labelling.book.actions[-1:] for pair in action.done]
    assert sorted(dst for _, dst in done) == sorted(str(p) for p in (dataset / "cat").glob("*.jpg"))
    assert all(sha256(dst) == sums[src] for src, dst in done)
    assert {str(p): sha256(p) for p in paths} == sums  # the originals never change
