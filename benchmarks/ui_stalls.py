"""How long the desktop app's event loop stalls (issue 24): a 10 ms QTimer probe in the real window records
every tick; the largest gap between two ticks is the longest time the UI could not repaint or react.

Two cases, each in the same window, with the event loop running as in the app (QEventLoop, no polling):

1. A model switch over 300 loaded files (the rows are classified again in place).
2. Evaluate on a Labelled Folder of 200 files (10 classes x 20), from the click to the dialog's results.

Images: the bundled samples (resources/samples, one CIFAR-10 test picture per class) written again as 300 +
200 files (each shifted a little, so none is a copy). Models: two real exported models (``--models``, default
baseline and cnn_adam_m1 from exported_models/). Target: <= 100 ms. A benchmark, not a test: figures go to
docs/desktop.md with the CPU they were taken on. Run it in a real window (``xvfb-run -s "-screen 0
1280x900x24" python benchmarks/ui_stalls.py``) or offscreen (QT_QPA_PLATFORM=offscreen).

    python benchmarks/ui_stalls.py [--models baseline cnn_adam_m1] [--files 300] [--eval-files 200] [--load N]
                                   [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_images(folder: Path, count: int, *, labelled: bool) -> None:
    """``count`` PNGs made from the bundled samples (class subfolders when ``labelled``)."""
    import numpy as np
    from PIL import Image

    samples = sorted((ROOT / "resources" / "samples").glob("*.png"))
    pictures = [(p.stem.split("_")[0], np.asarray(Image.open(p).convert("RGB"))) for p in samples]
    for i in range(count):
        label, picture = pictures[i % len(pictures)]
        shifted = np.roll(picture, shift=(i // len(pictures)) % 5, axis=1)
        path = folder / label / f"{label}_{i:04d}.png" if labelled else folder / f"{i:04d}_{label}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(shifted).save(path)


class Probe:
    """A 10 ms timer; ``gaps()`` are the times between consecutive ticks while it ran."""

    def __init__(self, interval_ms: int = 10):
        from PySide6.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def run(self, start, done_signal, timeout_s: float = 300.0) -> dict:
        """Start the probe, call ``start()`` from the event loop, run the loop until ``done_signal`` fires."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        done_signal.connect(loop.quit)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        self.ticks = []
        self.timer.start()
        began = time.perf_counter()
        QTimer.singleShot(20, start)
        loop.exec()
        elapsed = time.perf_counter() - began
        self.timer.stop()
        done_signal.disconnect(loop.quit)
        gaps = [b - a for a, b in zip(self.ticks, self.ticks[1:])]
        gaps.sort()
        return {"seconds": round(elapsed, 2), "ticks": len(self.ticks),
                "largest_gap_ms": round(1000 * gaps[-1], 1) if gaps else None,
                "p99_gap_ms": round(1000 * gaps[int(0.99 * (len(gaps) - 1))], 1) if gaps else None,
                "gaps_over_100ms": sum(1 for g in gaps if g > 0.1)}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs=2, default=["baseline", "cnn_adam_m1"], metavar=("FIRST", "SECOND"),
                        help="the model the files are classified with, then the one switched to")
    parser.add_argument("--models-dir", action="append", type=Path, help="model folder(s) (default: the usual ones)")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--eval-files", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--load", type=int, default=0,
                        help="also run this many busy-looping processes meanwhile (a machine under load)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    import subprocess

    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        return run(args)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def run(args) -> int:

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop_app.app import create_app
    from desktop_app.main_window import MainWindow

    app = create_app([sys.argv[0]])
    figures: dict = {"platform": QApplication.platformName(), "cpu": cpu_name(), "cores": os.cpu_count(),
                     "models": args.models, "files": args.files, "eval_files": args.eval_files,
                     "busy_processes": args.load}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_images(tmp / "files", args.files, labelled=False)
        write_images(tmp / "labelled", args.eval_files, labelled=True)
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, model_dirs_=args.models_dir, initial_model=args.models[0],
                            batch_size=args.batch_size)
        window.resize(1180, 760)
        window.show()
        for _ in range(5):
            app.processEvents()
        if window.current_model is None or window.current_model.name != args.models[0]:
            print(f"model {args.models[0]!r} not found", file=sys.stderr)
            return 1
        probe = Probe()
        load = probe.run(lambda: window.add_paths([tmp / "files"]), window.job_finished)
        window.select_row(0)
        print(f"load {args.files} files with {args.models[0]}: {load}")
        # The second model's first use is part of the switch (its session is created on the worker).
        switch = probe.run(lambda: window.set_model(args.models[1]), window.job_finished)
        figures["model_switch"] = switch
        print(f"model switch to {args.models[1]} over {window.results_model.rowCount()} files: {switch}")
        dialog = window.show_evaluation_dialog()
        for _ in range(5):
            app.processEvents()
        evaluation = probe.run(lambda: dialog.evaluate(str(tmp / "labelled")), dialog.task.finished)
        figures["evaluate"] = evaluation
        n = dialog.evaluation.metrics["n"] if dialog.evaluation is not None else None
        print(f"evaluate {args.eval_files} files ({n} scored): {evaluation}")
        dialog.close()
        window.close()
        app.processEvents()
    worst = max(figures["model_switch"]["largest_gap_ms"], figures["evaluate"]["largest_gap_ms"])
    print(f"largest event-loop gap: {worst:.0f} ms (target <= 100 ms) on {figures['cpu']} ({figures['cores']} "
          f"cores, {args.load} busy processes besides), Qt platform {figures['platform']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
