"""Working with the results in the desktop app (pytest-qt, offscreen, real files and onnxruntime sessions):
the evaluation view, Sort into Class Folders (also after a killed run), row actions, export all vs shown,
in-place re-classification, the first-run screen and the model card's plain paragraph."""

import json
import os
import signal

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cifar10_cli.main import main as cli_main  # noqa: E402
from cifar10.contract import CLASS_NAMES  # noqa: E402
from cifar10.organize import JOURNAL_NAME, UNSURE_DIR  # noqa: E402
from cifar10.results_io import read_results  # noqa: E402
from desktop_app.card_dialog import ModelCardDialog  # noqa: E402
from desktop_app.evaluation_view import EvaluationDialog  # noqa: E402
from image_files import solid  # noqa: E402
from onnx_fixtures import BLUE, GREEN, MAPPING_B, RED, write_model  # noqa: E402
from desktop_fixtures import open_window  # noqa: E402
from test_evaluate import labelled_folder  # noqa: E402
from test_organize import GREY, contents, kill_after, many_photos, start_organize, tree  # noqa: E402


@pytest.fixture()
def models_dir(tmp_path, monkeypatch):
    directory = tmp_path / "models"
    write_model(directory, "colour_a", test_accuracy=0.6)
    write_model(directory, "colour_b", test_accuracy=0.8, mapping=MAPPING_B)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(directory))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    return directory


@pytest.fixture()
def window(qtbot, models_dir, tmp_path):
    with open_window(qtbot, tmp_path / "settings.ini", model_dirs_=[models_dir], initial_model="colour_a") as win:
        yield win


def load(qtbot, win, paths):
    win.add_paths(paths)
    qtbot.waitUntil(lambda: not win.busy, timeout=20000)
    QApplication.processEvents()


def names(results):
    return [os.path.basename(r.path) for r in results]


# --- evaluation view ---------------------------------------------------------------------------------------

def test_evaluation_view_cell_click_filters_to_exactly_those_images(qtbot, window, tmp_path):
    root = labelled_folder(tmp_path / "lab")
    dialog = window.show_evaluation_dialog()
    qtbot.addWidget(dialog)
    dialog.evaluate(str(root))
    assert dialog.wait(30) and dialog.evaluation is not None, dialog.last_error
    assert sorted(os.path.basename(p) for p in dialog.shown_paths()) == sorted(
        ["r1.png", "r2.png", "g_wrong.png", "g.png", "b.png", "r_wrong.png", "broken.jpg"])
    bird, airplane = CLASS_NAMES.index("bird"), CLASS_NAMES.index("airplane")
    item = dialog.matrix.item(bird, airplane)
    assert item.text() == "1"
    qtbot.mouseClick(dialog.matrix.viewport(), Qt.MouseButton.LeftButton,
                     pos=dialog.matrix.visualItemRect(item).center())
    assert [os.path.basename(p) for p in dialog.shown_paths()] == ["r_wrong.png"]
    assert "bird predicted as airplane: 1" in dialog.images_title.text()
    item = dialog.matrix.item(airplane, airplane)
    qtbot.mouseClick(dialog.matrix.viewport(), Qt.MouseButton.LeftButton,
                     pos=dialog.matrix.visualItemRect(item).center())
    assert sorted(os.path.basename(p) for p in dialog.shown_paths()) == ["r1.png", "r2.png"]
    dialog.unreadable_button.click()
    assert [os.path.basename(p) for p in dialog.shown_paths()] == ["broken.jpg"]
    dialog.wrong_button.click()
    assert sorted(os.path.basename(p) for p in dialog.shown_paths()) == ["g_wrong.png", "r_wrong.png"]
    dialog.grab()


def test_evaluation_view_shows_the_same_numbers_as_the_cli(qtbot, window, tmp_path, capsys):
    root = labelled_folder(tmp_path / "lab")
    report = tmp_path / "report.json"
    assert cli_main(["evaluate", "--folder", str(root), "--model", "colour_a", "-o", str(report)]) == 1  # broken.jpg: not read
    cli = json.loads(report.read_text())
    dialog = window.show_evaluation_dialog()
    qtbot.addWidget(dialog)
    dialog.evaluate(str(root))
    assert dialog.wait(30)
    shown = dialog.evaluation.metrics
    for key in ("n", "accuracy", "precision_macro", "recall_macro", "f1_macro", "confusion_matrix", "per_class"):
        assert shown[key] == cli[key], key
    cells = [[dialog.matrix.item(t, p).text() or "0" for p in range(10)] for t in range(10)]
    assert cells == [[str(c) for c in row] for row in cli["confusion_matrix"]]
    per_class = {dialog.per_class.item(r, 0).text(): (dialog.per_class.item(r, 1).text(),
                                                       dialog.per_class.item(r, 2).text())
                 for r in range(dialog.per_class.rowCount())}
    for name, (precision, recall) in per_class.items():
        assert precision == f"{cli['per_class'][name]['precision']:.3f}"
        assert recall == f"{cli['per_class'][name]['recall']:.3f}"
    assert f"{cli['accuracy']:.1%}" in dialog.summary.text()


def test_evaluation_view_says_what_is_wrong_with_a_folder(qtbot, window, tmp_path):
    (tmp_path / "flat").mkdir()
    solid(tmp_path / "flat" / "a.png", RED)
    dialog = EvaluationDialog(window.current_model, "cpu", window)
    qtbot.addWidget(dialog)
    dialog.evaluate(str(tmp_path / "flat"))
    assert dialog.wait(30)
    assert "one subfolder per class" in dialog.last_error and dialog.evaluation is None


# --- Sort into Class Folders ----------------------------------------------------------------------------------

@pytest.fixture()
def photos(tmp_path):
    root = tmp_path / "photos"
    solid(root / "red.png", RED)
    solid(root / "trip" / "red.png", RED, size=(50, 20))
    solid(root / "green.jpg", GREEN, quality=95)
    solid(root / "grey.png", GREY)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def organize_dialog(qtbot, window, sources, dst, mode="copy"):
    dialog = window.show_organize_dialog()
    qtbot.addWidget(dialog)
    dialog.set_sources([str(s) for s in sources])
    dialog.set_options(dst=dst, mode=mode, min_confidence=0.5)
    return dialog


def test_organize_dialog_preview_touches_nothing_then_copy_then_undo(qtbot, window, photos, tmp_path):
    before = tree(photos)
    dst = tmp_path / "sorted"
    load(qtbot, window, [photos])
    dialog = window.show_organize_dialog()
    qtbot.addWidget(dialog)
    assert dialog.source_paths() == [str(photos)]  # what the user loaded is the default
    dialog.set_options(dst=dst, mode="copy")
    dialog.preview()
    assert dialog.wait(30) and dialog.plan is not None, dialog.last_error
    rows = dialog.preview_rows()
    assert dialog.preview_table.item(0, 0).text().startswith("photos" + os.sep)  # shown relative to the source
    assert rows[str(photos / "red.png")] == os.path.join("airplane", "red.png")
    assert rows[str(photos / "trip" / "red.png")] == os.path.join("airplane", "red (2).png")
    assert rows[str(photos / "grey.png")] == os.path.join(UNSURE_DIR, "grey.png")
    assert "cannot be read" in rows[str(photos / "broken.png")]
    assert not dst.exists() and tree(photos) == before  # a preview changes nothing
    dialog.sort()
    assert dialog.wait(30) and dialog.report is not None and len(dialog.report.done) == 4
    assert tree(photos) == before
    assert (dst / "airplane" / "red (2).png").read_bytes() == (photos / "trip" / "red.png").read_bytes()
    assert dialog.undo_button.isEnabled()
    dialog.undo()
    assert dialog.wait(30) and dialog.undo_report.restored == 4 and not dialog.undo_report.problems
    assert not dst.exists() and tree(photos) == before


def test_organize_dialog_move_and_undo(qtbot, window, photos, tmp_path):
    before = tree(photos)
    dst = tmp_path / "sorted"
    dialog = organize_dialog(qtbot, window, [photos], dst, mode="move")
    dialog.sort()  # without a preview: plans, then sorts
    assert dialog.wait(30) and dialog.report is not None, dialog.last_error
    assert sorted(rel for rel, h in tree(photos).items() if h != "DIR") == ["broken.png"]  # unreadable stays
    assert (dst / "automobile" / "green.jpg").exists()
    dialog.undo()
    assert dialog.wait(30)
    assert tree(photos) == before and not dst.exists()


def test_organize_dialog_resumes_a_killed_cli_run(qtbot, window, models_dir, tmp_path):
    src = many_photos(tmp_path / "src")
    readable = sorted(h for rel, h in tree(src).items() if h != "DIR" and not rel.endswith("corrupt.jpg"))
    dst = tmp_path / "sorted"
    process = start_organize([str(src), "--into", str(dst), "--mode", "move", "--model", "colour_a"], models_dir,
                             tmp_path)
    kill_after(process, dst / JOURNAL_NAME, 25)
    assert process.returncode == -signal.SIGKILL
    dialog = organize_dialog(qtbot, window, [src], dst, mode="move")
    dialog.sort()
    assert dialog.wait(60) and dialog.report is not None, dialog.last_error
    assert contents(dst) == readable  # every file once, byte-identical
    assert sorted(rel for rel, h in tree(src).items() if h != "DIR") == ["roll0/corrupt.jpg"]


def test_organize_dialog_undoes_a_killed_cli_run(qtbot, window, models_dir, tmp_path):
    src = many_photos(tmp_path / "src")
    original = tree(src)
    dst = tmp_path / "sorted"
    process = start_organize([str(src), "--into", str(dst), "--mode", "move", "--model", "colour_a"], models_dir,
                             tmp_path)
    kill_after(process, dst / JOURNAL_NAME, 25)
    assert process.returncode == -signal.SIGKILL
    dialog = organize_dialog(qtbot, window, [], dst)
    assert dialog.undo_button.isEnabled()  # the journal is there
    dialog.undo()
    assert dialog.wait(60) and not dialog.undo_report.problems
    assert tree(src) == original and not dst.exists()


# --- rows you can act on ------------------------------------------------------------------------------------

@pytest.fixture()
def loaded(qtbot, window, tmp_path):
    folder = tmp_path / "imgs"
    for i, colour in enumerate((RED, GREEN, BLUE, RED, GREEN)):
        solid(folder / f"img{i}.png", colour)
    (folder / "bad.png").write_bytes(b"nope")
    load(qtbot, window, [folder])
    return folder


def select_rows(window, rows):
    from PySide6.QtCore import QItemSelectionModel

    selection = window.table.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(window.proxy.index(row, 1),
                         QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    selection.setCurrentIndex(window.proxy.index(rows[0], 1), QItemSelectionModel.SelectionFlag.NoUpdate)


def test_context_menu_and_keys(qtbot, window, loaded):
    actions = window.table.actions_
    opened = []
    actions.opener = lambda url: opened.append(url.toLocalFile()) or True
    shown_folders = []
    actions.folder_shower = shown_folders.append
    menu = actions.menu()
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Open", "Show in Folder", "Copy Path", "Copy Prediction", "Copy Rows", "Remove from List"]
    window.table.setFocus()
    assert names(window.proxy.visible_results()) == ["bad.png", "img0.png", "img1.png", "img2.png", "img3.png",
                                                     "img4.png"]
    select_rows(window, [1])
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    assert opened == [str(loaded / "img0.png")]
    actions.show_action.trigger()
    assert shown_folders == [str(loaded / "img0.png")]
    actions.copy_path_action.trigger()
    assert QGuiApplication.clipboard().text() == str(loaded / "img0.png")
    actions.copy_prediction_action.trigger()
    assert QGuiApplication.clipboard().text().startswith("airplane (")
    # Ctrl+C: the selected rows as tab-separated text (a header, then one line per row).
    select_rows(window, [2, 0])
    qtbot.keyClick(window.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0] == "path\tlabel\tconfidence\tunsure\terror"
    first, second = (line.split("\t") for line in lines[1:])  # top to bottom as shown
    assert first[0] == str(loaded / "bad.png") and first[1] == "" and first[4]
    assert second[:2] == [str(loaded / "img1.png"), "automobile"] and 0.5 < float(second[2]) <= 1
    assert second[3:] == ["false", ""]
    # Delete takes the selected rows out of the list (not off the disk); a model switch does not bring them back.
    qtbot.keyClick(window.table, Qt.Key.Key_Delete)
    assert names(window.results_model.results()) == ["img0.png", "img2.png", "img3.png", "img4.png"]
    assert (loaded / "img1.png").exists() and (loaded / "bad.png").exists()
    assert window.counts_label.text() == "4 files"
    window.set_model("colour_b")
    qtbot.waitUntil(lambda: not window.busy, timeout=20000)
    assert names(window.results_model.results()) == ["img0.png", "img2.png", "img3.png", "img4.png"]


def test_model_switch_keeps_selection_and_scroll_and_reclassifies_in_place(qtbot, window, tmp_path):
    folder = tmp_path / "many"
    for i in range(120):
        solid(folder / f"f{i:03d}.png", (RED, GREEN, BLUE)[i % 3], size=(8, 8))
    load(qtbot, window, [folder])
    window.resize(1000, 500)
    QApplication.processEvents()
    window.select_row(90)
    window.table.verticalScrollBar().setValue(window.table.verticalScrollBar().maximum() - 3)
    scroll = window.table.verticalScrollBar().value()
    selected = window.selected_result().path
    assert window.selected_result().label == "airplane"
    inserts = []
    window.results_model.rowsInserted.connect(lambda *a: inserts.append(a))
    window.results_model.modelReset.connect(lambda: inserts.append("reset"))
    window.set_model("colour_b")
    qtbot.waitUntil(lambda: not window.busy, timeout=20000)
    QApplication.processEvents()
    assert inserts == []  # no row was removed and added again
    assert window.selected_result().path == selected and window.selected_result().label == "horse"
    assert window.table.verticalScrollBar().value() == scroll
    assert "horse" in window.preview.title.text()  # the preview shows the new answer
    assert [r.label for r in window.results_model.results()[:3]] == ["horse", "ship", "truck"]


def test_export_all_or_only_the_shown_rows_records_the_model(qtbot, window, loaded, tmp_path):
    assert window.results.export_scope_box() is None  # every row shown: nothing to ask
    window.class_filter.setCurrentIndex(window.class_filter.findData("airplane"))
    assert window.proxy.rowCount() == 2
    box = window.results.export_scope_box()
    assert box.all_button.text() == "All 6 rows" and box.shown_button.text() == "Only the 2 shown"
    assert window.export_results(tmp_path / "shown.csv", which="shown") == 2
    assert window.export_results(tmp_path / "all.csv", which="all") == 6
    rows = read_results(tmp_path / "all.csv")
    assert len(rows) == 6 and {r["model"] for r in rows} == {"colour_a"}
    assert {r["model_test_accuracy"] for r in rows} == {0.6} and all(r["date"][:2] == "20" for r in rows)
    assert [os.path.basename(r["path"]) for r in read_results(tmp_path / "shown.csv")] == ["img0.png", "img3.png"]
    assert window.export_results(tmp_path / "all.json", which="all") == 6
    data = json.loads((tmp_path / "all.json").read_text())
    assert data["model"] == "colour_a" and data["model_test_accuracy"] == 0.6 and len(data["rows"]) == 6


# --- first run ----------------------------------------------------------------------------------------------

def test_first_screen_lists_the_classes_and_loads_the_samples(qtbot, window):
    assert window.results_area.currentWidget() is window.empty_state
    text = window.empty_state.classes.text()
    assert "colour_a" in text and all(name in text for name in CLASS_NAMES)
    window.empty_state.samples_button.click()
    qtbot.waitUntil(lambda: not window.busy and window.results_model.rowCount() == 10, timeout=20000)
    assert window.results_area.currentWidget() is window.table
    # The first use measured the model's speed on this machine: the picker shows it.
    assert "images/s here" in window.model_combo.currentText() and "60.0% test accuracy" in window.model_combo.currentText()


def test_first_screen_says_what_happens_to_other_pictures(tmp_path):
    from cifar10.registry import load_model_info
    from desktop_app.empty_state import EmptyState
    from onnx_fixtures import write_v2_model

    screen = EmptyState()
    write_model(tmp_path, "colour_a", test_accuracy=0.6)  # contract v1: no open-set threshold
    screen.set_model(load_model_info(tmp_path / "colour_a.onnx"))
    assert "closest of these names" in screen.classes.text() and "unsure" not in screen.classes.text()
    write_v2_model(tmp_path, "cam_colour", threshold=0.5)  # has one: such pictures are flagged
    screen.set_model(load_model_info(tmp_path / "cam_colour.onnx"))
    assert "unsure: may be none of these" in screen.classes.text()


def test_an_empty_folder_says_no_images_found(qtbot, window, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")
    load(qtbot, window, [tmp_path / "empty"])
    assert "No images found" in window.empty_state.note.text()
    assert window.results_area.currentWidget() is window.empty_state


def test_model_card_opens_with_a_plain_paragraph(qtbot, models_dir):
    from cifar10.registry import load_model_info

    model = load_model_info(models_dir / "colour_a.onnx")
    model.card["test_metrics"] = {"n": 10000, "per_class": {n: {"recall": 0.5 + i / 20} for i, n in
                                                            enumerate(CLASS_NAMES)}}
    dialog = ModelCardDialog(model)
    qtbot.addWidget(dialog)
    text = dialog.plain.text()
    assert "10 kinds" in text and "right 60% of the time" in text and "about 6 in 10" in text
    assert "best at truck" in text and "weakest at airplane" in text and "something else" in text
