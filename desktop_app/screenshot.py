"""Save a screenshot of the main window (offscreen): docs/app_screenshot.png.

Loads ``resources/samples`` with the best shipped model (or ``--model``), selects a row, grabs the
window. Uses a throw-away settings file, so the user's remembered folder/model are not touched.

    python -m desktop_app.screenshot [--model NAME|PATH.onnx] [--select cat] [--out docs/app_screenshot.png]
    python -m desktop_app.screenshot --images FOLDER --select photo_rocket --heatmap --out docs/app_unsure.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cifar10.paths import project_root


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
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(args.out)):
            print(f"could not write {args.out}", file=sys.stderr)
            return 1
        print(f"{args.out} ({window.current_model.name}, {window.results_model.rowCount()} files)")
        window.close()
        QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
