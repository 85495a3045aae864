"""The model card, one click from the model picker: headline figures, every field of the card, plots."""

from __future__ import annotations

import json
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QPushButton, QTabWidget,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from cifar10.contract import CIFAR10_DATASET
from cifar10.registry import ModelInfo
from desktop_app.widgets import ScaledImageLabel

HEADLINE_KEYS = (("test_accuracy", "Test accuracy"), ("f1_macro", "F1 (macro)"), ("ece", "Calibration error (ECE)"),
                 ("parameters", "Parameters"), ("training_wall_time_s", "Training time"), ("exported", "Exported"))
PLOTS = (("curves.png", "Training curves"), ("confusion_matrix.png", "Confusion matrix"))


def _fmt(key: str, value) -> str:
    if key in ("test_accuracy", "f1_macro") and isinstance(value, (int, float)):
        return f"{value:.2%}"
    if key == "parameters" and isinstance(value, (int, float)):
        return f"{int(value):,}"
    if key == "training_wall_time_s" and isinstance(value, (int, float)):
        minutes, seconds = divmod(int(round(value)), 60)
        return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trust_lines(card: dict) -> list[tuple[str, str]]:
    """Contract v2's card entries as summary rows: temperature + ECE before/after, the open-set threshold and
    its measured rates (empty for a v1 card)."""
    from cifar10 import contract

    rows = []
    cal = card.get(contract.CARD_CALIBRATION)
    if isinstance(cal, dict) and "temperature" in cal:
        before = cal.get("test_ece_before", cal.get("ece_before"))
        after = cal.get("test_ece_after", cal.get("ece_after"))
        where = "test set" if "test_ece_after" in cal else "held-out images"
        rows.append(("Calibration", f"temperature {cal['temperature']:.3g}; ECE {_fmt('', before)} → {_fmt('', after)} "
                                    f"({where})"))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
        if numbers and after > before:  # issue 24: a calibration that made things worse is said, not hidden
            from desktop_app.guardrails import calibration_note

            rows.append(("⚠ Calibration", calibration_note(float(before), float(after))))
    open_set = card.get(contract.CARD_OPEN_SET)
    if isinstance(open_set, dict) and contract.open_set_threshold(card) is not None:
        text = f"{open_set.get('score', '?')} score, threshold {open_set['threshold']:.4g}"
        measured = open_set.get("measured")
        if isinstance(measured, dict):
            text += (f"; flags {measured.get('test_flagged', 0):.1%} of {card.get('dataset', CIFAR10_DATASET)} test "
                     f"images and "
                     f"{measured.get('ood_flagged', 0):.1%} of {measured.get('ood_images', '?')} out-of-distribution "
                     f"images (AUROC {measured.get('auroc', 0):.3f}, FPR at 95 % TPR {measured.get('fpr_at_95_tpr', 0):.1%})")
        rows.append(("Unsure flag", text))
    return rows


def _fill(parent: QTreeWidgetItem | QTreeWidget, value) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        node = QTreeWidgetItem([str(key)])
        short_list = (isinstance(child, list) and all(not isinstance(c, (dict, list)) for c in child)
                      and len(json.dumps(child)) <= 80)  # e.g. an input shape: one line
        if isinstance(child, (dict, list)) and child and not short_list:
            node.setText(1, f"{len(child)} items" if isinstance(child, list) else "")
            _fill(node, child)
        else:
            text = json.dumps(child) if isinstance(child, (list, dict)) else _fmt(str(key), child)
            node.setText(1, text)
            node.setToolTip(1, text)
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(node)
        else:
            parent.addChild(node)


def plain_summary(model: ModelInfo) -> str:
    """The card in a few sentences anyone can read: what it recognises, how often it is right, and what it
    does with pictures of anything else. The expert figures follow it in the dialog."""
    labels = tuple(model.labels)
    source = "" if model.dataset == CIFAR10_DATASET else f", learned from <i>{escape(model.dataset)}</i>"
    parts = [f"<b>{escape(model.name)}</b> sorts pictures into {len(labels)} kinds{source}: "
             f"{escape(', '.join(labels))}."]
    acc = model.test_accuracy
    if acc is not None:
        n = model.card.get("test_metrics", {}).get("n", 10000 if model.dataset == CIFAR10_DATASET else None)
        pictures = f"On {n:,} test pictures" if isinstance(n, int) else "On test pictures"
        parts.append(f"{pictures} it had never seen, it was right {acc:.0%} of the time — about "
                     f"{round(acc * 10)} in 10.")
        per_class = model.card.get("test_metrics", {}).get("per_class", {})
        if per_class:
            recall = {name: fig.get("recall", 0) for name, fig in per_class.items()}
            best, worst = max(recall, key=recall.get), min(recall, key=recall.get)
            parts.append(f"It is best at {best} ({recall[best]:.0%} found) and weakest at {worst} "
                         f"({recall[worst]:.0%}).")
    if model.card.get("open_set") or model.card.get("unsure_threshold") is not None:
        parts.append("It only knows these kinds; a picture of something else (a person, a flower, a screenshot) is "
                     "marked <i>unsure</i> when it does not look enough like any of them.")
    else:
        parts.append("It only knows these kinds: a picture of something else (a person, a flower, a screenshot) "
                     "still gets the closest of these names, usually with a lower confidence — check the "
                     "percentage before trusting an answer.")
    size = model.image_size
    parts.append(f"Every picture is shrunk to {size}×{size} pixels first, so "
                 + ("small details do not count." if size <= 64 else "details smaller than that do not count."))
    return " ".join(parts)


class ModelCardDialog(QDialog):
    def __init__(self, model: ModelInfo, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.setWindowTitle(f"Model card — {model.name}")
        self.resize(720, 560)

        summary = QWidget()
        form = QFormLayout(summary)
        title = QLabel(f"<h2>{model.name}</h2>")
        form.addRow(title)
        self.plain = QLabel(plain_summary(model))
        self.plain.setWordWrap(True)
        self.plain.setTextFormat(Qt.TextFormat.RichText)
        form.addRow(self.plain)
        details = QLabel("<b>Details for experts</b>")
        details.setContentsMargins(0, 10, 0, 0)
        form.addRow(details)
        if model.summary:
            text = QLabel(model.summary)
            text.setWordWrap(True)
            form.addRow("Summary", text)
        for key, label in HEADLINE_KEYS:
            if key in model.card:
                form.addRow(label, QLabel(_fmt(key, model.card[key])))
        for label, text in trust_lines(model.card):
            line = QLabel(text)
            line.setWordWrap(True)
            form.addRow(label, line)
        command = model.card.get("training_command")
        if command:
            cmd = QLabel(f"<code>{command}</code>")
            cmd.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            cmd.setWordWrap(True)
            form.addRow("Trained with", cmd)
        path = QLabel(str(model.onnx_path))
        path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        path.setWordWrap(True)
        form.addRow("ONNX file", path)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Field", "Value"])
        _fill(self.tree, model.card)
        self.tree.expandToDepth(0)
        self.tree.resizeColumnToContents(0)

        self.tabs = QTabWidget()
        self.tabs.addTab(summary, "Summary")
        self.tabs.addTab(self.tree, "All details")
        for suffix, label in PLOTS:
            plot = model.onnx_path.with_name(f"{model.name}.{suffix}")
            if plot.is_file():
                image = QImage(str(plot))
                if not image.isNull():
                    view = ScaledImageLabel(smooth=True, minimum=200)
                    view.set_image(image)
                    self.tabs.addTab(view, label)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy card JSON")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(json.dumps(model.card, indent=2)))
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
