"""Label, correct and retrain in the main window (the Teachable Machine / Lobe loop), and Check Labels.

A dataset is a folder of class folders (what Train on a Folder reads). With one chosen (Labels ▸ Dataset
Folder…):

* "Add to Class ▸" (row menu and Labels menu; keys 1-9 on the results table) copies the selected pictures into
  ``DATASET/<class>/``; "This Is Actually ▸" does the same for pictures from elsewhere and *moves* a picture
  that already is in the dataset to the right class (a correction); "New Class…" asks for a name and adds the
  selection to it. Every action goes through :class:`cifar10.labelling.LabelBook` (organize's journal:
  verified copies, no overwrite); Labels ▸ Undo reverses the newest one. The copies run on a worker
  (:class:`desktop_app.background.BackgroundTask`, superqt) with their progress in the status bar, so hundreds
  of large photos never freeze the window: while one runs the labelling actions are disabled, and an Undo pressed
  meanwhile waits for it, then undoes it. Labels ▸ Stop Labelling stops a copy or move after the files in hand
  (what it did stays, undoable); closing the window meanwhile asks (Stop and Close / Keep Working).
* "Retrain" trains the instant model (``efficientnet_lite0_linear``, or the linear model the current one was
  trained as) on the dataset in a child process (`cifar10 train`, TensorFlow never loads into the app), saves
  it as ``<dataset>-instant`` and switches to it: the rows re-classify with the new model. Cached features
  make a retrain after a few new pictures take seconds. Its run folder (which Improve starts from) goes to the
  user's cache folder (``retrain_runs_dir``), pruned after each retrain (``prune_retrain_runs``).
* "Label Next…" lists the classified pictures that are not in the dataset yet, the most unsure first
  (margin between the two most likely classes): label them with 1-9 and the next one comes up.
* Models ▸ "Check Labels…" runs `cifar10 label-issues` on the dataset and lists the suspects with thumbnails;
  "Move to Suggested Class" corrects the selected ones (journaled, undoable).

The logic lives in :class:`Labelling` (no widgets of its own beyond actions and the two dialogs), so tests
drive it through the real window.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QInputDialog, QLabel, QListWidget,
                               QListWidgetItem, QMenu, QMessageBox, QProgressBar, QPushButton, QVBoxLayout)

from cifar10.labelling import LabelBook, LabelError, label_next_order
from cifar10.paths import model_file_stem, user_models_dir
from desktop_app.background import BackgroundTask
from desktop_app.train_process import (INSTANT_MODEL_OF, TrainProcess, prune_retrain_runs, retrain_runs_dir,
                                       train_arguments)
from desktop_app.widgets import ask, message_box

INSTANT_MODEL = INSTANT_MODEL_OF["efficientnet_lite0_transfer"]
LINEAR_MODELS = tuple(INSTANT_MODEL_OF.values())
# Pictures per class from which the fine-tune ("Improve", efficientnet_lite0_transfer) is suggested after an
# instant model: the smallest size where it was measured to win (docs/instant_model.md: instant as good or
# better at 150, 300 and 600 per class; fine-tune +7.4 points at 1,000).
IMPROVE_FROM_PER_CLASS = 1000
THUMB = 64


def _label_task(book: LabelBook, steps: list[tuple[str, list[str], str]], *, on_progress, should_stop):
    """On the worker: each step (``"move"`` or ``"copy"``, paths, class) as one journaled action, in order.
    Returns (actions done, the LabelError that stopped it or "")."""
    total, base, actions = sum(len(paths) for _, paths, _ in steps), 0, []
    for mode, paths, label in steps:
        if should_stop():  # Stop Labelling between two classes: the ones done stay (and are undoable)
            break
        run = book.move if mode == "move" else book.add
        try:
            actions.append(run(paths, label, on_progress=lambda done, _n, base=base: on_progress(base + done, total),
                               should_stop=should_stop))
        except LabelError as exc:
            if exc.action is not None:  # stopped part-way: what it did is kept (and undoable) like the rest
                actions.append(exc.action)
            return actions, str(exc)
        base += len(paths)
    return actions, ""


def _undo_task(book: LabelBook, *, on_progress, should_stop):
    """On the worker: undo the newest action. Returns (the action or None, the LabelError's text or "")."""
    try:
        return book.undo_last(on_progress=on_progress), ""
    except LabelError as exc:
        return None, str(exc)


class Labelling(QObject):
    changed = Signal()             # dataset, classes or undo state changed (menus rebuild)
    labelled = Signal(object)      # cifar10.labelling.Action (the last of a labelling run), once it is done
    undone = Signal(object)        # the Action Undo reversed (None: nothing to undo), once it is done
    retrain_finished = Signal(object)  # TrainOutcome
    issues_ready = Signal(object)  # list[dict] rows of the label-issues CSV (not after a cancelled check)

    def __init__(self, window):
        super().__init__(window)
        self.window, self.session = window, window.session
        self.book: LabelBook | None = None
        self.export_dir: Path | None = None  # None: the user's models folder
        self.process = TrainProcess(self)
        self.process.finished.connect(self._on_retrained)
        self.checker = TrainProcess(self)
        self.checker.finished.connect(self._on_checked)
        self.last_outcome = None
        self.retrain_text = ""  # what the status bar said after the last retrain (the next job's line replaces it)
        self.issues: list[dict] = []
        self._issues_csv = ""
        self.next_dialog: LabelNextDialog | None = None
        self.check_dialog: CheckLabelsDialog | None = None
        # Copies, moves and undos run on a worker, one at a time; what the running one is and its outcome:
        self.task = BackgroundTask(self)
        self.task.progress.connect(self._on_progress)
        self.task.succeeded.connect(lambda value: setattr(self, "_outcome", (value, "")))
        self.task.failed.connect(lambda text: setattr(self, "_outcome", (None, text)))
        self.task.finished.connect(self._on_task_finished)
        self._running: dict | None = None   # {"kind": "label" | "undo", "label": ..., "verb": ..., "count": ...}
        self._outcome: tuple = (None, "")
        self._undos = 0                       # Undo pressed while a task ran: undone once it is over
        self.last_undone = None               # the action the last Undo reversed (None: there was none)

        def action(text, slot, shortcut=None):
            act = QAction(text, window)
            act.triggered.connect(slot)
            if shortcut:
                act.setShortcut(shortcut)
            return act
        self.dataset_action = action("Dataset Folder…", self.choose_dataset)
        self.new_class_action = action("New Class…", lambda: self.new_class())
        self.undo_action = action("Undo Labelling", self.undo, QKeySequence.StandardKey.Undo)
        self.stop_action = action("Stop Labelling", self.stop)
        self.retrain_action = action("Retrain (Instant Model)", lambda: self.retrain(), "Ctrl+R")
        self.label_next_action = action("Label Next…", self.show_label_next)
        self.check_action = action("Check Labels…", lambda: self.show_check_labels())
        self.add_menu = QMenu("Add to Class", window)
        self.actually_menu = QMenu("This Is Actually", window)
        self.key_actions = []
        view = window.results
        for n in range(1, 10):  # 1-9: add the selection to the n-th class (works while the table has the focus)
            act = QAction(f"Class {n}", view)
            act.setShortcut(QKeySequence(str(n)))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(lambda _=False, n=n: self.label_by_key(n))
            view.addAction(act)
            self.key_actions.append(act)
        labels_menu = window.menuBar().addMenu("&Labels")
        for item in (self.dataset_action, None, self.add_menu, self.actually_menu, self.new_class_action, None,
                     self.undo_action, self.stop_action, self.retrain_action, None, self.label_next_action,
                     self.check_action):
            if item is None:
                labels_menu.addSeparator()
            elif isinstance(item, QMenu):
                labels_menu.addMenu(item)
            else:
                labels_menu.addAction(item)
        row_menu = view.actions_.menu
        view.actions_.menu = lambda: self._extend_row_menu(row_menu())
        self.changed.connect(self._rebuild)
        self._rebuild()

    # --- dataset ---------------------------------------------------------------------------------------
    def set_dataset(self, folder) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.book = LabelBook(folder)
        self.changed.emit()
        self.session.message.emit(f"Labelling into {folder}: {len(self.classes)} classes", 5000)

    def choose_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Dataset folder (one subfolder per class)")
        if folder:
            self.set_dataset(folder)

    @property
    def classes(self) -> list[str]:
        return self.book.classes() if self.book else []

    @property
    def busy(self) -> bool:
        """A copy, move or undo is under way (on the worker)."""
        return self.task.busy

    @property
    def stoppable(self) -> bool:
        """A copy or move is under way and not asked to stop yet (an Undo always runs to its end)."""
        return self.busy and (self._running or {}).get("kind") == "label" and not self.task.stopping

    def stop(self) -> bool:
        """Labels ▸ Stop Labelling: the copy or move under way stops after the files in hand (organize's
        group); what it did stays in the dataset, journaled, and Undo Labelling reverses it. False when there
        is nothing to stop."""
        if not self.stoppable:
            return False
        self._undos = 0  # a stop is not an undo: an Undo pressed meanwhile would now reverse the stopped part
        self._running["stopped"] = True
        self.task.cancel()
        self.session.message.emit("Stopping the labelling after the pictures in hand…", 0)
        self.changed.emit()
        return True

    def close_ok(self) -> bool:
        """The window is closing: a copy, move or undo under way asks first (Stop and Close / Keep Working);
        Stop and Close stops a copy or move after the files in hand (an undo runs to its end), waits for
        the worker, and returns True; Keep Working returns False (the window stays open)."""
        if not self.busy:
            return True
        running = self._running or {}
        kind = running.get("kind")
        undoing = kind == "undo"
        doing = "undone" if undoing else "moved" if running.get("verb") == "moved to" else "copied"
        answer = ask(self.window, "labelling_close_question", "Stop labelling?",
                     f"Pictures are still being {doing}" + ("." if undoing else " into the dataset."),
                     "Stop and Close waits for the undo to finish (a few seconds), then closes." if undoing else
                     "Stop and Close stops after the pictures in hand: those done stay in "
                     f"{self.book.root if self.book else 'the dataset'}, journaled (`cifar10 organize --undo "
                     "DATASET` reverses them).",
                     [("Stop and Close", QMessageBox.ButtonRole.AcceptRole),
                      ("Keep Working", QMessageBox.ButtonRole.RejectRole)],
                     default="Keep Working", escape="Keep Working")
        if answer != "Stop and Close":
            return False
        self._undos = 0
        if kind != "undo":
            self._running["stopped"] = True
            self.task.cancel()
        self.wait(120)
        return not self.busy

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until the labelling under way, and the Undos waiting for it, are over (scripts, tests)."""
        deadline = time.perf_counter() + timeout_s
        while self.busy and time.perf_counter() < deadline:
            self.task.wait(deadline - time.perf_counter())  # its end may start a waiting Undo
        return not self.busy

    def _rebuild(self) -> None:
        has = self.book is not None
        free = has and not self.busy  # one labelling at a time: the next waits until this one is done
        for menu, correct in ((self.add_menu, False), (self.actually_menu, True)):
            menu.clear()
            for n, name in enumerate(self.classes, 1):
                act = menu.addAction(f"{name}\t{n}" if n <= 9 and not correct else name)
                act.triggered.connect(lambda _=False, name=name, correct=correct: self.label_selected(name, correct))
            menu.addSeparator()
            menu.addAction("New Class…").triggered.connect(lambda _=False, c=correct: self.new_class(correct=c))
            menu.setEnabled(free)
        for act in (self.new_class_action, self.retrain_action, self.check_action, *self.key_actions):
            act.setEnabled(free)  # (retrain and check read the dataset: not while pictures land in it)
        self.label_next_action.setEnabled(has)
        self.dataset_action.setEnabled(not self.busy)
        self.undo_action.setEnabled(bool(self.book and (self.book.can_undo or self.busy)))
        self.stop_action.setEnabled(self.stoppable)

    def _extend_row_menu(self, menu: QMenu) -> QMenu:
        if self.book is not None:
            menu.addSeparator()
            menu.addMenu(self.add_menu)
            menu.addMenu(self.actually_menu)
        return menu

    # --- labelling ----------------------------------------------------------------------------------------
    def selected_paths(self) -> list[str]:
        return [r.path for r in self.window.results.actions_.selected() if r is not None]

    def label_by_key(self, n: int) -> None:
        classes = self.classes
        if self.book is not None and 0 < n <= len(classes):
            self.label_selected(classes[n - 1])

    def label_selected(self, label: str, correct: bool = False, paths: list[str] | None = None) -> bool:
        """Add the selected pictures (or ``paths``) to class ``label``; ``correct``: "This is actually" (dataset
        pictures move to that class, others are copied). The files are copied on the worker: False when it
        cannot start (no dataset, nothing selected, or another labelling still running); when it is done,
        ``labelled`` brings the action (an error is shown)."""
        if self.book is None or self.busy:
            return False
        paths = list(paths if paths is not None else self.selected_paths())
        if not paths:
            return False
        inside = [p for p in paths if self.book.contains(p)] if correct else []
        outside = [p for p in paths if p not in inside]
        steps = [("move", inside, label)] * bool(inside) + [("copy", outside, label)] * bool(outside)
        verb = "moved to" if inside else "added to"
        self._start("label", _label_task, steps, label=label, verb=verb, count=len(paths))
        return True

    def move_to_suggested(self, rows: list[dict]) -> bool:
        """Check Labels: move each picture to its suggested class (one action per class; journaled), on the
        worker; the moved pictures leave ``issues`` when it is done. False when it cannot start now."""
        if self.book is None or self.busy or not rows:
            return False
        by_class: dict[str, list[str]] = {}
        for row in rows:
            by_class.setdefault(row["suggested_label"], []).append(row["path"])
        self._start("label", _label_task, [("move", paths, label) for label, paths in by_class.items()],
                    label=", ".join(by_class), verb="moved to", count=len(rows))
        return True

    def _start(self, kind: str, task, *args, **about) -> None:
        self._running, self._outcome = {"kind": kind, **about}, (None, "")
        self.session.message.emit(self._progress_text(0, about.get("count", 0)), 0)
        self.task.start(task, self.book, *args)
        self.changed.emit()  # the labelling actions wait while it runs

    def _progress_text(self, done: int, total: int) -> str:
        running = self._running or {}
        if running.get("kind") == "undo":
            return f"Undoing: {done} / {total} pictures…" if total else "Undoing…"
        verb = "Moving" if running.get("verb") == "moved to" else "Adding"
        return f"{verb} pictures to {running.get('label')}: {done} / {total}…"

    def _on_progress(self, done: int, total: int) -> None:
        if self._running is not None:
            total = self._running.get("count") or total
            self.session.message.emit(self._progress_text(min(done, total), total), 0)

    def _on_task_finished(self) -> None:
        """The worker is done (busy is False now): the rows follow moved files, the status bar says what was
        done, the menus come back, and an Undo pressed meanwhile runs."""
        running, (value, failure) = self._running or {}, self._outcome
        self._running, self._outcome = None, (None, "")
        result, error = value if value is not None else (None, failure)
        if running.get("kind") == "undo":
            self._finish_undo(result, error)
        else:
            self._finish_label(result or [], error, running)
        if self._undos and self.book is not None:
            self._undos -= 1
            self.undo()
        self.changed.emit()

    def _finish_label(self, actions: list, error: str, running: dict) -> None:
        moved = set()
        for action in actions:
            if action.kind == "move":
                self.session.follow_moves(action.done)  # the rows go with the files, keeping place and answer
                moved |= {src for src, _ in action.done}
        if moved:  # a corrected picture is no suspect of Check Labels any more
            self.issues = [row for row in self.issues if row["path"] not in moved]
            if self.check_dialog is not None and self.check_dialog.isVisible():
                self.check_dialog.show_issues(self.issues)
        if error:
            self.session.message.emit("", 0)
            message_box(self.window, QMessageBox.Icon.Warning, "Could not label", error).open()
        elif running.get("stopped") or any(action.stopped for action in actions):
            done = sum(len(action.done) for action in actions)
            self.session.message.emit(f"Stopped: {done} of {running.get('count', 0)} pictures {running.get('verb')} "
                                      f"{running.get('label')} (Labels ▸ Undo Labelling reverses them)", 0)
        else:
            count = running.get("count", 0)
            self.session.message.emit(f"{count} picture{'s' * (count != 1)} {running.get('verb')} "
                                      f"{running.get('label')} ({self.book.root})", 5000)
        if actions:
            self.labelled.emit(actions[-1])
        if self.next_dialog is not None and self.next_dialog.isVisible():
            self.next_dialog.refresh()

    def new_class(self, name: str | None = None, correct: bool = False):
        if self.book is None:
            return None
        if name is None:
            name, ok = QInputDialog.getText(self.window, "New class", "Name of the new class:")
            if not ok or not name.strip():
                return None
        if self.selected_paths():
            return self.label_selected(name, correct)
        if self.busy:
            return None
        try:  # nothing selected: an empty class folder, to label into later
            (Path(self.book.root) / self.book.check_label(name)).mkdir(parents=True, exist_ok=True)
        except LabelError as exc:
            message_box(self.window, QMessageBox.Icon.Warning, "Could not add the class", str(exc)).open()
            return None
        self.changed.emit()
        return None

    def undo(self) -> bool:
        """Labels ▸ Undo: reverse the newest action, on the worker (``undone`` brings it, ``last_undone`` keeps
        it). Pressed while a labelling runs, it waits for it and then undoes it. False without a dataset."""
        if self.book is None:
            return False
        if self.busy:
            self._undos += 1
            self.session.message.emit("Undo waits for the labelling under way…", 0)
            return True
        self.last_undone = None
        self._start("undo", _undo_task)
        return True

    def _finish_undo(self, action, error: str) -> None:
        self.last_undone = action
        if error:
            self.session.message.emit("", 0)
            message_box(self.window, QMessageBox.Icon.Warning, "Could not undo", error).open()
        elif action is None:
            self.session.message.emit("Nothing to undo", 5000)
        else:
            if action.kind == "move":
                self.session.follow_moves([(dst, src) for src, dst in action.done])
            self.session.message.emit(f"Undone: {len(action.done)} picture(s) {action.kind} to {action.label}", 5000)
        self.undone.emit(action)

    # --- retrain ------------------------------------------------------------------------------------------
    def model_name(self) -> str:
        """``<dataset folder>-instant``: the model Retrain saves (and replaces)."""
        return f"{model_file_stem(Path(self.book.dataset).name) or 'dataset'}-instant"

    def retrain(self, model: str | None = None) -> bool:
        """Train the instant model on the dataset in a child process; False when it cannot start now."""
        if self.book is None or self.process.running or self.busy:
            return False
        if len(self.classes) < 2:
            message_box(self.window, QMessageBox.Icon.Information, "Retrain",
                        "The dataset needs at least two classes with pictures.").open()
            return False
        current = self.session.model.card.get("model") if self.session.model is not None else None
        model = model or (current if current in LINEAR_MODELS else INSTANT_MODEL)
        export_dir = self.export_dir or user_models_dir()
        runs_dir = retrain_runs_dir()
        try:  # the user's only: Improve trusts a run here to start from
            runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            message_box(self.window, QMessageBox.Icon.Critical, "Retrain",
                        f"Could not create the runs folder {runs_dir}: {exc}").open()
            return False
        self.retrain_action.setEnabled(False)
        self.session.message.emit(f"Retraining {model} on {self.book.dataset}…", 0)
        self.process.start(train_arguments(model, self.book.dataset, name=self.model_name(), export_dir=export_dir,
                                           replace=True, runs_dir=runs_dir))
        return True

    def _on_retrained(self, outcome) -> None:
        self.last_outcome = outcome
        self.retrain_action.setEnabled(self.book is not None)
        if outcome.ok:
            prune_retrain_runs(keep=TrainProcess.runs_in_use())  # this run is the newest: it stays
            name = outcome.exported["model"]
            self.window.reload_models(name)  # the picker and the session: the new file, rows re-classified
            if self.session.model is None or self.session.model.name != name:
                self.window.set_model(name)
            accuracy = outcome.exported.get("test_accuracy")
            text = f"Retrained {name} in {outcome.exported.get('training_wall_time_s', 0):.0f} s" + (
                f": {accuracy:.0%} of the held-out pictures right" if isinstance(accuracy, (int, float)) else "")
            per_class = self._pictures_per_class()
            if per_class >= IMPROVE_FROM_PER_CLASS:
                text += (f". With {per_class} pictures per class, fine-tuning should do better: Models ▸ Train on a "
                         "Folder… ▸ Improve (minutes)")
            self.retrain_text = text
            self.session.message.emit(text, 0)
        elif not outcome.cancelled:
            message_box(self.window, QMessageBox.Icon.Critical, "Retraining failed", outcome.error).open()
        self.retrain_finished.emit(outcome)
        self.window.job_finished.emit()

    def _pictures_per_class(self) -> int:
        from cifar10.image_folders import scan_image_folder
        counts = scan_image_folder(self.book.dataset).counts if self.book else {}
        return min(counts.values()) if counts else 0

    # --- Label Next, Check Labels ------------------------------------------------------------------------
    def label_next(self) -> list:
        """Classified pictures not in the dataset, most unsure first."""
        return label_next_order(self.session.rows(), self.book)

    def show_label_next(self):
        if self.book is None:
            return None
        self.next_dialog = self.next_dialog or LabelNextDialog(self)
        self.next_dialog.refresh()
        self.next_dialog.show()
        return self.next_dialog

    def check_labels(self, model: str | None = None) -> bool:
        """Start `cifar10 label-issues` on the dataset (results: ``issues_ready``)."""
        if self.book is None or self.checker.running or self.busy:
            return False
        current = self.session.model.card.get("model") if self.session.model is not None else None
        model = model or (current if current in LINEAR_MODELS else INSTANT_MODEL)
        fd, self._issues_csv = tempfile.mkstemp(prefix="label-issues-", suffix=".csv")
        os.close(fd)
        self.session.message.emit(f"Checking the labels of {self.book.dataset}…", 0)
        self.checker.start(["-m", "cifar10_cli", "label-issues", self.book.dataset, "--model", model,
                            "--output", self._issues_csv, "--progress", "json"])
        return True

    def cancel_check(self) -> None:
        """Stop Check Labels (it changes nothing in the dataset; the caches it was filling stay consistent)."""
        self.checker.cancel()

    def _on_checked(self, outcome) -> None:
        if outcome.cancelled:
            self.issues = []
            self.session.message.emit("Check Labels cancelled", 5000)
        elif outcome.exit_code == 0:
            self.issues = read_issues(self._issues_csv)
            self.session.message.emit(f"{len(self.issues)} picture(s) may be in the wrong class", 0)
        else:
            self.issues = []
            message_box(self.window, QMessageBox.Icon.Critical, "Check Labels failed",
                        outcome.error or "\n".join(outcome.stderr_tail[-8:])).open()
        Path(self._issues_csv).unlink(missing_ok=True)
        if not outcome.cancelled:
            self.issues_ready.emit(self.issues)
        self.window.job_finished.emit()

    def show_check_labels(self, model: str | None = None):
        if self.book is None:
            return None
        self.check_dialog = CheckLabelsDialog(self)
        self.check_dialog.show()
        self.check_labels(model)
        return self.check_dialog


def read_issues(path: str) -> list[dict]:
    """The label-issues CSV (``path,given_label,suggested_label,confidence``) as dicts, in its order."""
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(row, confidence=float(row["confidence"])) for row in csv.DictReader(f)]


def thumbnail(path: str) -> QIcon:
    pixmap = QPixmap(path)
    if pixmap.isNull():
        return QIcon()
    return QIcon(pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation))


class LabelNextDialog(QDialog):
    """The unlabelled pictures, most unsure first; picking one selects its row (1-9 there labels it)."""

    def __init__(self, labelling: Labelling):
        super().__init__(labelling.window)
        self.labelling = labelling
        self.setWindowTitle("Label Next")
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.currentItemChanged.connect(self._select)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Most unsure first: select a picture, then press 1-9 in the results table "
                                "(or use Labels ▸ Add to Class)."))
        layout.addWidget(self.list)
        self.resize(420, 520)

    def refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for result in self.labelling.label_next():
            top = result.top_k(2)
            text = f"{os.path.basename(result.path)} — " + " / ".join(f"{c} {p:.0%}" for c, p in top)
            item = QListWidgetItem(thumbnail(result.path), text)
            item.setData(Qt.ItemDataRole.UserRole, result.path)
            self.list.addItem(item)
        self.list.blockSignals(False)
        if self.list.count():
            self.list.setCurrentRow(0)

    def paths(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _select(self, item, _previous=None) -> None:
        if item is None:
            return
        view = self.labelling.window.results
        path = item.data(Qt.ItemDataRole.UserRole)
        for row in range(view.proxy.rowCount()):
            result = view.result_at(view.proxy.index(row, 0))
            if result is not None and result.path == path:
                view.select_row(row)
                break


class CheckLabelsDialog(QDialog):
    """Models ▸ Check Labels…: the suspects of `cifar10 label-issues`, most suspicious first, with thumbnails.
    While it runs: its progress (reading the pictures, computing their features) and Cancel; closing the dialog
    cancels it too."""

    STAGES = {"cache": "Reading pictures %v / %m", "features": "Computing features %v / %m"}

    def __init__(self, labelling: Labelling):
        super().__init__(labelling.window)
        self.labelling = labelling
        self.setWindowTitle("Check Labels")
        self.status = QLabel("Looking for pictures in the wrong class folder (out-of-fold predictions of the "
                             "instant model)…")
        self.status.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)  # busy until the first event (loading TensorFlow)
        self.progress.setFormat("starting…")
        self.cancel_button = QPushButton("Cancel Check")
        self.cancel_button.clicked.connect(labelling.cancel_check)
        self.events: list[dict] = []
        labelling.checker.event.connect(self.show_event)
        labelling.checker.finished.connect(self.show_finished)
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.move_button = QPushButton("Move to Suggested Class")
        self.move_button.clicked.connect(self.move_selected)
        self.move_button.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.move_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        for widget in (self.status, self.progress, self.list, buttons):
            layout.addWidget(widget)
        labelling.issues_ready.connect(self.show_issues)
        labelling.changed.connect(self._update_move)  # not while a labelling runs
        self.resize(560, 560)

    def show_event(self, event: dict) -> None:
        """A progress event of the check: the stage and its count on the bar."""
        self.events.append(event)
        text = self.STAGES.get(event.get("event"))
        if text is not None:
            self.progress.setRange(0, max(1, int(event.get("total", 1))))
            self.progress.setValue(int(event.get("done", 0)))
            self.progress.setFormat(text)

    def show_finished(self, outcome) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if outcome.exit_code == 0 and not outcome.cancelled else 0)
        self.progress.setFormat("Cancelled" if outcome.cancelled else "Done" if outcome.exit_code == 0 else "Failed")
        if outcome.cancelled:
            self.status.setText("Cancelled: nothing was checked or changed.")

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.labelling.checker.running:  # nothing to keep: the check changes nothing
            self.labelling.cancel_check()
        super().closeEvent(event)

    def show_issues(self, rows: list[dict]) -> None:
        self.list.clear()
        for row in rows:
            item = QListWidgetItem(thumbnail(row["path"]), f"{os.path.basename(row['path'])}: in {row['given_label']}, "
                                   f"looks like {row['suggested_label']} ({row['confidence']:.0%})")
            item.setData(Qt.ItemDataRole.UserRole, row)
            self.list.addItem(item)
        self.status.setText(f"{len(rows)} picture{'s' * (len(rows) != 1)} may be in the wrong class folder, most "
                            "suspicious first. Moving one is journaled: Labels ▸ Undo Labelling puts it back."
                            if rows else "No suspects: every picture agrees with its class folder.")
        self._update_move()

    def _update_move(self) -> None:
        self.move_button.setEnabled(self.list.count() > 0 and not self.labelling.busy)

    def move_selected(self) -> None:
        rows = [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()]
        if rows:
            self.labelling.move_to_suggested(rows)  # the list shows the rest once the moves are done
