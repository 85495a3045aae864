"""Save a screenshot of the main window (offscreen): docs/app_screenshot.png.

Loads ``resources/samples`` with the best shipped model (or ``--model``), selects a row, grabs the
window. Uses a throw-away settings file, so the user's remembered folder/model are not touched.

    python -m desktop_app.screenshot [--model NAME|PATH.onnx] [--select cat] [--out docs/app_screenshot.png]
    python -m desktop_app.screenshot --images FOLDER --select photo_rocket --heatmap --out docs/app_unsure.png

``--dialog train`` grabs Models ▸ Train on a Folder… after a real run (``cifar10 train`` in a child process) on
``--train-classes`` CIFAR-10 test images written as class folders (plus one corrupt file); ``--main-out`` then
grabs the window with the new model classifying other test images of those classes (its own classes)::

    python -m desktop_app.screenshot --dialog train --out docs/train_dialog.png --main-out docs/own_classes.png

``--dialog evaluate`` / ``--dialog organize`` grab the Evaluate on a Labelled Folder… / Sort into Class
Folders… dialog instead, run on CIFAR-10 test images (``--per-class`` of each class, from ``$CIFAR10_DIR``)
written to a temporary folder: one subfolder per class for evaluate, one flat "camera" folder (plus an
unreadable file) for organize's preview.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cifar10.paths import project_root


def save_grab(widget, out: Path) -> bool:
    """Save ``widget.grab()`` as ``out`` (folders made); False, with a message on stderr, if it cannot."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if widget.grab().save(str(out)):
        return True
    print(f"could not write {out}", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot of the desktop app with the sample images loaded")
    parser.add_argument("--model", help="model name or .onnx path (default: best test accuracy found)")
    parser.add_argument("--models-dir", action="append", type=Path,
                        help="model folder(s) to scan instead of the usual ones (repeatable)")
    parser.add_argument("--images", type=Path, default=project_root() / "resources" / "samples")
    parser.add_argument("--select", default="cat", help="select the first row whose file name starts with this")
    parser.add_argument("--out", type=Path, default=project_root() / "docs" / "app_screenshot.png")
    parser.add_argument("--size", default="1280x800", help="window size WxH")
    parser.add_argument("--heatmap", action="store_true", help="turn the preview's heatmap on before the grab")
    parser.add_argument("--dialog", choices=["none", "evaluate", "organize", "train"], default="none")
    parser.add_argument("--per-class", type=int, default=20, help="--dialog: CIFAR-10 test images per class")
    parser.add_argument("--data-dir", help="--dialog: CIFAR-10 batches (default: $CIFAR10_DIR or the cache)")
    parser.add_argument("--train-classes", default="cat,dog,frog", help="--dialog train: the class folders")
    parser.add_argument("--train-model", default="baseline", help="--dialog train: the model to train")
    parser.add_argument("--epochs", type=int, default=3, help="--dialog train")
    parser.add_argument("--image-size", type=int, default=32, help="--dialog train")
    parser.add_argument("--main-out", type=Path, help="--dialog train: also grab the window with the new model")
    parser.add_argument("--review-out", type=Path, help="--dialog train: also grab the 'Use this model?' review")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop_app.app import create_app
    from desktop_app.main_window import MainWindow

    app = create_app([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, model_dirs_=args.models_dir, initial_model=args.model)
        width, height = (int(v) for v in args.size.lower().split("x"))
        window.resize(width, height)
        window.show()
        if window.current_model is None:
            print("no model to classify with: pass --model or export one into exported_models/", file=sys.stderr)
            return 1
        if args.dialog != "none":
            return grab_dialog(app, window, args, Path(tmp))
        window.add_paths([args.images])
        if not window.wait_idle(120):
            print("classification did not finish in time", file=sys.stderr)
            return 1
        shown = window.proxy.visible_results()
        row = next((r for r, result in enumerate(shown) if os.path.basename(result.path).startswith(args.select)), 0)
        window.select_row(row)
        for _ in range(5):
            app.processEvents()
        if args.heatmap:
            import time

            shown_heat = []
            window.preview.heatmap_ready.connect(shown_heat.append)
            window.preview.heatmap_toggle.setChecked(True)
            deadline = time.monotonic() + 60
            while not shown_heat and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.02)
            if not shown_heat:
                print("the heatmap did not arrive in time", file=sys.stderr)
                return 1
            for _ in range(5):
                app.processEvents()
        if not save_grab(window, args.out):
            return 1
        print(f"{args.out} ({window.current_model.name}, {window.results_model.rowCount()} files)")
        window.close()
        QApplication.processEvents()
    return 0


def cifar_folder(root: Path, per_class: int, data_dir, *, labelled: bool, classes=None, skip: int = 0) -> Path:
    """CIFAR-10 test images as PNG files: class subfolders (labelled) or one flat folder with a broken file.
    ``classes``: only these (default: all ten); ``skip``: leave out the first ``skip`` of each class."""
    from PIL import Image

    from cifar10.contract import CLASS_NAMES
    from cifar10.dataset import load_test_set

    test = load_test_set(data_dir)
    taken = {name: -skip for name in (classes or CLASS_NAMES)}
    for index, (image, label) in enumerate(zip(test.x, test.y)):
        name = CLASS_NAMES[int(label)]
        if name not in taken or taken[name] >= per_class:
            continue
        if taken[name] < 0:
            taken[name] += 1
            continue
        taken[name] += 1
        folder = root / name if labelled else root / "camera"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / (f"test_{index:05d}.png" if labelled else f"IMG_{index:05d}.png"))
        if all(n >= per_class for n in taken.values()):
            break
    if not labelled:
        (root / "camera" / "IMG_broken.jpg").write_bytes(b"\xff\xd8\xff cut off during the copy")
    return root


def grab_train(app, window, args, tmp: Path) -> int:
    """Train on a Folder… after a real run, then (``--main-out``) the window with the new model."""
    classes = [c.strip() for c in args.train_classes.split(",") if c.strip()]
    data = cifar_folder(tmp / "my-pets", args.per_class, args.data_dir, labelled=True, classes=classes)
    (data / classes[0] / "IMG_broken.jpg").write_bytes(b"\xff\xd8\xff cut off during the copy")
    dialog = window.show_train_dialog(export_dir=tmp / "models", runs_dir=tmp / "runs")
    dialog.resize(960, 720)
    dialog.set_folder(str(data))
    dialog.wait_scan(60)
    dialog.model_box.setCurrentText(args.train_model)
    dialog.epochs.setValue(args.epochs)
    dialog.image_size.setValue(args.image_size)
    if not dialog.start_training() or not dialog.wait(900) or not dialog.outcome.ok:
        print(f"the training did not finish: {dialog.last_error}", file=sys.stderr)
        return 1
    for _ in range(10):
        app.processEvents()
    if not save_grab(dialog, args.out):
        return 1
    print(f"{args.out} ({args.train_model} on {', '.join(classes)}: {dialog.status.text()})")
    review = getattr(window, "train_review", None)
    if review is not None:  # the window asks "Use this model?" with the result beside the current model
        if args.review_out:
            for _ in range(10):
                app.processEvents()
            if not save_grab(review, args.review_out):
                return 1
            print(f"{args.review_out} ({review.windowTitle()}: {review.review.comparison()})")
        review.use_button.click()
        window.wait_idle(120)
    dialog.close()
    if args.main_out:
        others = cifar_folder(tmp / "photos", 4, args.data_dir, labelled=False, classes=classes, skip=args.per_class)
        window.add_paths([others / "camera"])
        if not window.wait_idle(120):
            return 1
        shown = window.proxy.visible_results()
        window.select_row(next((r for r, result in enumerate(shown) if result.ok and result.label == classes[0]), 0))
        for _ in range(5):
            app.processEvents()
        if not save_grab(window, args.main_out):
            return 1
        print(f"{args.main_out} ({window.current_model.label}, {window.results_model.rowCount()} files)")
    window.close()
    return 0


def grab_dialog(app, window, args, tmp: Path) -> int:
    from cifar10.contract import CLASS_NAMES

    if args.dialog == "train":
        return grab_train(app, window, args, tmp)
    if args.dialog == "evaluate":
        folder = cifar_folder(tmp / "labelled", args.per_class, args.data_dir, labelled=True)
        dialog = window.show_evaluation_dialog()
        dialog.resize(1280, 760)
        dialog.evaluate(str(folder))
        ok = dialog.wait(300)
        cat, dog = CLASS_NAMES.index("cat"), CLASS_NAMES.index("dog")
        dialog.matrix.setCurrentCell(cat, dog)
        dialog.select_cell(cat, dog)
        dialog.table.selectRow(0)  # the large preview of the first of them
    else:
        folder = cifar_folder(tmp / "photos", args.per_class, args.data_dir, labelled=False)
        dialog = window.show_organize_dialog()
        dialog.resize(1100, 700)
        dialog.set_sources([str(folder / "camera")])
        dialog.set_options(dst=str(Path.home() / "Pictures" / "sorted"), mode="move")
        dialog.preview()
        ok = dialog.wait(300)
    for _ in range(10):
        app.processEvents()
    if not ok or dialog.last_error:
        print(f"the dialog did not finish: {dialog.last_error}", file=sys.stderr)
        return 1
    if not save_grab(dialog, args.out):
        return 1
    print(f"{args.out} ({window.current_model.name}, {args.dialog})")
    dialog.close()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
