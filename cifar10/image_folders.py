"""Find the classes and images of a labelled image folder: the one scan behind ``cifar10 train --data``,
the desktop "Train on a Folder" dialog and ``cifar10 evaluate --folder``.

Numpy-free and TensorFlow-free (standard library + this package only), so every app can call it.

Layouts::

    PATH/cane/*.jpg, PATH/gatto/*.jpg, ...        "flat": one subfolder per class (Animals-10)
    PATH/train/<class>/..., PATH/val/<class>/...   "split": train/ + val/ (or validation/) + optional test/,
    PATH/test/<class>/...                                    each with class subfolders

A class folder's images may sit at any depth below it. Class names are the folder names (Unicode NFC,
sorted), and an optional ``PATH/classes.json`` maps folder names to the names apps show::

    {"cane": "dog", "gatto": "cat", "ragno": "spider"}

Nothing here raises on odd input (missing or unreadable folders, broken symlinks, non-ASCII names): what
is wrong becomes a :class:`Problem` ("error": training cannot start; "warning": it can, and the user is
told what was left out). Files are only listed here; :mod:`cifar10.image_cache` decodes them (and finds
the unreadable ones and the duplicates).
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from cifar10.inference import SKIPPED_FILE_NAMES, iter_image_files
from cifar10.preprocess import IMAGE_SUFFIXES
from cifar10 import contract

CLASSES_FILE = "classes.json"
FEW_IMAGES = 10  # a class with fewer images than this gets a warning
SPLIT_NAMES = ("train", "val", "test")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
# Folders that are never classes: zip / OS artefacts.
IGNORED_FOLDERS = frozenset({"__macosx", "$recycle.bin", "system volume information", "@eadir"})
FLAT = "flat"
SPLIT = "split"


def reserved_names() -> frozenset[str]:
    """Names a class may not have (ignoring case): the fixed columns of results files."""
    return frozenset(contract.RESERVED_CLASS_NAMES)


@dataclass(frozen=True)
class Problem:
    severity: str                 # "error" (training cannot start) or "warning"
    message: str                  # one sentence for a person
    paths: tuple[str, ...] = ()   # the files / folders it is about

    def to_dict(self) -> dict:
        return {"severity": self.severity, "message": self.message, "paths": [printable(p) for p in self.paths]}


@dataclass
class FolderScan:
    """What :func:`scan_image_folder` found. ``files[split][class]`` lists the image files (sorted paths);
    the flat layout has the one split ``"all"``; ``classes`` are the usable class folder names (NFC, sorted)."""

    path: Path
    layout: str = FLAT                                  # "flat" or "split"
    classes: tuple[str, ...] = ()
    display_names: tuple[str, ...] | None = None         # from classes.json, aligned with classes
    files: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    split_folders: dict[str, str] = field(default_factory=dict)  # split layout: "val" -> "validation", ...
    non_images: list[str] = field(default_factory=list)  # skipped: not an image file name
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when training can start (warnings allowed)."""
        return not self.errors

    @property
    def labels(self) -> tuple[str, ...]:
        """What apps show for each class: the display names if classes.json gave them, else the folder names."""
        return self.display_names or self.classes

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def counts(self) -> dict[str, int]:
        """Images per class, all splits together."""
        return {c: sum(len(per_class.get(c, ())) for per_class in self.files.values()) for c in self.classes}

    @property
    def split_counts(self) -> dict[str, dict[str, int]]:
        return {split: {c: len(per_class.get(c, ())) for c in self.classes} for split, per_class in self.files.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def class_files(self, name: str) -> list[str]:
        return [path for per_class in self.files.values() for path in per_class.get(name, ())]

    def to_dict(self) -> dict:
        """JSON-ready (``cifar10 train --progress json``'s "scan" event, run.json)."""
        return {"path": printable(str(self.path)), "layout": self.layout, "classes": self.counts,
                "display_names": dict(zip(self.classes, self.display_names)) if self.display_names else None,
                "splits": self.split_counts if self.layout == SPLIT else None,
                "non_images": [printable(p) for p in self.non_images],
                "problems": [p.to_dict() for p in self.problems]}


def printable(text: str) -> str:
    """``text`` safe to print or write as UTF-8 (file names that are not valid UTF-8 get U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def class_name(folder_name: str) -> str:
    return unicodedata.normalize("NFC", folder_name)


def is_image_name(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES


def _subfolders_and_files(folder: str, problems: list[Problem]) -> tuple[list[os.DirEntry], list[str]]:
    """Non-hidden subfolders (symlinked ones included) and files of ``folder``, sorted by name."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        problems.append(Problem("error", f"cannot read the folder {printable(folder)}: {exc.strerror or exc}",
                                (folder,)))
        return [], []
    folders, files = [], []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower() in IGNORED_FOLDERS:
            continue
        try:
            if entry.is_dir():  # follows a symlink given at this level (a linked class folder is a class)
                folders.append(entry)
            elif entry.name.lower() not in SKIPPED_FILE_NAMES:
                files.append(entry.path)
        except OSError:
            continue
    return folders, files


def list_class_folders(folder: str | os.PathLike) -> tuple[list[tuple[str, str]], list[str], list[Problem]]:
    """The class subfolders of ``folder`` as ``(class name (NFC), path)``, the loose files and folders
    that are not classes (hidden ones and OS artefacts left out), and the problems met."""
    problems: list[Problem] = []
    folders, files = _subfolders_and_files(os.fspath(folder), problems)
    return [(class_name(e.name), e.path) for e in folders], files, problems


def list_class_files(class_folder: str) -> tuple[list[str], list[str]]:
    """``(image files, other files)`` under one class folder, recursively (hidden files, Thumbs.db and
    ``.xmp`` sidecars left out, as in every folder scan)."""
    images, others = [], []
    for path in iter_image_files([class_folder]):
        (images if is_image_name(path) else others).append(path)
    return images, others


def _detect_layout(root: str, folders: list[os.DirEntry]) -> tuple[str, dict[str, str], list[Problem]]:
    by_lower: dict[str, list[str]] = {}
    for entry in folders:
        by_lower.setdefault(entry.name.lower(), []).append(entry.name)
    if "train" not in by_lower:
        return FLAT, {}, []
    found = {split: [name for alias in SPLIT_FOLDERS[split] for name in by_lower.get(alias, [])]
             for split in SPLIT_NAMES}
    has_other_split = bool(found["val"] or found["test"])
    if not has_other_split:
        # "train" may be a class (trains, planes, buses): only a train/ folder holding nothing but
        # subfolders makes the split layout.
        problems: list[Problem] = []
        sub, loose = _subfolders_and_files(os.path.join(root, found["train"][0]), problems)
        if not sub or any(is_image_name(p) for p in loose):
            return FLAT, {}, []
    problems = []
    chosen: dict[str, str] = {}
    for split in SPLIT_NAMES:
        names = found[split]
        if len(names) > 1:
            problems.append(Problem("error", f"{' and '.join(names)} are both there: keep one "
                                    f"{'/'.join(SPLIT_FOLDERS[split])} folder",
                                    tuple(os.path.join(root, n) for n in names)))
        if names:
            chosen[split] = names[0]
    return SPLIT, chosen, problems


def scan_image_folder(path: str | os.PathLike) -> FolderScan:
    """Scan a labelled image folder (see the module docstring); never raises for the folder's contents."""
    root = Path(os.fspath(path)).expanduser()
    scan = FolderScan(path=root)
    problems = scan.problems
    if not root.exists():
        problems.append(Problem("error", f"{printable(str(root))} does not exist", (str(root),)))
        return scan
    if not root.is_dir():
        problems.append(Problem("error", f"{printable(str(root))} is not a folder: pick the folder that holds one "
                                "subfolder per class", (str(root),)))
        return scan
    folders, loose = _subfolders_and_files(str(root), problems)
    loose = [p for p in loose if os.path.basename(p) != CLASSES_FILE]
    scan.layout, scan.split_folders, layout_problems = _detect_layout(str(root), folders)
    problems.extend(layout_problems)

    if scan.layout == FLAT:
        class_folders = {"all": [(class_name(e.name), e.path) for e in folders]}
    else:
        class_folders = {}
        chosen = {name.lower() for name in scan.split_folders.values()}
        others = [e.path for e in folders if e.name.lower() not in chosen]
        if others:
            problems.append(Problem("warning", f"{len(others)} folder{'s' * (len(others) != 1)} next to the "
                                    "train/val/test folders left out (not a split): "
                                    + ", ".join(printable(os.path.basename(p)) for p in others), tuple(others)))
        for split, name in scan.split_folders.items():
            sub, split_loose = _subfolders_and_files(str(root / name), problems)
            class_folders[split] = [(class_name(e.name), e.path) for e in sub]
            loose += split_loose
    if loose:
        problems.append(Problem("warning", f"{len(loose)} file{'s' * (len(loose) != 1)} not in a class folder, "
                                "left out: " + _names(loose), tuple(loose)))

    # List every class folder's files; a class is defined by the train split (or the folders of a flat one).
    listed: dict[str, dict[str, list[str]]] = {}
    for split, entries in class_folders.items():
        seen: dict[str, str] = {}
        listed[split] = {}
        for name, folder in entries:
            if name in seen:
                problems.append(Problem("error", f"two folders have the same class name {printable(name)!r} "
                                        "(they differ only in Unicode normalisation): rename one",
                                        (seen[name], folder)))
                continue
            seen[name] = folder
            images, others = list_class_files(folder)
            listed[split][name] = images
            scan.non_images += others
    if scan.non_images:
        problems.append(Problem("warning", f"{len(scan.non_images)} file{'s' * (len(scan.non_images) != 1)} "
                                "skipped: not image files (" + _names(scan.non_images) + ")", tuple(scan.non_images)))

    main_split = "all" if scan.layout == FLAT else "train"
    if scan.layout == SPLIT and "train" not in listed:
        listed["train"] = {}
    candidates = sorted(listed.get(main_split, {}))
    classes = []
    for name in candidates:
        images = listed[main_split][name]
        folder = dict(class_folders[main_split])[name]
        if not images:
            where = "" if scan.layout == FLAT else " in train/"
            problems.append(Problem("warning", f"class folder {printable(name)!r}{where} has no images: skipped",
                                    (folder,)))
            continue
        classes.append(name)
    for split, per_class in listed.items():
        stray = sorted(set(per_class) - set(classes))
        stray_files = [p for name in stray for p in per_class[name]]
        if split != main_split and stray_files:
            problems.append(Problem("warning", f"{split}/ has class folder{'s' * (len(stray) != 1)} "
                                    f"{', '.join(map(repr, map(printable, stray)))} that train/ does not have (or "
                                    f"has empty): {len(stray_files)} image{'s' * (len(stray_files) != 1)} left out",
                                    tuple(stray_files)))
        missing = [c for c in classes if not per_class.get(c)]
        if split != main_split and missing:
            problems.append(Problem("warning", f"{split}/ has no images of {', '.join(map(printable, missing))}"))
    scan.classes = tuple(classes)
    scan.files = {split: {c: list(per_class.get(c, [])) for c in classes} for split, per_class in listed.items()}
    if scan.layout == SPLIT:  # train, val, test order
        scan.files = {s: scan.files[s] for s in SPLIT_NAMES if s in scan.files}

    if len(classes) < 2:
        found = f"only {printable(classes[0])!r}" if classes else "none"
        problems.append(Problem("error", f"a classifier needs at least 2 classes with images; found {found}. "
                                + ("Put one subfolder per class in the folder, e.g. "
                                   f"{printable(str(root / 'cat' / 'photo.jpg'))}" if scan.layout == FLAT else
                                   "Put one subfolder per class in train/")))
    few = {name: n for name, n in scan.counts.items() if n < FEW_IMAGES}
    if few:
        problems.append(Problem("warning", f"{len(few)} class{'es' * (len(few) != 1)} with fewer than {FEW_IMAGES} "
                                "images (a few dozen per class is the least for useful results): "
                                + ", ".join(f"{printable(name)} ({n})" for name, n in few.items())))
    folder_names = {name for entries in class_folders.values() for name, _ in entries}
    scan.display_names = _read_classes_json(root, scan, folder_names, problems)
    _check_names(scan, problems)
    return scan


def _check_names(scan: FolderScan, problems: list[Problem]) -> None:
    """The contract's rules for class and display names (:func:`cifar10.contract.class_name_problem`), each
    broken rule as an error that says what to rename."""
    reserved = ", ".join(contract.RESERVED_CLASS_NAMES)
    before = len(problems)
    for names, what, fix in ((scan.classes, "class folder", "rename the folder"),
                             (scan.display_names or (), "display name", f"pick another one in {CLASSES_FILE}")):
        for name in names:
            if name.casefold() in contract.RESERVED_CLASS_NAMES:
                problems.append(Problem("error", f"{what} {printable(name)!r} is also a column of the results files "
                                        f"({reserved}): {fix}"))
            elif any(unicodedata.category(ch).startswith("C") for ch in name) or not name.strip():
                problems.append(Problem("error", f"{what} {printable(name)!r} is empty or has control characters: "
                                        f"{fix}"))
        folded: dict[str, list[str]] = {}
        for name in names:
            folded.setdefault(name.casefold(), []).append(name)
        for same in (group for group in folded.values() if len(group) > 1):
            problems.append(Problem("error", f"{what}s {' and '.join(map(repr, same))} differ only in case "
                                    f"(class names must differ ignoring case): {fix}"))
    if len(problems) == before and len(scan.classes) >= 2:  # any rule the contract adds later
        for names, what in ((scan.classes, "class folders"), (scan.display_names, "display names")):
            problem = contract.class_name_problem(list(names)) if names else None
            if problem:
                problems.append(Problem("error", f"{what}: {problem}"))


def _names(paths: list[str], shown: int = 5) -> str:
    names = ", ".join(printable(os.path.basename(p)) for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def _read_classes_json(root: Path, scan: FolderScan, folder_names: set[str],
                       problems: list[Problem]) -> tuple[str, ...] | None:
    path = root / CLASSES_FILE
    if not path.is_file():
        return None
    where = str(path)
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem("error", f"cannot read {CLASSES_FILE}: {exc}", (where,)))
        return None
    except json.JSONDecodeError as exc:
        problems.append(Problem("error", f"{CLASSES_FILE} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                f"{exc.msg})", (where,)))
        return None
    if not isinstance(mapping, dict):
        problems.append(Problem("error", f'{CLASSES_FILE} must be an object mapping folder names to display names, '
                                'e.g. {"cane": "dog", "gatto": "cat"}', (where,)))
        return None
    mapping = {class_name(k): v for k, v in mapping.items()}
    bad = False
    unknown = sorted(k for k in mapping if k not in folder_names)  # an empty (skipped) class folder is known
    if unknown:
        problems.append(Problem("error", f"{CLASSES_FILE} names folder{'s' * (len(unknown) != 1)} that "
                                f"{'do' if len(unknown) != 1 else 'does'} not exist: {', '.join(map(repr, unknown))} "
                                f"(class folders: {', '.join(scan.classes)})", (where,)))
        bad = True
    wrong = sorted(k for k, v in mapping.items() if not isinstance(v, str) or not v.strip())
    if wrong:
        problems.append(Problem("error", f"{CLASSES_FILE}: the display name of {', '.join(map(repr, wrong))} must be a "
                                "non-empty string", (where,)))
        bad = True
    if bad:
        return None
    shown = tuple(unicodedata.normalize("NFC", mapping.get(c, c).strip()) for c in scan.classes)
    duplicates = sorted({name for name in shown if shown.count(name) > 1})
    if duplicates:
        problems.append(Problem("error", f"{CLASSES_FILE} gives two classes the same display name: "
                                f"{', '.join(map(repr, duplicates))}", (where,)))
        return None
    return shown


def describe_scan(scan: FolderScan, *, max_listed: int = 5) -> str:
    """A few lines for a person: the classes with their image counts, then the errors and warnings."""
    lines = []
    layout = ("one folder per class" if scan.layout == FLAT else
              "split folders " + ", ".join(f"{name}/" for name in scan.split_folders.values()))
    if scan.classes:
        lines.append(f"{printable(str(scan.path))}: {len(scan.classes)} classes, {scan.total} images ({layout})")
        width = max(len(_shown(scan, c)) for c in scan.classes)
        split_counts = scan.split_counts
        for i, name in enumerate(scan.classes):
            per_split = ("  (" + ", ".join(f"{split} {counts[name]}" for split, counts in split_counts.items()) + ")"
                         if scan.layout == SPLIT else "")
            lines.append(f"  {_shown(scan, name):<{width}}  {scan.counts[name]:>6}{per_split}")
    else:
        lines.append(f"{printable(str(scan.path))}: no classes found")
    for problem in scan.errors + scan.warnings:
        lines.append(f"{problem.severity}: {problem.message}")
        if len(problem.paths) > 1:
            lines.extend(f"    {printable(p)}" for p in problem.paths[:max_listed])
            if len(problem.paths) > max_listed:
                lines.append(f"    ... and {len(problem.paths) - max_listed} more")
    return "\n".join(lines)


def _shown(scan: FolderScan, name: str) -> str:
    if scan.display_names:
        shown = scan.display_names[scan.classes.index(name)]
        if shown != name:
            return printable(f"{name} ({shown})")
    return printable(name)
