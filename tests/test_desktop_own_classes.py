"""The desktop app with a contract-v3 model of the user's own classes (pytest-qt, offscreen): the model
picker, class filter, probability bars, preview, exports, first screen, model card and evaluation view all
follow the selected model's classes and input size, and switching to a CIFAR-10 model and back rebuilds
them (real files, real onnxruntime sessions on tiny colour models)."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cifar10.contract import CLASS_NAMES  # noqa: E402
from cifar10.results_io import read_results  # noqa: E402
from desktop_app.card_dialog import ModelCardDialog, plain_summary  # noqa: E402
from desktop_app.results_model import COL_THUMB, ERRORS_ONLY  # noqa: E402
from desktop_app.widgets import ProbabilityBars, bar_rows  # noqa: E402
from image_files import solid  # noqa: E402
from onnx_fixtures import BLUE, GREEN, RED, write_model  # noqa: E402
from desktop_fixtures import open_window  # noqa: E402

PETS = ("cat", "dog", "hamster")  # red -> cat, green -> dog, blue -> hamster (the colour model's mapping)
MANY = tuple(f"kind_{i:02d}" for i in range(15))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    write_model(directory, "colour_a", test_accuracy=0.6)  # a v1 CIFAR-10 model
    write_model(directory, "pets", test_accuracy=0.95, class_names=PETS, image_size=64, dataset="my-pets")
    write_model(directory, "many", test_accuracy=0.5, class_names=MANY, image_size=48, dataset="fifteen")
    write_model(directory, "photos", test_accuracy=0.9, class_names=PETS, image_size=128, dataset="my-pets")
    return directory


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    solid(folder / "red.png", RED, size=(120, 90))
    solid(folder / "green.jpg", GREEN, size=(90, 120), quality=95)
    solid(folder / "blue.png", BLUE, size=(200, 200))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a picture")
    return folder


@pytest.fixture()
def window(qtbot, models_dir, tmp_path):
    with open_window(qtbot, tmp_path / "settings.ini", model_dirs_=[models_dir], initial_model="pets") as win:
        yield win


def classify(qtbot, win, paths):
    win.add_paths(paths)
    qtbot.waitUntil(lambda: not win.busy, timeout=30000)
    QApplication.processEvents()
    return {os.path.basename(r.path): r for r in win.results_model.results()}


def shown_labels(win):
    return sorted(r.label for r in win.results.visible_results())


def test_picker_first_screen_and_card_say_what_the_model_knows(window):
    combo = window.model_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert "pets — my-pets · 3 classes — 95.0% test accuracy" in texts
    assert "colour_a — CIFAR-10 · 10 classes — 60.0% test accuracy" in texts
    assert window.current_model.name == "pets"
    tip = combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert "my-pets · 3 classes" in tip and "cat, dog, hamster" in tip and "64×64" in tip
    assert combo.toolTip() == tip

    text = window.empty_state.classes.text()
    assert "these 3 kinds" in text and "cat, dog, hamster" in text and "my-pets" in text and "airplane" not in text

    summary = plain_summary(window.current_model)
    assert "into 3 kinds" in summary and "cat, dog, hamster" in summary and "64×64" in summary
    assert "10,000" not in summary
    dialog = ModelCardDialog(window.current_model, window)
    assert "my-pets" in dialog.plain.text()
    dialog.close()
    window.set_model("colour_a")
    assert "these 10 kinds" in window.empty_state.classes.text()
    assert "32×32" in plain_summary(window.current_model) and "into 10 kinds" in plain_summary(window.current_model)


def test_results_filter_bars_and_preview_follow_the_models_classes(qtbot, window, images):
    rows = classify(qtbot, window, [images])
    assert {name: r.label for name, r in rows.items()} == {
        "red.png": "cat", "green.jpg": "dog", "blue.png": "hamster", "broken.jpg": ""}
    assert rows["broken.jpg"].error and rows["broken.jpg"].classes == PETS
    assert rows["red.png"].image.shape == (64, 64, 3)  # decoded at the model's input size

    # The class filter offers the model's classes.
    assert window.results.classes() == PETS
    combo = window.class_filter
    assert [combo.itemText(i) for i in range(combo.count())] == ["All classes", *PETS, "Unsure only", "Errors only"]
    combo.setCurrentIndex(combo.findData("dog"))
    assert shown_labels(window) == ["dog"]
    combo.setCurrentIndex(combo.findData(ERRORS_ONLY))
    assert [os.path.basename(r.path) for r in window.results.visible_results()] == ["broken.jpg"]
    combo.setCurrentIndex(0)

    # Thumbnails fit the table's icon size; the preview shows the 64 px model input and one bar per class.
    row = [os.path.basename(r.path) for r in window.results.visible_results()].index("blue.png")
    thumb = window.proxy.data(window.proxy.index(row, COL_THUMB), Qt.ItemDataRole.DecorationRole)
    assert max(thumb.width(), thumb.height()) <= 32
    window.select_row(row)
    QApplication.processEvents()
    assert window.preview.caption.text() == "Model input (64×64):"
    bars = window.preview.bars.rows()
    assert [name for name, _ in bars] == list(PETS) and max(bars, key=lambda b: b[1])[0] == "hamster"
    assert sum(p for _, p in bars) == pytest.approx(1.0, abs=1e-4)
    tooltip = window.proxy.data(window.proxy.index(row, 2), Qt.ItemDataRole.ToolTipRole)
    assert tooltip.splitlines()[0].startswith("hamster: ")


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_export_has_the_models_class_columns(qtbot, window, images, tmp_path, suffix):
    classify(qtbot, window, [images])
    out = tmp_path / f"results{suffix}"
    assert window.export_results(out, which="all") == 4
    if suffix == ".csv":
        header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header[-3:] == list(PETS) and not set(CLASS_NAMES) - {"cat", "dog"} & set(header)
    else:
        data = json.loads(out.read_text(encoding="utf-8"))
        assert data["classes"] == list(PETS) and data["model"] == "pets"
    by_name = {os.path.basename(r["path"]): r for r in read_results(out)}
    assert by_name["green.jpg"]["label"] == "dog" and by_name["green.jpg"]["dog"] > 0.5


def test_switching_models_rebuilds_classes_and_columns(qtbot, window, images, tmp_path):
    classify(qtbot, window, [images])
    window.class_filter.setCurrentIndex(window.class_filter.findData("hamster"))
    assert shown_labels(window) == ["hamster"]

    window.set_model("colour_a")  # CIFAR-10: the rows are classified again, the filter lists its classes
    qtbot.waitUntil(lambda: not window.busy, timeout=30000)
    QApplication.processEvents()
    assert window.results.classes() == CLASS_NAMES
    assert window.class_filter.currentData() is None  # "hamster" is not a CIFAR-10 class: back to All
    results = {os.path.basename(r.path): r for r in window.results_model.results()}
    assert len(results) == 4 and all(r.classes == CLASS_NAMES for r in results.values())
    assert results["red.png"].label == "airplane" and results["red.png"].image.shape == (32, 32, 3)
    window.select_row(0)
    QApplication.processEvents()
    assert [name for name, _ in window.preview.bars.rows()] == list(CLASS_NAMES)
    out = tmp_path / "cifar.csv"
    window.export_results(out, which="all")
    assert out.read_text(encoding="utf-8").splitlines()[0].split(",")[-10:] == list(CLASS_NAMES)

    window.class_filter.setCurrentIndex(window.class_filter.findData("dog"))
    window.set_model("pets")  # back: "dog" is one of its classes too, so the filter stays on it
    qtbot.waitUntil(lambda: not window.busy, timeout=30000)
    QApplication.processEvents()
    assert window.results.classes() == PETS and window.class_filter.currentData() == "dog"
    assert shown_labels(window) == ["dog"]
    assert all(r.classes == PETS for r in window.results_model.results())
    out = tmp_path / "pets.csv"
    window.export_results(out, which="all")
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[-3:] == list(PETS) and "airplane" not in header  # no stale columns


def test_export_refuses_rows_of_another_models_classes(qtbot, window, images, tmp_path):
    classify(qtbot, window, [images])
    rows = window.results_model.results()
    window.results.model_info = next(m for m in window.models if m.name == "colour_a")  # as mid-switch
    with pytest.raises(ValueError, match="4 of 4 rows still hold another model's classes"):
        window.export_results(tmp_path / "mixed.csv", which="all")
    assert not (tmp_path / "mixed.csv").exists() and len(rows) == 4


def test_fifteen_classes_show_the_top_ten_and_other(qtbot, window, images):
    window.set_model("many")
    rows = classify(qtbot, window, [images / "blue.png"])
    result = rows["blue.png"]
    assert result.classes == MANY and result.image.shape == (48, 48, 3)
    window.select_row(0)
    QApplication.processEvents()
    bars = window.preview.bars.rows()
    assert len(bars) == 11 and bars[-1][0] == "other (5 classes)"
    top = sorted(result.probabilities, reverse=True)
    assert [p for _, p in bars[:10]] == pytest.approx(top[:10])
    assert bars[-1][1] == pytest.approx(sum(top[10:]), abs=1e-6)
    assert bars[0][0] == result.label
    assert window.results.classes() == MANY and window.class_filter.count() == 15 + 3


def test_bar_rows_and_widget():
    probs = np.array([0.5, 0.3, 0.2], np.float32)
    assert bar_rows(probs, PETS) == [("cat", 0.5), ("dog", pytest.approx(0.3)), ("hamster", pytest.approx(0.2))]
    twelve = np.full(12, 1 / 12, np.float32)
    assert len(bar_rows(twelve, [str(i) for i in range(12)])) == 12  # up to 12: every class, model order
    with pytest.raises(ValueError):
        bar_rows(probs, CLASS_NAMES)
    widget = ProbabilityBars()
    widget.resize(300, 300)
    widget.set_probabilities(np.linspace(1, 2, 15) / np.linspace(1, 2, 15).sum(), labels=MANY)
    assert widget.rows()[0][0] == "kind_14" and widget.minimumHeight() == 11 * 18
    widget.grab()  # paints without error
    widget.set_probabilities(None, "nothing")
    assert widget.rows() == []


def test_evaluation_view_has_the_models_matrix(qtbot, window, tmp_path):
    labelled = tmp_path / "labelled"
    solid(labelled / "cat" / "1.png", RED)
    solid(labelled / "Dog" / "2.png", GREEN)          # case does not matter
    solid(labelled / "hamster" / "3.png", RED)        # a mistake: predicted cat
    dialog = window.show_evaluation_dialog()
    assert dialog.matrix.rowCount() == 3 and dialog.matrix.columnCount() == 3
    assert [dialog.matrix.horizontalHeaderItem(i).text() for i in range(3)] == list(PETS)
    assert "cat, dog, hamster" in dialog.summary.text()
    dialog.evaluate(str(labelled))
    assert dialog.wait(60) and not dialog.last_error
    cells = [[dialog.matrix.item(t, p).data(Qt.ItemDataRole.UserRole) for p in range(3)] for t in range(3)]
    assert cells == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert "my-pets test set" in dialog.summary.text()
    dialog.select_cell(2, 0)
    assert "hamster predicted as cat: 1 image(s)" in dialog.images_title.text()
    dialog.close()


def test_a_photo_model_keeps_thumbnails_and_the_preview_shows_its_input(qtbot, window, images):
    window.set_model("photos")  # 128 px: each row keeps a 32 px thumbnail, not the 48 KB model input
    rows = classify(qtbot, window, [images])
    assert rows["green.jpg"].label == "dog" and rows["green.jpg"].image.shape == (32, 32, 3)
    names = [os.path.basename(r.path) for r in window.results.visible_results()]
    window.select_row(names.index("green.jpg"))
    QApplication.processEvents()
    assert window.preview.caption.text() == "Model input (128×128):"
    heat = []
    window.preview.heatmap_ready.connect(heat.append)
    window.preview.heatmap_toggle.setChecked(True)
    qtbot.waitUntil(lambda: bool(heat), timeout=60000)
    assert heat[0].heat.shape == (128, 128) and heat[0].class_name == "dog"
    window.preview.heatmap_toggle.setChecked(False)
