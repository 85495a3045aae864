"""Models ▸ Train on a Folder… as the window runs it (issue 24): the Train dialog (train_dialog.py) with a live
accuracy chart and its last settings remembered, then — when a model is saved — the new model shown beside
the current one with "Use this model?" (train_review.py, judged by guardrails.py) instead of a silent switch."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt

from cifar10.paths import model_dirs

SETTINGS_TRAIN = "train/"  # the Train dialog's last folder, model, epochs, image size


class TrainingFlow:
    def __init__(self, window):
        self.window = window  # a MainWindow: its settings, session, picker and last folder

    def show_dialog(self, *, restore: bool = True, **options):
        """Open the Train dialog (``options``: export_dir, runs_dir) with the chart under its status line
        (``restore``: with the last folder, model, epochs and image size)."""
        from desktop_app.train_dialog import TrainDialog
        from desktop_app.train_review import AccuracyChart

        window = self.window
        dialog = TrainDialog(window, start_dir=window._last_dir(), **options)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # The live chart goes under the dialog's status line (the dialog itself is not changed for it).
        dialog.chart = chart = AccuracyChart(dialog)
        running = dialog.status.parentWidget().layout()
        running.insertWidget(running.indexOf(dialog.status) + 1, chart)

        def on_event(event: dict) -> None:
            if event.get("event") == "epoch":
                chart.add_epoch(event)
            elif event.get("event") == "cache" and chart.points:
                chart.clear()  # a new run

        dialog.process.event.connect(on_event)
        if restore:
            self.restore_settings(dialog)
        for changed in (dialog.folder_edit.textChanged, dialog.model_box.currentTextChanged, dialog.epochs.valueChanged,
                        dialog.image_size.valueChanged):
            changed.connect(lambda *_: self.save_settings(dialog))
        dialog.model_exported.connect(lambda path: window.review_trained_model(
            path, [e for e in dialog.events if e.get("event") == "epoch"], dialog.folder_edit.text().strip()))
        dialog.show()
        return dialog

    def show_resume(self, **options):
        """Models ▸ Resume Training…: the unfinished runs of the Train dialog's runs folder (resume_dialog.py);
        Resume continues the chosen one in a Train dialog (``window.train_dialog``). Returns the chooser, open
        (window-modal, not blocking)."""
        from desktop_app.resume_dialog import ResumeRunsDialog
        from desktop_app.train_process import default_runs_dir

        window = self.window
        chooser = ResumeRunsDialog(window, options.get("runs_dir") or default_runs_dir())
        chooser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def resume() -> None:
            run_dir = chooser.selected_run()
            window.train_dialog = dialog = self.show_dialog(restore=False, **options)
            dialog.resume_run(run_dir)
        chooser.accepted.connect(resume)
        chooser.open()
        return chooser

    def close_ok(self) -> bool:
        """The window is closing: a Train dialog still training asks first (Stop and Keep Progress / Keep
        Training); False keeps the window open."""
        dialog = getattr(self.window, "train_dialog", None)
        try:
            return dialog is None or dialog.confirm_stop_for_close()
        except RuntimeError:  # the dialog was closed and deleted
            return True

    def restore_settings(self, dialog) -> None:
        """The Train dialog opens with the last folder, model, epochs and image size."""
        value = self.window.settings.value
        model = value(SETTINGS_TRAIN + "model")
        if model:
            dialog.model_box.setCurrentText(str(model))
        for key, box in (("epochs", dialog.epochs), ("image_size", dialog.image_size)):
            try:
                box.setValue(int(value(SETTINGS_TRAIN + key) or 0))
            except (TypeError, ValueError):
                pass
        folder = value(SETTINGS_TRAIN + "folder")
        if folder and os.path.isdir(str(folder)):
            dialog.set_folder(str(folder))

    def save_settings(self, dialog) -> None:
        try:
            values = {"folder": dialog.folder_edit.text().strip(), "model": dialog.model_box.currentText(),
                      "epochs": dialog.epochs.value(), "image_size": dialog.image_size.value()}
        except RuntimeError:  # the dialog is already deleted
            return
        for key, v in values.items():
            self.window.settings.setValue(SETTINGS_TRAIN + key, v)

    def review(self, onnx_path: str, epochs: list[dict] | None = None, data_dir: str | None = None):
        """A model was just trained: rescan the model folders (the current model stays in use), then show the
        new one beside it — test accuracy vs chance and vs the current model, warnings, per-class recall, the
        most confused pair, the validation curve — and ask "Use this model?". A model saved under the current
        model's name already replaced it (the Train dialog asked first): the rows are classified again with it
        and the review only informs. Returns the review dialog (None when the file cannot be used)."""
        from cifar10.registry import ModelError, load_model_info
        from desktop_app.guardrails import review_training
        from desktop_app.train_review import TrainReviewDialog

        window = self.window
        path = Path(onnx_path)
        previous = window.current_model
        window.reload_models()
        new = next((m for m in window.session.models if m.onnx_path.resolve() == path.resolve()), None)
        if new is None:
            try:
                new = load_model_info(path)  # saved outside the model folders
            except (ModelError, OSError, ValueError) as exc:
                window.statusBar().showMessage(f"The new model cannot be used: {exc}", 10000)
                return None
        in_use = previous is not None and previous.onnx_path.resolve() == path.resolve()
        review = review_training(new, epochs, None if in_use else previous)
        dialog = TrainReviewDialog(review, window, data_dir=data_dir, in_use=in_use)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if not in_use:
            dialog.accepted.connect(lambda: self.use(path))
        dialog.open()  # window-modal, non-blocking
        return dialog

    def use(self, path: Path) -> None:
        """Select the new model: by name when it is in a model folder (as every model the window finds), else by
        its path (as `--model PATH`)."""
        window = self.window
        folders = {Path(d).resolve() for d in (window.session.model_dirs or model_dirs())}
        if path.parent.resolve() in folders and window.model_combo.findData(path.stem) >= 0:
            window.set_model(path.stem)
        else:
            window.reload_models(str(path))
