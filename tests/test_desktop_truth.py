"""Issue 24 in the real window (pytest-qt, offscreen): what the window shows is always true. Real files, real
onnxruntime sessions of tiny models; each test is one defect found by hand under Xvfb."""

import os

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QApplication  # noqa: E402

from cifar10.inference import Classifier, classify_files  # noqa: E402
from cifar10.registry import load_model_info  # noqa: E402
from desktop_app.main_window import APP_NAME  # noqa: E402
from desktop_app.results_model import COL_CLASS, COL_ERROR  # noqa: E402
from image_files import solid  # noqa: E402
from onnx_fixtures import BLUE, GREEN, MAPPING_B, RED, write_model  # noqa: E402
from desktop_fixtures import open_window  # noqa: E402


@pytest.fixture()
def models_dir(tmp_path):
    directory = tmp_path / "models"
    write_model(directory, "colour_a", test_accuracy=0.6)
    write_model(directory, "colour_b", test_accuracy=0.8, mapping=MAPPING_B)
    return directory


@pytest.fixture()
def window(qtbot, models_dir, tmp_path):
    with open_window(qtbot, tmp_path / "settings.ini", model_dirs_=[models_dir], initial_model="colour_a") as win:
        yield win


def load(qtbot, win, paths):
    win.add_paths(paths)
    wait_done(qtbot, win)


def wait_done(qtbot, win):
    qtbot.waitUntil(lambda: not win.busy, timeout=20000)
    QApplication.processEvents()


def colours(folder, n):
    return [solid(folder / f"f{i:03d}.png", (RED, GREEN, BLUE)[i % 3]) for i in range(n)]


def labels(win):
    return {os.path.basename(r.path): r.label for r in win.results_model.results()}


def test_a_model_retrained_under_the_same_name_is_reloaded_and_applied(qtbot, window, models_dir, tmp_path):
    paths = colours(tmp_path / "imgs", 6)
    load(qtbot, window, [tmp_path / "imgs"])
    window.select_row(0)
    assert set(labels(window).values()) == {"airplane", "automobile", "bird"}
    # Re-trained in a terminal under the same name (66.7 %, other weights): Reload (F5) picks it up.
    os.remove(models_dir / "colour_a.onnx")
    write_model(models_dir, "colour_a", test_accuracy=0.667, mapping=MAPPING_B)
    window.reload_action.trigger()
    wait_done(qtbot, window)
    assert "66.7% test accuracy" in window.model_combo.currentText()
    fresh = Classifier(load_model_info(models_dir / "colour_a.onnx"))
    cli = {os.path.basename(r.path): r.label for r in classify_files(fresh, [str(p) for p in paths])}
    assert labels(window) == cli and set(cli.values()) == {"horse", "ship", "truck"}  # the table
    selected = window.selected_result()
    assert selected.label in window.preview.title.text()  # the preview and its bars
    assert list(window.preview.bars.probabilities()) == pytest.approx(list(selected.probabilities))
    dialog = window.show_model_card()  # Model Details: the new card
    assert dialog.model.test_accuracy == pytest.approx(0.667)
    dialog.close()
    assert window.statusBar().currentMessage().startswith("Classified 6 files")


def test_a_model_file_copied_over_is_picked_up_without_reload(qtbot, window, models_dir, tmp_path):
    colours(tmp_path / "imgs", 3)
    load(qtbot, window, [tmp_path / "imgs"])
    os.remove(models_dir / "colour_a.onnx")
    write_model(models_dir, "colour_a", test_accuracy=0.7, mapping=MAPPING_B)
    # The window looks at the model folders every 2 s (and when activated) and acts once the files are stable.
    qtbot.waitUntil(lambda: "70.0% test accuracy" in window.model_combo.currentText(), timeout=10000)
    wait_done(qtbot, window)
    assert set(labels(window).values()) == {"horse", "ship", "truck"}


def test_model_switch_progress_counts_reclassified_rows(qtbot, window, tmp_path):
    colours(tmp_path / "imgs", 30)
    load(qtbot, window, [tmp_path / "imgs"])
    shown = []
    window.progress.valueChanged.connect(lambda v: shown.append((v, window.progress.maximum())))
    window.set_model("colour_b")
    wait_done(qtbot, window)
    assert shown and shown[-1] == (30, 30) and max(v for v, _ in shown) == 30
    assert window.statusBar().currentMessage().startswith("Classified 30 files")


def test_clear_resets_filters_and_a_filter_says_n_of_m_shown(qtbot, window, tmp_path):
    colours(tmp_path / "imgs", 6)
    load(qtbot, window, [tmp_path / "imgs"])
    window.class_filter.setCurrentIndex(window.class_filter.findData("bird"))
    assert window.proxy.rowCount() == 2 and window.counts_label.text() == "2 of 6 shown"
    window.search.setText("f005")
    assert window.proxy.rowCount() == 1 and window.counts_label.text() == "1 of 6 shown"
    window.clear_action.trigger()
    assert window.class_filter.currentData() is None and window.search.text() == ""
    assert window.counts_label.text() == "0 files"
    load(qtbot, window, [tmp_path / "imgs"])
    assert window.proxy.rowCount() == 6 and window.counts_label.text() == "6 files"
    # A model switch keeps a class the new model also knows, and the status bar says rows are hidden.
    window.class_filter.setCurrentIndex(window.class_filter.findData("bird"))
    window.set_model("colour_b")  # bird -> nothing: colour_b says horse/ship/truck
    wait_done(qtbot, window)
    assert window.proxy.rowCount() == 0 and window.counts_label.text() == "0 of 6 shown"
    assert window.statusBar().currentMessage().startswith("Classified 6 files")


def test_non_image_files_are_skipped_and_counted(qtbot, window, tmp_path):
    folder = tmp_path / "mixed"
    colours(folder, 2)
    (folder / "notes.txt").write_text("x")
    (folder / "scan.pdf").write_bytes(b"%PDF")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    load(qtbot, window, [folder])
    assert sorted(labels(window)) == ["broken.jpg", "f000.png", "f001.png"]
    assert window.counts_label.text() == "3 files · 1 could not be read · 2 other files skipped"


def test_error_rows_are_readable(qtbot, window, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    load(qtbot, window, [tmp_path / "broken.jpg"])
    model = window.results_model
    error = model.data(model.index(0, COL_ERROR))
    assert error and model.data(model.index(0, COL_CLASS)) == "could not be read"
    assert error in model.data(model.index(0, COL_CLASS), 3)  # Qt.ToolTipRole: the whole text, whatever the width


def test_title_and_toolbar_at_1000_px(qtbot, window):
    assert window.windowTitle() == "colour_a" and APP_NAME not in window.windowTitle()
    window.set_model("colour_b")
    wait_done(qtbot, window)
    assert window.windowTitle() == "colour_b"
    window.resize(1000, 700)
    qtbot.waitUntil(lambda: window.width() == 1000, timeout=5000)
    QApplication.processEvents()
    for widget, least in ((window.model_combo, 250), (window.search, 140), (window.class_filter, 100)):
        assert widget.isVisible() and widget.width() >= least, (widget, widget.width())
        assert widget.geometry().right() <= window.toolbar.width()


# --- training guardrails --------------------------------------------------------------------------------------

def trained_model(models_dir, name, accuracy, *, n=30, matrix=None):
    from cifar10.registry import load_model_info

    classes = ("cat", "dog", "hamster")
    card = {"test_metrics": {"n": n, "accuracy": accuracy,
                             "per_class": {c: {"recall": r} for c, r in zip(classes, (0.9, 0.2, 0.4))},
                             "confusion_matrix": matrix or [[9, 1, 0], [6, 2, 2], [3, 3, 4]]}}
    return load_model_info(write_model(models_dir, name, class_names=classes, test_accuracy=accuracy, card=card))


def test_a_model_at_chance_is_not_switched_in(qtbot, window, models_dir, tmp_path):
    colours(tmp_path / "imgs", 6)
    load(qtbot, window, [tmp_path / "imgs"])
    before = labels(window)
    data = tmp_path / "pets"
    for name, colour in (("cat", RED), ("dog", GREEN), ("hamster", BLUE)):
        solid(data / name / "a.png", colour)
    trained_model(models_dir, "three_epochs", 1 / 3, n=21)
    epochs = [{"event": "epoch", "epoch": k, "epochs": 40, "accuracy": 0.5 + k / 82, "val_accuracy": 0.6}
              for k in range(1, 41)]
    dialog = window.review_trained_model(str(models_dir / "three_epochs.onnx"), epochs, str(data))
    assert window.current_model.name == "colour_a" and not window.busy and labels(window) == before
    assert "three_epochs" in window.model_combo.itemText(window.model_combo.findData("three_epochs"))  # listed
    text = dialog.warnings.text()
    assert dialog.warnings.isVisible() and "At chance level: 33.3%" in text and "Overfitting: 99%" in text
    assert "Few test pictures: 21 for 3 classes" in text
    assert "guessing would give 33.3%" in dialog.comparison.text()
    assert dialog.keep_button.isDefault() and not dialog.use_button.isDefault()
    assert dialog.recall.rows() == [("cat", pytest.approx(0.9)), ("dog", pytest.approx(0.2)), ("hamster", pytest.approx(0.4))]
    assert "<b>dog</b> taken for <b>cat</b>" in dialog.confused.text()
    assert [label.has_image() for label in dialog.pictures] == [True, True]  # one picture of each from the folder
    assert len(dialog.chart.points) == 40
    dialog.grab()
    dialog.keep_button.click()
    assert window.current_model.name == "colour_a" and labels(window) == before


def test_use_this_model_switches_and_reclassifies(qtbot, window, models_dir, tmp_path):
    colours(tmp_path / "imgs", 3)
    load(qtbot, window, [tmp_path / "imgs"])
    write_model(models_dir, "colour_c", test_accuracy=0.95, mapping=MAPPING_B,
                card={"test_metrics": {"n": 1000, "accuracy": 0.95}})
    dialog = window.review_trained_model(str(models_dir / "colour_c.onnx"), [], None)
    assert "better than colour_a (60.0%)" in dialog.comparison.text() and dialog.use_button.isDefault()
    assert window.current_model.name == "colour_a"
    dialog.use_button.click()
    wait_done(qtbot, window)
    assert window.current_model.name == "colour_c" and set(labels(window).values()) == {"horse", "ship", "truck"}


def test_the_train_dialog_draws_accuracy_live(qtbot, window):
    dialog = window.show_train_dialog()  # deletes itself on close
    dialog.process.event.emit({"event": "epoch", "epoch": 1, "epochs": 3, "accuracy": 0.4, "val_accuracy": 0.35})
    dialog.process.event.emit({"event": "epoch", "epoch": 2, "epochs": 3, "accuracy": 0.6, "val_accuracy": 0.5})
    assert dialog.chart.points == [(1, 0.4, 0.35), (2, 0.6, 0.5)] and dialog.chart.epochs == 3
    assert dialog.chart.isVisibleTo(dialog)
    dialog.chart.grab()
    dialog.close()


# --- Evaluate: true class, large preview, model choice, the CLI's report --------------------------------------

def test_evaluate_true_class_preview_model_choice_and_report(qtbot, window, models_dir, tmp_path, monkeypatch):
    import json

    from PySide6.QtCore import QItemSelectionModel, Qt

    from cifar10_cli.main import main as cli_main
    from desktop_app.evaluation_view import COL_TRUE, WRONG_COLOUR
    from test_evaluate import labelled_folder

    root = labelled_folder(tmp_path / "lab")
    dialog = window.show_evaluation_dialog()
    assert [dialog.model_box.itemData(i) for i in range(dialog.model_box.count())] == ["colour_b", "colour_a"]
    assert dialog.model_box.currentData() == "colour_a"
    dialog.evaluate(str(root))
    assert dialog.wait(30) and dialog.evaluation is not None, dialog.last_error
    images, shown = dialog.images, {}
    for row in range(images.rowCount()):
        result = images.result(row)
        shown[os.path.basename(result.path)] = (images.data(images.index(row, COL_TRUE)),
                                                images.data(images.index(row, COL_CLASS), Qt.ItemDataRole.ForegroundRole))
    assert shown["r_wrong.png"] == ("bird", WRONG_COLOUR) and shown["r1.png"] == ("airplane", None)
    assert shown["broken.jpg"][0] == "bird"
    assert dialog.table.horizontalHeader().visualIndex(COL_TRUE) < dialog.table.horizontalHeader().visualIndex(COL_CLASS)
    # A click shows the image large, with its probabilities and its true class.
    row = dialog.shown_paths().index(str(root / "Bird" / "r_wrong.png"))
    dialog.table.selectionModel().setCurrentIndex(dialog.images_filter.index(row, 1),
                                                  QItemSelectionModel.SelectionFlag.ClearAndSelect)
    assert dialog.preview.image.has_image() and "true class: bird" in dialog.preview.title.text()
    assert "airplane" in dialog.preview.title.text()
    # The report is the CLI's, byte for byte in content.
    report = tmp_path / "app.json"
    dialog.export_report(report)
    assert cli_main(["evaluate", "--folder", str(root), "--model", str(models_dir / "colour_a.onnx"),
                     "-o", str(tmp_path / "cli.json")]) == 1  # broken.jpg: not read
    app, cli = json.loads(report.read_text()), json.loads((tmp_path / "cli.json").read_text())
    assert app.keys() == cli.keys()
    for key in app:
        if key not in ("date", "seconds", "elapsed_s"):
            assert app[key] == cli[key], key
    # Another model, without touching the window's.
    dialog.model_box.setCurrentIndex(dialog.model_box.findData("colour_b"))
    assert dialog.wait(30) and dialog.evaluation is not None and dialog.evaluation.model_name == "colour_b"
    assert window.current_model.name == "colour_a"
    dialog.close()


def test_the_train_dialog_remembers_its_settings_and_keeps_its_layout(qtbot, window, tmp_path):
    data = tmp_path / "pets"
    for name, colour in (("cat", RED), ("dog", GREEN)):
        for i in range(12):
            solid(data / name / f"{i}.png", colour, size=(8, 8))
    dialog = window.show_train_dialog()
    dialog.set_folder(str(data))
    assert dialog.wait_scan(30)
    # The scan does not promise what only decoding can tell.
    assert dialog.problem_texts() == ["No problems in the folders and file names so far (each picture is checked "
                                      "when training reads it)."]
    dialog.model_box.setCurrentText("baseline")
    dialog.epochs.setValue(7)
    dialog.image_size.setValue(48)
    # The hint under "Save as" does not move the fields when it changes (2 lines are reserved).
    dialog.name_note.setText("")
    QApplication.processEvents()
    top = dialog.name_edit.geometry().top()
    epochs_top = dialog.epochs.geometry().top()
    dialog.name_note.setText("<span>A model named x is in /some/long/folder/name/that/wraps/over/two/lines/of/the/"
                             "dialog/because/it/is/long: training replaces it.</span>")
    QApplication.processEvents()
    assert dialog.name_edit.geometry().top() == top and dialog.epochs.geometry().top() == epochs_top
    dialog.folder_edit.setFocus()
    dialog.close()  # closing with the focus in the folder box starts no scan of a deleted dialog
    QApplication.processEvents()
    # Opened again, it starts where the user left off.
    again = window.show_train_dialog()
    assert again.folder_edit.text() == str(data) and again.model_box.currentText() == "baseline"
    assert again.epochs.value() == 7 and again.image_size.value() == 48
    assert again.wait_scan(30) and again.scan is not None
    again.close()


def test_a_status_message_never_hides_the_counts(qtbot, window, tmp_path):
    colours(tmp_path / "imgs", 4)
    load(qtbot, window, [tmp_path / "imgs"])
    window.class_filter.setCurrentIndex(window.class_filter.findData("bird"))
    assert window.statusBar().currentMessage().startswith("Classified 4 files")  # a message is showing
    assert window.counts_label.isVisible() and window.counts_label.text() == "1 of 4 shown"


# --- an afternoon on the user's own files ----------------------------------------------------------------------

def test_clear_while_batches_are_on_their_way_leaves_the_list_empty(qtbot, window, tmp_path):
    import time

    colours(tmp_path / "imgs", 120)
    window.add_paths([tmp_path / "imgs"])
    qtbot.waitUntil(lambda: window.results_model.rowCount() > 0, timeout=20000)
    time.sleep(1.0)  # the window is busy elsewhere; the worker's batches queue up for the GUI thread
    window.clear_action.trigger()
    wait_done(qtbot, window)
    assert window.session.rows() == [] and window.results_model.rowCount() == 0
    assert window.counts_label.text() == "0 files" and window.results_area.currentWidget() is window.empty_state
    assert window.preview.title.text() == ""


def test_a_file_replaced_on_disk_gets_its_new_answer_and_picture(qtbot, window, tmp_path):
    paths = colours(tmp_path / "imgs", 3)  # red, green, blue
    load(qtbot, window, [tmp_path / "imgs"])
    window.set_model("colour_b")
    wait_done(qtbot, window)
    window.select_row(0)
    assert "horse" in window.preview.title.text()
    # Another picture saved under the same name (an editor, a sync client), then back to the first model.
    os.remove(paths[0])
    solid(paths[0], BLUE)
    window.set_model("colour_a")
    wait_done(qtbot, window)
    assert labels(window) == {"f000.png": "bird", "f001.png": "automobile", "f002.png": "bird"}
    assert "bird" in window.preview.title.text()
    picture = window.preview.image.pixmap().toImage()
    assert picture.pixelColor(picture.width() // 2, picture.height() // 2).blue() > 200  # the new file, not the old


def test_sort_in_move_mode_and_its_undo_take_the_rows_with_the_files(qtbot, window, tmp_path):
    paths = [str(p) for p in colours(tmp_path / "imgs", 6)]
    load(qtbot, window, [tmp_path / "imgs"])
    window.select_row(1)
    dialog = window.show_organize_dialog()
    dialog.set_options(dst=tmp_path / "sorted", mode="move")
    dialog.sort()
    assert dialog.wait(30) and dialog.report is not None, dialog.last_error
    rows = window.results_model.results()
    assert [r.path for r in rows] == [os.path.join(tmp_path, "sorted", r.label, os.path.basename(p))
                                      for r, p in zip(rows, paths)]
    assert all(os.path.isfile(r.path) for r in rows) and window.counts_label.text() == "6 files"
    assert window.selected_result().path == rows[1].path and window.preview.image.has_image()
    dialog.undo()
    assert dialog.wait(30) and dialog.undo_report.restored == 6
    assert [r.path for r in window.results_model.results()] == paths
    assert window.selected_result().path == paths[1]
    dialog.close()


def test_the_counts_say_what_the_table_shows_the_moment_a_filter_is_dropped(qtbot, window, models_dir, tmp_path):
    write_model(models_dir, "pets", class_names=("cat", "dog", "hamster"), test_accuracy=0.7)
    window.reload_models()
    colours(tmp_path / "imgs", 30)
    load(qtbot, window, [tmp_path / "imgs"])
    window.class_filter.setCurrentIndex(window.class_filter.findData("bird"))
    window.search.setText("f01")
    assert window.proxy.rowCount() == 3 and window.counts_label.text() == "3 of 30 shown"
    window.set_model("pets")  # no "bird": the class filter goes, the search stays; the rows are re-classified
    assert window.class_filter.currentData() is None and window.proxy.rowCount() == 10
    assert window.counts_label.text().startswith("10 of 30 shown")  # before the first new answer arrives
    wait_done(qtbot, window)
    assert window.counts_label.text() == "10 of 30 shown"


# --- Sort and Evaluate use the model file as it is when they start ----------------------------------------------

KINDS = tuple(f"kind{i}" for i in range(10))  # ten classes again, other names: red kind0, green kind1, blue kind2


def replace_model(models_dir, name="colour_a", class_names=KINDS):
    """Re-trained in a terminal under the same name, with other classes (the session's timer has not looked yet)."""
    os.remove(models_dir / f"{name}.onnx")
    write_model(models_dir, name, test_accuracy=0.7, class_names=class_names)


def test_sort_uses_the_model_as_it_is_when_it_starts(qtbot, window, models_dir, tmp_path):
    colours(tmp_path / "imgs", 6)
    dialog = window.show_organize_dialog()
    dialog.set_sources([tmp_path / "imgs"])
    dialog.set_options(dst=tmp_path / "sorted", mode="copy")
    replace_model(models_dir)
    dialog.sort()
    assert dialog.wait(30) and dialog.report is not None, dialog.last_error
    assert sorted(p.name for p in (tmp_path / "sorted").iterdir() if p.is_dir()) == ["kind0", "kind1", "kind2"]
    assert dialog.model.labels == KINDS and "changed on disk" in dialog.summary.text()
    dialog.close()


def test_sort_refuses_a_preview_made_with_a_model_replaced_since(qtbot, window, models_dir, tmp_path):
    colours(tmp_path / "imgs", 6)
    dialog = window.show_organize_dialog()
    dialog.set_sources([tmp_path / "imgs"])
    dialog.set_options(dst=tmp_path / "sorted", mode="copy")
    dialog.preview()
    assert dialog.wait(30) and dialog.plan is not None, dialog.last_error
    assert {where.split(os.sep)[-2] for where in dialog.preview_rows().values()} == {"airplane", "automobile", "bird"}
    replace_model(models_dir)
    dialog.sort()  # the preview's folders are the old model's: nothing is sorted, the preview goes
    assert dialog.wait(30) and dialog.report is None and not (tmp_path / "sorted").exists()
    assert "changed on disk since the preview" in dialog.summary.text() and dialog.preview_rows() == {}
    dialog.sort()  # again: planned and sorted with the model as it is now
    assert dialog.wait(30) and dialog.report is not None, dialog.last_error
    assert sorted(p.name for p in (tmp_path / "sorted").iterdir() if p.is_dir()) == ["kind0", "kind1", "kind2"]
    # A model file that is gone: a clear line, nothing sorted.
    os.remove(models_dir / "colour_a.onnx")
    dialog.set_options(dst=tmp_path / "sorted2")
    dialog.sort()
    assert dialog.wait(30) and not (tmp_path / "sorted2").exists()
    assert "colour_a" in dialog.last_error and "not found" in dialog.last_error
    dialog.close()


def test_evaluate_uses_the_model_as_it_is_when_it_starts(qtbot, window, models_dir, tmp_path):
    folder = tmp_path / "lab"
    for i, rgb in enumerate((RED, GREEN, BLUE)):
        solid(folder / KINDS[i] / f"{i}.png", rgb)
    dialog = window.show_evaluation_dialog()
    assert dialog.labels == window.current_model.labels != KINDS
    replace_model(models_dir)
    dialog.evaluate(str(folder))
    assert dialog.wait(30) and dialog.evaluation is not None, dialog.last_error
    assert dialog.evaluation.classes == KINDS and dialog.labels == KINDS
    assert dialog.evaluation.metrics["accuracy"] == 1.0
    assert [dialog.matrix.verticalHeaderItem(i).text() for i in range(dialog.matrix.rowCount())] == list(KINDS)
    assert "changed on disk" in dialog.summary.text()
    # Gone: a clear line, no report of the old model.
    os.remove(models_dir / "colour_a.onnx")
    dialog.evaluate(str(folder))
    assert dialog.wait(30) and dialog.evaluation is None
    assert "colour_a" in dialog.last_error and "not found" in dialog.last_error
    dialog.close()
