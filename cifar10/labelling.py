"""Label pictures into a dataset folder (one subfolder per class), journaled and undoable; no Qt, no TensorFlow.

A :class:`LabelBook` is bound to a dataset folder ``DATASET`` (the folder ``cifar10 train --data`` reads):

* :meth:`LabelBook.add` copies pictures into ``DATASET/<class>/`` ("Add to class", "This is actually" on a
  picture from elsewhere, "New class…" with a new name). The original is never moved or changed.
* :meth:`LabelBook.move` moves pictures that already are in the dataset to another class folder (a
  correction: "This is actually" on a dataset picture, Check Labels' "move to suggested class").
* :meth:`LabelBook.undo_last` reverses the newest action that is not undone yet.

Every action is one run of :mod:`cifar10.organize`'s journal in ``DATASET/.cifar10-organize.jsonl``: verified
copies (written aside, fsynced, compared, renamed), never an overwrite (a taken name gets a suffix), a journal
bound to its folder, and an undo that never destroys the last copy of a picture. ``cifar10 organize --undo
DATASET`` undoes every labelling action at once.

:func:`label_next_order` orders unlabelled pictures by how unsure the current model is about them (smallest
margin between its two most likely classes first; entropy breaks ties), so the most useful ones are labelled first.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from cifar10.errors import UserFacingError
from cifar10.image_folders import list_class_folders, reserved_names
from cifar10.organize import OrganizeError, Plan, Report, Step, class_folder_name, execute, free_name, undo

LABELLING = "labelling"  # the journal's "model" field for these runs
Progress = Callable[[int, int], None]  # (done, total) files of one action


class LabelError(UserFacingError):
    action: "Action | None" = None  # an action stopped part-way (a full disk): what it did, kept for undo_last


@dataclass
class Action:
    kind: str                                   # "add" | "move"
    label: str
    run_id: str
    done: list[tuple[str, str]] = field(default_factory=list)   # (source, destination)
    problems: list[str] = field(default_factory=list)
    undone: bool = False
    stopped: bool = False                       # asked to stop part-way: ``done`` is what it did (undoable)


class LabelBook:
    def __init__(self, dataset: str | os.PathLike):
        self.dataset = os.path.abspath(os.fspath(dataset))
        # A dataset with train/ (+ val/ test/) folders gets its new pictures in train/<class>/.
        self.root = _train_folder(self.dataset) or self.dataset
        self.actions: list[Action] = []

    # --- what the dataset holds --------------------------------------------------------------------------
    def classes(self) -> list[str]:
        """The class folder names (sorted, NFC), as training sees them; [] while the folder does not exist."""
        if not os.path.isdir(self.root):
            return []
        folders, _loose, _problems = list_class_folders(self.root)
        return sorted(name for name, _path in folders if not name.startswith("_"))

    def contains(self, path: str) -> bool:
        """Whether ``path`` lies in one of the dataset's class folders."""
        real, root = os.path.realpath(path), os.path.realpath(self.root)
        return os.path.dirname(real) != root and os.path.commonpath([real, root]) == root

    def class_of(self, path: str) -> str | None:
        """The class folder a dataset picture is in (its first folder below the dataset), else None."""
        if not self.contains(path):
            return None
        return os.path.relpath(os.path.realpath(path), os.path.realpath(self.root)).split(os.sep, 1)[0]

    # --- actions ---------------------------------------------------------------------------------------------
    def check_label(self, label: str) -> str:
        label = label.strip()
        if not label:
            raise LabelError("a class needs a name")
        if label.lower() in {n.lower() for n in reserved_names()}:
            raise LabelError(f"{label!r} cannot be a class: it is the name of a results column")
        clash = [c for c in self.classes() if c.lower() == label.lower() and c != label]
        if clash:
            label = clash[0]  # the existing folder's spelling: class names differ ignoring case
        if class_folder_name(label) != label or label.startswith((".", "_")):
            raise LabelError(f"{label!r} cannot be a class folder name: use letters, digits, spaces, '-' or '_'")
        return label

    def add(self, paths: Sequence[str], label: str, *, on_progress: Progress | None = None,
            should_stop: Callable[[], bool] | None = None) -> Action:
        """Copy ``paths`` into ``DATASET/<label>/`` (created when new); pictures already in that class are
        skipped. Pictures that are in another class folder of the dataset are copied too (use :meth:`move` to
        correct those). ``on_progress(done, total)``: as :func:`cifar10.organize.execute` reports it;
        ``should_stop()`` true stops it after the group of files under way (organize.GROUP; the action is
        ``stopped``, and undoable)."""
        return self._run("copy", paths, label, on_progress, should_stop)

    def move(self, paths: Sequence[str], label: str, *, on_progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None) -> Action:
        """Move dataset pictures into ``DATASET/<label>/`` (a label correction); others raise LabelError."""
        outside = [p for p in paths if not self.contains(p)]
        if outside:
            raise LabelError(f"{outside[0]} is not in the dataset {self.root}: add it to a class instead")
        return self._run("move", paths, label, on_progress, should_stop)

    def _run(self, mode: str, paths: Sequence[str], label: str, on_progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None) -> Action:
        label = self.check_label(label)
        paths = [os.path.abspath(os.fspath(p)) for p in paths]
        paths = [p for p in dict.fromkeys(paths) if self.class_of(p) != label]
        if not paths:
            return Action("add" if mode == "copy" else "move", label, "")
        plan = Plan(self.root, mode, LABELLING, 0.0, sorted({os.path.dirname(p) for p in paths}))
        taken: set[str] = set()
        target = os.path.join(self.root, label)
        for path in paths:
            name = free_name(target, os.path.basename(path), taken)
            taken.add(name.lower())
            plan.steps.append(Step(path, label, name, label, 1.0))
        kind = "add" if mode == "copy" else "move"
        try:
            report: Report = execute(plan, on_progress=on_progress, should_stop=should_stop)
        except OrganizeError as exc:
            partial = exc.report
            error = LabelError(str(exc))
            if partial is not None and partial.run_id and partial.done:  # stopped part-way: undoable like the rest
                error.action = Action(kind, label, partial.run_id, partial.done, partial.problems)
                self.actions.append(error.action)
            raise error from None
        action = Action(kind, label, report.run_id, report.done, report.problems, stopped=report.cancelled)
        self.actions.append(action)
        return action

    def undo_last(self, *, on_progress: Progress | None = None) -> Action | None:
        """Reverse the newest action not undone yet (None when there is none); LabelError when a step could not
        be undone without losing a file (it stays, and is named)."""
        action = next((a for a in reversed(self.actions) if not a.undone and a.run_id), None)
        if action is None:
            return None
        try:
            report = undo(self.root, run=action.run_id, on_progress=on_progress)
        except OrganizeError as exc:
            raise LabelError(str(exc)) from None
        if report.problems:
            raise LabelError("; ".join(report.problems))
        action.undone = True
        return action

    def labelled(self) -> set[str]:
        """Pictures from elsewhere that this book's actions (not undone) copied into the dataset."""
        return {os.path.normcase(src) for a in self.actions if not a.undone and a.kind == "add" for src, _ in a.done}

    @property
    def can_undo(self) -> bool:
        return any(not a.undone and a.run_id for a in self.actions)


def _train_folder(dataset: str) -> str | None:
    if not os.path.isdir(dataset):
        return None
    folders, _loose, _problems = list_class_folders(dataset)
    names = {name.lower(): path for name, path in folders}
    if "train" in names and set(names) <= {"train", "val", "validation", "test"}:
        return names["train"]
    return None


def margin(probabilities: Sequence[float]) -> float:
    top = sorted((float(p) for p in probabilities), reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def entropy(probabilities: Sequence[float]) -> float:
    return -sum(float(p) * math.log(float(p)) for p in probabilities if p > 0)


def label_next_order(results: Sequence, book: LabelBook | None = None) -> list:
    """Classified results (``cifar10.inference.Result``) that are not in the dataset (nor copied into it by
    ``book``), most unsure first: smallest margin between the two most likely classes, then highest entropy."""
    done = book.labelled() if book is not None else set()
    rows = [r for r in results if not r.error and r.probabilities is not None
            and (book is None or not (book.contains(r.path) or os.path.normcase(os.path.abspath(r.path)) in done))]
    return sorted(rows, key=lambda r: (margin(r.probabilities), -entropy(r.probabilities)))


def dataset_folder_for(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()
