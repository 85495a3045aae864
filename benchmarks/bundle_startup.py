"""Start-up time of the bundled app: GUI to first window shown, and ``--self-test``, each a few times.

    python benchmarks/bundle_startup.py [--bundle dist/cifar10-classifier] [--repeat 5] [--source]

GUI: ``cifar10-classifier --quit-after-show`` with ``QT_QPA_PLATFORM=offscreen`` and fresh settings
(a throw-away ``XDG_CONFIG_HOME``); the time is from process launch until the app prints that its window
was shown (after the first show's events were processed), and, separately, until the process has exited.
Self-test: ``cifar10-classifier --self-test`` from launch to exit (it classifies the bundled samples with
the best model). Each run is a new process; the first run is reported on its own (files possibly not yet in
the page cache) and the median over all runs is the headline figure; ``--drop-caches`` (Linux, root) empties
the page cache before every run, so every run reads the bundle from disk. ``--source`` times the same commands
unfrozen (``python -m desktop_app.frozen_main``) for comparison. ``--profile`` adds one unfrozen run of each
under ``python -X importtime`` and lists the slowest imports. ``--models-dir DIR`` runs everything with
``CIFAR10_MODELS_DIR=DIR`` (the same models for bundle and source).

Targets: GUI <= 3 s, self-test <= 2 s. Note the machine's load when you quote figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "cifar10-app: window shown"  # desktop_app.app.SHOWN_MARKER (not imported: keeps this script Qt-free)
TARGETS = {"gui_shown": 3.0, "self_test": 2.0}


DROP_CACHES = False  # --drop-caches: empty the page cache before every run (Linux, root): disk-cold starts


def drop_caches() -> None:
    if DROP_CACHES:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def time_gui(command: list[str], env: dict) -> tuple[float, float, int]:
    """(seconds to the 'window shown' line, seconds to exit, exit status)."""
    drop_caches()
    start = time.perf_counter()
    proc = subprocess.Popen([*command, "--quit-after-show"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    shown = float("nan")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(MARKER) and shown != shown:
            shown = time.perf_counter() - start
    code = proc.wait()
    return shown, time.perf_counter() - start, code


def time_self_test(command: list[str], env: dict) -> tuple[float, int]:
    drop_caches()
    start = time.perf_counter()
    code = subprocess.run([*command, "--self-test"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=env).returncode
    return time.perf_counter() - start, code


def measure(label: str, command: list[str], repeat: int, models_dir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": config}
        if models_dir is not None:
            env["CIFAR10_MODELS_DIR"] = str(models_dir)
        gui = [time_gui(command, env) for _ in range(repeat)]
        tests = [time_self_test(command, env) for _ in range(repeat)]
    shown = [g[0] for g in gui]
    exited = [g[1] for g in gui]
    self_test = [t[0] for t in tests]
    codes = sorted({g[2] for g in gui}), sorted({t[1] for t in tests})
    print(f"\n{label}: {' '.join(command)}")
    row = "  {:<28s} first {:6.2f} s   median {:6.2f} s   min {:6.2f} s   max {:6.2f} s{}"
    print(row.format("GUI to first window shown", shown[0], statistics.median(shown), min(shown), max(shown),
                     f"   (target <= {TARGETS['gui_shown']:.0f} s)"))
    print(row.format("GUI launch to exit", exited[0], statistics.median(exited), min(exited), max(exited), ""))
    print(row.format("--self-test launch to exit", self_test[0], statistics.median(self_test), min(self_test),
                     max(self_test), f"   (target <= {TARGETS['self_test']:.0f} s)"))
    print(f"  exit statuses: GUI {codes[0]}, self-test {codes[1]} (self-test 0 = all samples right)")
    return {"gui_shown": statistics.median(shown), "self_test": statistics.median(self_test)}


def profile_imports(env_extra: dict | None = None) -> None:
    """Top imports by cumulative time for the unfrozen GUI start and self-test (python -X importtime)."""
    for label, args in (("GUI (--quit-after-show)", ["--quit-after-show"]), ("--self-test", ["--self-test"])):
        with tempfile.TemporaryDirectory() as config:
            env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": config, **(env_extra or {})}
            done = subprocess.run([sys.executable, "-X", "importtime", "-m", "desktop_app.frozen_main", *args],
                                  capture_output=True, text=True, env=env, cwd=ROOT)
        rows = []
        for line in done.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
                if cumulative.isdigit():
                    rows.append((int(cumulative), name))
        top = [r for r in sorted(rows, reverse=True) if not r[1].startswith(" ")][:8]
        print(f"\nunfrozen {label}: slowest top-level imports (cumulative)")
        for micros, name in top:
            print(f"  {micros / 1e6:6.2f} s  {name.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "cifar10-classifier",
                        help="the bundle folder (default: dist/cifar10-classifier)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", action="store_true", help="also time the unfrozen app for comparison")
    parser.add_argument("--profile", action="store_true", help="also show the slowest imports (unfrozen)")
    parser.add_argument("--drop-caches", action="store_true",
                        help="empty the OS page cache before every run (Linux, needs root): cold-disk starts")
    parser.add_argument("--models-dir", type=Path,
                        help="run both with CIFAR10_MODELS_DIR=DIR instead of the shipped models (e.g. to give "
                             "--source the same models as the bundle)")
    args = parser.parse_args(argv)
    global DROP_CACHES
    DROP_CACHES = args.drop_caches
    exe = args.bundle / ("cifar10-classifier.exe" if sys.platform == "win32" else "cifar10-classifier")
    if not exe.is_file():
        print(f"no bundle at {args.bundle}: build it with `cifar10 bundle`", file=sys.stderr)
        return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load:.2f} before measuring; {args.repeat} runs each"
          + ("; page cache dropped before every run" if args.drop_caches else "; page cache warm after run 1"))
    results = {"bundle": measure("bundle", [str(exe)], args.repeat, args.models_dir)}
    if args.source:
        results["source"] = measure("source (unfrozen)", [sys.executable, "-m", "desktop_app.frozen_main"],
                                    args.repeat, args.models_dir)
    if args.profile:
        profile_imports({"CIFAR10_MODELS_DIR": str(args.models_dir)} if args.models_dir else None)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n1-minute load average after: {load_after:.2f}")
    bundle = results["bundle"]
    ok = all(bundle[key] <= limit for key, limit in TARGETS.items())
    print("bundle medians: GUI {gui_shown:.2f} s, self-test {self_test:.2f} s: {verdict}".format(
        **bundle, verdict="within targets" if ok else "OVER TARGET"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
