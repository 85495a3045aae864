"""The desktop app with a contract-v2 model (issue 12): unsure rows, the unsure filter, the heatmap toggle;
and a v1 model side by side (no flag, occlusion heatmap)."""

import os

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cifar10 import contract  # noqa: E402
from desktop_app.results_model import COL_CLASS, UNSURE_COLOUR, UNSURE_ONLY  # noqa: E402
from onnx_fixtures import RED, write_model, write_v2_model  # noqa: E402
from desktop_fixtures import open_window  # noqa: E402


@pytest.fixture()
def window(qtbot, tmp_path):
    models = tmp_path / "models"
    write_v2_model(models, "cam_colour", threshold=-3.0, test_accuracy=0.9, sharpness=60.0)
    write_model(models, "colour_a", test_accuracy=0.5)
    with open_window(qtbot, tmp_path / "s.ini", model_dirs_=[models]) as win:
        yield win


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(folder / "grey.png")
    Image.new("RGB", (64, 64), (60, 60, 60)).save(folder / "dark.png")
    red = Image.new("RGB", (64, 64), (128, 128, 128))
    red.paste(RED, (36, 4, 60, 28))  # top right
    red.save(folder / "red_square.png")
    return folder


def wait_done(qtbot, win):
    qtbot.waitUntil(lambda: not win.busy, timeout=20000)
    QApplication.processEvents()


def test_unsure_rows_filter_preview_and_heatmap(qtbot, window, images):
    assert window.current_model.name == "cam_colour"
    window.add_paths([str(images)])
    wait_done(qtbot, window)
    by_name = {os.path.basename(r.path): r for r in window.results_model.results()}
    assert by_name["grey.png"].unsure and by_name["dark.png"].unsure and not by_name["red_square.png"].unsure
    assert "2 unsure" in window.counts_label.text()

    # Table: "unsure" with the best guess (issue 24: not a bare percentage), in the unsure colour, italic.
    model = window.results_model
    row = [os.path.basename(r.path) for r in model.results()].index("grey.png")
    index = model.index(row, COL_CLASS)
    grey = by_name["grey.png"]
    assert model.data(index) == f"unsure — most like {grey.label} ({grey.confidence * 100:.0f} %)"
    assert model.data(index, Qt.ItemDataRole.ForegroundRole) == UNSURE_COLOUR
    assert model.data(index, Qt.ItemDataRole.FontRole).italic()
    assert "may show none of the 10 classes" in model.data(index, Qt.ItemDataRole.ToolTipRole)

    # Filter: unsure only.
    combo = window.class_filter
    combo.setCurrentIndex(combo.findData(UNSURE_ONLY))
    assert sorted(os.path.basename(r.path) for r in window.results.visible_results()) == ["dark.png", "grey.png"]
    combo.setCurrentIndex(0)

    # Preview of an unsure row, then the heatmap toggle on the red square: CAM, peak top right.
    window.select_row([os.path.basename(r.path) for r in window.results.visible_results()].index("grey.png"))
    assert contract.unsure_text() in window.preview.title.text()
    window.select_row([os.path.basename(r.path) for r in window.results.visible_results()].index("red_square.png"))
    assert contract.unsure_text() not in window.preview.title.text()
    with qtbot.waitSignal(window.preview.heatmap_ready, timeout=10000) as blocker:
        window.preview.heatmap_toggle.setChecked(True)
    heat = blocker.args[0]
    assert heat.method == "cam" and heat.class_name == "airplane"
    y, x = heat.peak
    assert y < 16 and x >= 16  # the red square is in the top-right quarter
    assert "class activation map" in window.preview.heatmap_note.text()
    shown = window.preview.image.pixmap().toImage()
    assert not shown.isNull()

    # Another model (v1, no CAM output): no unsure rows; the heatmap comes from occlusion.
    with qtbot.waitSignal(window.job_finished, timeout=20000):
        window.set_model("colour_a")
    assert not any(r.unsure for r in window.results_model.results())
    assert "unsure" not in window.counts_label.text()
    names = [os.path.basename(r.path) for r in window.results.visible_results()]
    # The switch keeps the red square selected and may already have refreshed its heatmap: select another row
    # first, then wait for the red square's own heatmap (a late one for the other row is dropped as stale).
    window.select_row(names.index("grey.png"))

    def for_red_square(heat) -> bool:
        return os.path.basename(window.selected_result().path) == "red_square.png"

    with qtbot.waitSignal(window.preview.heatmap_ready, timeout=10000, check_params_cb=for_red_square) as blocker:
        window.select_row(names.index("red_square.png"))
    assert blocker.args[0].method == "occlusion"


def test_csv_export_has_the_unsure_columns(qtbot, window, images, tmp_path):
    from cifar10.results_io import read_results

    window.add_paths([str(images)])
    wait_done(qtbot, window)
    out = tmp_path / "out.csv"
    window.export_results(out)
    rows = {os.path.basename(r["path"]): r for r in read_results(out)}
    assert rows["grey.png"]["unsure"] is True and rows["red_square.png"]["unsure"] is False
    assert np.isfinite(rows["grey.png"]["ood_score"])


def test_card_dialog_shows_calibration_and_unsure_rows(qtbot, tmp_path):
    import json

    from cifar10.registry import load_model_info
    from desktop_app.card_dialog import ModelCardDialog, trust_lines

    path = write_v2_model(tmp_path, "cam_colour", threshold=-3.0)
    card = json.loads(path.with_suffix(".json").read_text())
    card["calibration"].update({"temperature": 0.459, "ece_before": 0.2156, "ece_after": 0.007})
    card["open_set"]["measured"] = {"test_flagged": 0.047, "ood_flagged": 0.937, "auroc": 0.989,
                                    "fpr_at_95_tpr": 0.06, "ood_images": 536}
    path.with_suffix(".json").write_text(json.dumps(card))
    lines = dict(trust_lines(card))
    assert "temperature 0.459" in lines["Calibration"] and "0.2156 → 0.007" in lines["Calibration"]
    assert "threshold -3" in lines["Unsure flag"] and "93.7% of 536" in lines["Unsure flag"]
    dialog = ModelCardDialog(load_model_info(path))
    qtbot.addWidget(dialog)
    from PySide6.QtWidgets import QLabel

    texts = [label.text() for label in dialog.findChildren(QLabel)]
    assert any("temperature 0.459" in t for t in texts) and any("AUROC 0.989" in t for t in texts)
    assert trust_lines({"name": "v1", "test_accuracy": 0.5}) == []
    assert "⚠ Calibration" not in lines  # ECE got better
    card["calibration"].update({"ece_before": 0.05, "ece_after": 0.08})  # issue 24: worse after calibration
    worse = dict(trust_lines(card))
    assert "less reliable" in worse["⚠ Calibration"] and "0.050 before, 0.080 after" in worse["⚠ Calibration"]
