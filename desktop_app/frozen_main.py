"""Entry point of the bundled executable ``cifar10-classifier`` (PyInstaller; see bundle/ and docs/bundle.md).

    cifar10-classifier [PATH...] [--model M] [--provider P]   open the desktop app (PATHs classified at start)
    cifar10-classifier classify PATH... [--output FILE] ...   same as `cifar10 classify` (same CSV/JSON)
    cifar10-classifier evaluate --folder PATH / organize ...  same as `cifar10 evaluate` / `cifar10 organize`
    cifar10-classifier --self-test [--model M]                classify the bundled samples; exit 0 if all right
    cifar10-classifier self-test ...                          same as --self-test
    cifar10-classifier --quit-after-show                      open the app, quit after the first show (timing)

``classify`` and ``self-test`` go through :func:`cifar10_cli.main.main`, so they behave exactly like the
``cifar10`` command; nothing here imports Qt, onnxruntime or Pillow before it knows it needs them.
Also runs unfrozen: ``python -m desktop_app.frozen_main ...``.
"""

from __future__ import annotations

import argparse
import os
import sys

from desktop_app.options import add_app_arguments

PROG = "cifar10-classifier"
HEADLESS_COMMANDS = ("classify", "self-test", "evaluate", "organize")
# `cifar10` subcommands that need the training/web extras: not in the bundle (the first argument would
# otherwise be taken for a file to open in the app).
NOT_BUNDLED = ("train", "export", "report", "models", "web", "export-space", "bundle")


def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="CIFAR-10 Studio: classify images into the 10 CIFAR-10 classes, or into the classes "
                               "of a model of your own (drop it into models/ next to this program).",
        epilog=f"headless: {PROG} classify PATH... [--output results.csv]  |  {PROG} --self-test  "
               f"(`{PROG} classify --help` for its options)")
    add_app_arguments(parser)
    parser.add_argument("--self-test", action="store_true",
                        help="classify the bundled sample images (CIFAR-10) with the best shipped CIFAR-10 model (or "
                             "--model), print the results, exit 0 only if every one gets the label in its file name")
    parser.add_argument("--quit-after-show", action="store_true",
                        help="open the window, then quit right after it is first shown (start-up timing)")
    parser.add_argument("--version", action="store_true", help="print versions and where models are read from")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from cifar10_cli.main import main as cli_main  # light: argparse and paths only

    if argv and argv[0] in HEADLESS_COMMANDS:
        return cli_main(argv, prog=PROG)
    if argv and argv[0] == "app":  # `cifar10 app ...` habits: the app is the default here
        argv = argv[1:]
    if argv and argv[0] in NOT_BUNDLED and not os.path.exists(argv[0]):
        print(f"{PROG}: '{argv[0]}' is not part of this bundle (it has the app, classify, evaluate, organize and --self-test); "
              f"use the `cifar10` command of a source install: pip install -e '.[training,web]'", file=sys.stderr)
        return 2
    args = gui_parser().parse_args(argv)
    if args.self_test:
        extra = [*(["--model", args.model] if args.model else []), "--provider", args.provider]
        return cli_main(["self-test", *extra], prog=PROG)
    if args.version:
        return print_version()
    from desktop_app.app import main as app_main  # PySide6 from here on

    return app_main(args.paths, model=args.model, provider=args.provider, quit_after_show=args.quit_after_show)


def print_version() -> int:
    import onnxruntime
    import PIL
    import PySide6

    from cifar10 import __version__
    from cifar10.paths import model_dirs

    print(f"{PROG} {__version__} (Python {sys.version.split()[0]}, onnxruntime {onnxruntime.__version__}, "
          f"Pillow {PIL.__version__}, PySide6 {PySide6.__version__}{', frozen' if getattr(sys, 'frozen', False) else ''})")
    print("models from: " + ", ".join(str(d) for d in model_dirs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
