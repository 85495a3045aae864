"""The ``cifar10`` command. Each subcommand imports its extra lazily and names it when it is missing."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

from cifar10.errors import UserFacingError
from cifar10.options import ORGANIZE_MODES, TTA_MODES, add_provider_argument
from cifar10.paths import shadowing_model, shipped_models_dir, user_models_dir
from desktop_app.options import add_app_arguments

EXTRA_OF_MODULE = {
    "tensorflow": "training", "keras": "training", "tf2onnx": "training", "sklearn": "training", "onnx": "training",
    "matplotlib": "training", "PySide6": "app", "onnxruntime": "app", "PIL": "app",
    "streamlit": "web", "gradio": "web", "PyInstaller": "bundle", "ray": "ray", "pyarrow": "ray",
}


class MissingExtra(SystemExit):
    module = ""  # the top-level module that is missing


def _require(import_error: ImportError) -> MissingExtra:
    module = (import_error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        raise import_error
    missing = MissingExtra(f"cifar10: this command needs the '{extra}' extra ({module} is not installed):\n"
                           f"    pip install -e '.[{extra}]'")
    missing.module = module
    return missing


def _command_line(args) -> str:
    """This invocation as a copy-pasteable `cifar10 ...` line (recorded in run records and model cards)."""
    return "cifar10 " + " ".join(shlex.quote(a) for a in args.argv)


def _load(module: str, name: str | None = None):
    """Import ``module`` (and return its ``name``) when a subcommand runs; a missing extra becomes a
    one-line message. The one place the CLI imports training code: TensorFlow comes in quietly first."""
    try:
        if module.split(".")[0] in TENSORFLOW_USERS:
            _import_tensorflow(verbose=VERBOSE)
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise _require(exc) from exc
    return imported if name is None else getattr(imported, name)


# --- TensorFlow, quietly ------------------------------------------------------------------------------

TENSORFLOW_USERS = {"training", "tensorflow", "keras", "tf2onnx"}
VERBOSE = False  # `cifar10 --verbose`: TensorFlow's start-up messages as TensorFlow prints them
# What TensorFlow's C++ code writes to stderr while it is imported, before its logging is set up (so
# TF_CPP_MIN_LOG_LEVEL cannot hide it): absl's notice, info and warning lines ("I0000 00:00:17... port.cc:153]
# oneDNN custom operations are on ...", once per TensorFlow library), cpu_feature_guard's second line.
TENSORFLOW_START_UP = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called"
                                 r"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
                                 r"|To enable the following instructions: ")


def _import_tensorflow(*, verbose: bool = False) -> None:
    """Import TensorFlow once, keeping its start-up messages (oneDNN, cpu_feature_guard, absl) out of the
    output unless ``verbose``: C++ logging below errors off, stderr (file descriptor 2) held during the
    import and written back without those lines, Python-side TensorFlow/absl logging at errors only."""
    if "tensorflow" in sys.modules:
        return
    if verbose:
        importlib.import_module("tensorflow")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold (a windowed process): nothing would show anyway
        tf = importlib.import_module("tensorflow")
    else:
        tf = _import_holding_stderr(saved)
    tf.get_logger().setLevel("ERROR")
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)


def _show_training_log() -> None:
    """``--verbose``: the training modules' info lines on stderr too (onnxruntime's quantizer's own progress
    lines, which training/quantize.py keeps off stdout)."""
    import logging

    logger = logging.getLogger("training")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    logger.setLevel(logging.INFO)


def _import_holding_stderr(saved: int):
    """``import tensorflow`` with file descriptor 2 pointed at a temporary file; afterwards stderr is
    restored from ``saved`` and what was written, less TensorFlow's start-up lines, is written to it."""
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            tf = importlib.import_module("tensorflow")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not TENSORFLOW_START_UP.match(line):
                    sys.stderr.write(line)
    return tf


# --- training side ----------------------------------------------------------------------------------

# `cifar10 train`'s model when --model is not given: the study's chosen CNN on CIFAR-10; on your own folder the
# instant model: frozen ImageNet EfficientNet-Lite0 features + a linear head (the `transfer` extra), seconds;
# `--model efficientnet_lite0_transfer` fine-tunes the backbone (minutes) for the final model.
DEFAULT_CIFAR10_MODEL, DEFAULT_FOLDER_MODEL = "cnn_adam_m1", "efficientnet_lite0_linear"


def default_train_model(args) -> str:
    return args.model or (DEFAULT_FOLDER_MODEL if args.data else DEFAULT_CIFAR10_MODEL)


def cmd_train(args) -> int:
    if args.resume is None:
        args.model = default_train_model(args)
    # The export cleans up after itself and the trainer says which epochs its checkpoint keeps.
    return sigterm_unwinds(lambda: _cmd_train(args))


def sigterm_unwinds(work):
    """``work()`` with SIGTERM (kill, a parent's Cancel: QProcess.terminate) unwinding like Ctrl+C (a
    KeyboardInterrupt), so that what the command was writing is cleaned up and its locks released."""
    import signal
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except (AttributeError, ValueError):  # no SIGTERM here, or not the main thread
        return work()
    try:
        return work()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cmd_train(args) -> int:
    if args.progress != "json":
        try:
            return _train(args)
        except KeyboardInterrupt:  # the trainer has said what was kept and how to resume
            return 130
    return with_json_events(lambda emit: _train(args, progress=emit))


def with_json_events(work) -> int:
    """``--progress json``: ``work(emit)`` with stdout carrying only the JSON events ``emit`` writes, one per
    line; a failure ends with an "error" event (``{"event": "error", "message": ...}``, "cancelled" for Ctrl+C or
    SIGTERM) and the exit code 2 (a usage error) or 1."""
    # Everything else written to stdout (Python prints, Keras, TensorFlow's C++ code) goes to stderr: file
    # descriptor 1 is pointed at 2 and the events are written to a private copy of the original stdout.
    sys.stdout.flush()
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def emit(event: dict) -> None:
        events.write(json.dumps(event, ensure_ascii=False) + "\n")
        events.flush()
    try:
        return work(emit)
    except (SystemExit, KeyboardInterrupt, Exception) as exc:
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        if isinstance(exc, UserFacingError):
            message = str(exc)
        elif isinstance(exc, KeyboardInterrupt):
            message = "cancelled"
        elif isinstance(exc, SystemExit):
            message = str(exc.code)
        else:
            import traceback
            traceback.print_exc()
            message = f"{type(exc).__name__}: {exc}"
        emit({"event": "error", "message": message})
        print(f"cifar10: error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, UserFacingError) else 1
    finally:
        events.close()


# `cifar10 train --resume RUN_DIR` takes every training setting from RUN_DIR/run.json: these flags conflict.
RESUME_CONFLICTS = ("--model", "--data", "--name", "--image-size", "--epochs", "--batch-size", "--optimizer", "--lr",
                    "--lr-schedule", "--augment", "--no-augment", "--shift-px", "--tta", "--early-stopping-patience",
                    "--seed", "--precision", "--weights", "--limit", "--init-from", "--init-head", "--test-curve",
                    "--out")


def _given_flags(args, flags) -> list[str]:
    """Which of ``flags`` the command line gave: written out, or (abbreviated) with a value other than the
    default."""
    given = [flag for flag in flags if any(token.split("=", 1)[0] == flag for token in args.argv)]
    defaults = build_parser().parse_args(["train"])
    for flag in flags:
        dest = flag.removeprefix("--no-").removeprefix("--").replace("-", "_")
        if flag not in given and getattr(args, dest, None) != getattr(defaults, dest, None) \
                and f"--{dest.replace('_', '-')}" not in given and f"--no-{dest.replace('_', '-')}" not in given:
            given.append(f"--{dest.replace('_', '-')}")
    return list(dict.fromkeys(given))


def _pick_run(folder: Path) -> Path:
    """--resume FOLDER: a run folder, or a runs folder holding exactly one unfinished run (that one)."""
    from cifar10.run_folders import RUN_RECORD, read_record, unfinished_runs

    if (Path(folder) / RUN_RECORD).exists():
        return Path(folder)
    runs = unfinished_runs(folder)
    if len(runs) == 1:
        print(f"Resuming the unfinished run in {folder}: {runs[0]['run_dir']}", file=sys.stderr)
        return Path(runs[0]["run_dir"])
    if len(runs) > 1:
        listed = "; ".join(f"{Path(r['run_dir']).name} ({r.get('epochs_done', 0)} of {r.get('epochs', '?')} epochs)"
                           for r in runs)
        raise UserFacingError(f"--resume {folder}: {len(runs)} unfinished runs there, name one: {listed}")
    if Path(folder).is_dir() and any(read_record(p) for p in Path(folder).iterdir() if p.is_dir()):
        raise UserFacingError(f"--resume {folder}: every run there is finished (nothing to resume)")
    return Path(folder)  # resume() says what is wrong with it


def _resume(args, progress=None) -> int:
    """`cifar10 train --resume RUN_DIR`: the remaining epochs of an unfinished run, with its own settings (and
    its export folder unless --export-dir / --no-export say otherwise)."""
    conflicts = _given_flags(args, RESUME_CONFLICTS)
    if conflicts:
        raise UserFacingError(f"--resume takes the run's settings from {Path(args.resume) / 'run.json'}: "
                              f"leave out {', '.join(conflicts)}")
    resume = _load("training.train", "resume")
    args.resume = _pick_run(args.resume)
    export_dir = None if args.no_export else (args.export_dir or ...)
    run_dir = resume(args.resume, data_dir=args.data_dir, export_dir=export_dir,
                     replace_model=True if args.replace else None, command=_command_line(args), progress=progress,
                     int8=False if args.no_int8 else None)
    record = json.loads((Path(run_dir) / "run.json").read_text())
    target = (record.get("export") or {}).get("dir") if export_dir is ... else export_dir
    if target is None:
        print(f"Saved run {run_dir} — export it: cifar10 export {shlex.quote(str(run_dir))}")
    else:
        _print_saved(record["name"], Path(target))
    return 0


def _train(args, progress=None) -> int:
    if args.resume is not None:
        return _resume(args, progress)
    TrainSettings, train = _load("training.train", "TrainSettings"), _load("training.train", "train")
    settings = TrainSettings.for_model(
        args.model, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        augment=args.augment, shift_px=args.shift_px, tta=args.tta, early_stopping_patience=args.early_stopping_patience,
        lr_schedule=args.lr_schedule, seed=args.seed, precision=args.precision,
        weights=None if args.weights == "none" else args.weights, limit=args.limit, init_from=args.init_from,
        init_head=args.init_head, data=str(args.data) if args.data else None, image_size=args.image_size,
        name=args.name)
    export_dir = None if args.no_export else (args.export_dir or user_models_dir())
    _warn_if_shadowed(settings.export_name, export_dir, args.replace)
    run_dir = train(settings, data_dir=args.data_dir, out=args.out, export_dir=export_dir,
                    replace_model=args.replace, command=_command_line(args), test_curve=args.test_curve,
                    progress=progress, int8=False if args.no_int8 else None)
    if export_dir is None:
        print(f"Saved run {run_dir} — export it: cifar10 export {shlex.quote(str(run_dir))}")
    else:
        _print_saved(settings.export_name, export_dir)
    return 0


def _print_saved(name: str, export_dir: Path) -> None:
    """The last line of `cifar10 train`, `export` and `sweep`: where the model is and how to use it (by its
    path when a shipped model of the same name would be picked instead)."""
    shadowed = shadowing_model(name, export_dir) is not None
    model = shlex.quote(str(Path(export_dir) / f"{name}.onnx") if shadowed else name)
    print(f"Saved model {name} to {export_dir} — try: cifar10 classify --model {model} PHOTOS")


def _warn_if_shadowed(name: str, export_dir: Path | None, replace: bool) -> None:
    """Before training: say so when a model of the same name in another folder would hide the new one
    (not when the name is taken in ``export_dir`` itself: that stops the command, with its own message)."""
    if export_dir is None:
        return
    taken = any(Path(export_dir, f"{name}{ext}").exists() for ext in (".onnx", ".json"))
    shadow = None if taken and not replace else shadowing_model(name, export_dir)
    if shadow is not None:
        print(f"note: {shadow.parent} already has a model named {name}, which the apps list first: pass "
              f"--name NEW to tell yours apart", file=sys.stderr)


def cmd_export(args) -> int:
    export_run = _load("training.export", "export_run")
    export_dir = args.export_dir or user_models_dir()
    exported = export_run(args.run_dir, export_dir, data_dir=args.data_dir, tta=args.tta,
                          command=_command_line(args), name=args.name, replace_model=args.replace,
                          with_card=args.int8)
    onnx_path = exported[0] if args.int8 else exported
    if args.int8:  # issue 26: the int8 twin replaces it within 0.3 points of test accuracy (float to float/)
        record = json.loads((Path(args.run_dir) / "run.json").read_text())
        data = _load("training.export", "load_run_data")(record, args.data_dir)
        onnx_path, _ = _load("training.quantize", "quantize_after_export")(onnx_path, exported[1], data,
                                                                          command=_command_line(args))
    _print_saved(onnx_path.stem, export_dir)
    return 0


def cmd_quantize(args) -> int:
    return _load("cifar10_cli.quantize", "run")(args, _command_line(args))


def cmd_evaluate(args) -> int:
    return _load("cifar10_cli.evaluate", "run")(args)  # the apps' install: onnxruntime, no TensorFlow


def cmd_organize(args) -> int:
    return _load("cifar10_cli.organize", "run")(args)


def cmd_sweep(args) -> int:
    _load("tensorflow"), _load("keras")  # the 'training' extra, named clearly if missing
    try:
        importlib.import_module("ray.tune")
    except ImportError as exc:
        raise _require(exc) from exc
    SweepSpec, parse_lr, run_sweep = (_load("training.sweep", name) for name in ("SweepSpec", "parse_lr", "run_sweep"))
    spec = SweepSpec(model=args.model, optimizer=args.optimizer, lr=parse_lr(args.lr), batch_size=args.batch_size,
                     epochs=args.epochs, augment=[value == "on" for value in args.augment], search=args.search,
                     samples=args.samples, grace_epochs=args.grace_epochs, seed=args.seed, limit=args.limit,
                     data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None)
    export_dir = None if args.no_export else (args.export_dir or user_models_dir())
    summary = run_sweep(spec, out=args.out, export_dir=export_dir, address=args.address,
                        cpus_per_trial=args.cpus_per_trial, replace_model=args.replace)
    if summary["exported"]:
        _print_saved(Path(summary["exported"]).stem, export_dir)
    return 0


def cmd_report(args) -> int:
    write_report = _load("training.report", "write_report")
    write_report(args.models_dir, args.out)
    return 0


# --- apps side (onnxruntime + Pillow; no TensorFlow) ----------------------------------------------------

def cmd_classify(args) -> int:
    run = _load("cifar10_cli.classify", "run")
    return run(args)


def cmd_app(args) -> int:
    app_main = _load("desktop_app.app", "main")
    return app_main(args.paths, model=args.model, provider=args.provider)


def cmd_self_test(args) -> int:
    _load("onnxruntime"), _load("PIL")  # the 'app' extra, named clearly if missing
    return _load("cifar10_cli.selftest", "main")(args)


def cmd_bundle(args) -> int:
    build_bundle = _load("desktop_app.bundle", "build_bundle")
    return build_bundle(args.out, archive=args.archive, work_dir=args.work_dir)


def cmd_web(args) -> int:
    _load(args.ui)  # streamlit or gradio: the 'web' extra
    run_web = _load("web.launch", "run_web")
    return run_web(args.ui, port=args.port, host=args.host, models_dir=args.models_dir)


def cmd_export_space(args) -> int:
    SpaceExportError, export_space = _load("web.space", "SpaceExportError"), _load("web.space", "export_space")
    try:
        summary = export_space(args.kind, args.out_dir, models_dir=args.models_dir, models=args.models,
                               examples_dir=args.examples, force=args.force, title=args.title,
                               description=args.description)
    except SpaceExportError as exc:
        raise UserFacingError(str(exc)) from None
    for problem in summary["skipped"]:
        print(f"warning: skipped a model: {problem}", file=sys.stderr)
    first = f" (the page loads {summary['default']} first)" if args.kind == "static" and summary.get("default") else ""
    print(f"Wrote a {args.kind} Space \"{summary['title']}\" to {summary['out_dir']}: {len(summary['files'])} files, "
          f"{summary['bytes'] / 1e6:.1f} MB; models {', '.join(summary['models'])}{first}; "
          f"{len(summary['samples'])} example images.\n"
          "Publish it: see docs/web.md (git push to huggingface.co/spaces/USER/NAME, or `hf upload`).")
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """--export-dir and --replace of `cifar10 train`, `export` and `sweep`."""
    parser.add_argument("--export-dir", type=Path, metavar="FOLDER",
                        help=f"where the .onnx + card go (default: your models folder {user_models_dir()}, where "
                             "every app finds it; the shipped models change only with --export-dir exported_models)")
    parser.add_argument("--replace", action="store_true",
                        help="replace a model of the same name in the export folder (without it, an existing name "
                             "stops the command before it starts)")


VERBOSE_HELP = ("show TensorFlow's start-up messages and warnings, and the int8 quantizer's progress lines (hidden by "
                "default)")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """--verbose: TensorFlow's start-up messages and warnings too. Global (``cifar10 --verbose train``); also
    accepted after the subcommands that load TensorFlow (SUPPRESS: the global value stands when not given)."""
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help=VERBOSE_HELP)


def build_parser(prog: str = "cifar10") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="CIFAR-10 classifier studio")
    parser.add_argument("--verbose", action="store_true",
                        help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a registered model on CIFAR-10 or on your own folder of images, "
                                     "evaluate it on the test set, export to ONNX")
    p.add_argument("--model", help=f"registered model name (see `cifar10 models`); default {DEFAULT_CIFAR10_MODEL}, "
                                   f"with --data {DEFAULT_FOLDER_MODEL} (needs the 'transfer' extra)")
    p.add_argument("--data", type=Path, metavar="PATH",
                   help="train on your own images: one subfolder per class (or train/ + val/ + test/ with class "
                        "subfolders; optional classes.json maps folder names to display names); default: CIFAR-10")
    p.add_argument("--name", metavar="EXPORT_NAME",
                   help="the exported model's name (default: the model's; with --data, <model>-<folder name>)")
    p.add_argument("--image-size", type=int, metavar="S",
                   help="--data: the model's input size in pixels (default: the model's, 128 for animals10_cnn and "
                        "efficientnet_lite0_transfer, 32 for the CIFAR-10 CNNs)")
    p.add_argument("--progress", choices=["text", "json"], default="text",
                   help="json: one JSON event per line on stdout (scan, cache, epoch, exported, error); logs on "
                        "stderr")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "sgd_plain"],
                   help="sgd: momentum 0.9, Nesterov; sgd_plain: Keras' SGD without momentum")
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "plateau", "cosine"])
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--shift-px", type=int, help="augmentation: random translation of up to N pixels")
    p.add_argument("--tta", choices=TTA_MODES,
                   help="test-time augmentation inside the exported graph (flip: average with the mirror image; "
                        "flip_shift: also 1-pixel shifted views, as airbench)")
    p.add_argument("--early-stopping-patience", type=int, help="epochs without val improvement; 0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16"],
                   help="default: the model's (fast_cnn: auto = mixed_bfloat16 where the CPU (AVX512-BF16, AMX) or "
                        "GPU computes bfloat16 natively, else float32)")
    p.add_argument("--weights", default="imagenet", help="transfer models: 'imagenet' (download) or 'none'")
    p.add_argument("--limit", type=int, help="use only the first N images of each split (smoke runs)")
    p.add_argument("--init-from", metavar="RUN_DIR",
                   help="continue training from a previous run of the same model (its checkpoint); the card's "
                        "training time is the sum of both runs")
    p.add_argument("--init-head", metavar="RUN_DIR",
                   help="fine-tuned models (efficientnet_lite0_transfer): start the classifier head from the linear "
                        "head of a finished instant-model run (the run folder `cifar10 train --data FOLDER` left in "
                        "--out); its classes, their order, input size and backbone must be this run's")
    p.add_argument("--test-curve", action="store_true",
                   help="also log test accuracy after each epoch (learning curves; not timed, not used to select)")
    p.add_argument("--data-dir", help="CIFAR-10 python batches (default: $CIFAR10_DIR, else download)")
    p.add_argument("--out", type=Path, default=Path("runs"),
                   help="where run folders go (default: runs/ in the current folder); each has run.json, which says "
                        "\"status\": \"unfinished\" until the run is done, and a checkpoint after every epoch")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an unfinished run (killed, stopped, crashed) from its last epoch's checkpoint: "
                        "the remaining epochs only, with the run's own settings, then the export as the run was "
                        "started with (--export-dir, --no-export and --data-dir may be given); a runs folder "
                        "with a single unfinished run resumes that one")
    add_export_arguments(p)
    p.add_argument("--no-export", action="store_true", help="train only; export later with `cifar10 export`")
    add_verbose_argument(p)
    p.add_argument("--no-int8", action="store_true",
                   help="--data: keep the exported model float32 (default: it is quantized to int8, `cifar10 "
                        "quantize`, when that loses at most 0.3 points of test accuracy)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="evaluate a finished run on the test set and export it to ONNX + card")
    p.add_argument("run_dir", type=Path)
    add_export_arguments(p)
    add_verbose_argument(p)
    p.add_argument("--name", metavar="EXPORT_NAME", help="default: the run's export name")
    p.add_argument("--tta", choices=TTA_MODES, help="override the run's test-time augmentation")
    p.add_argument("--int8", action="store_true",
                   help="then quantize it (`cifar10 quantize`): the int8 model replaces the float one when it loses "
                        "at most 0.3 points of test accuracy (the float one moves to float/)")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_export)

    _load("cifar10_cli.quantize", "add_parser")(sub, cmd_quantize)

    p = sub.add_parser("evaluate", help="a model's accuracy, per-class precision/recall and confusion matrix on a "
                                        "labelled folder (--folder) or, for a CIFAR-10 model, the 10,000 CIFAR-10 "
                                        "test images")
    p.add_argument("onnx", nargs="?", type=Path, metavar="MODEL.onnx", help="an .onnx file (or use --model)")
    p.add_argument("--model", help="exported model name or .onnx path (default: best test accuracy)")
    p.add_argument("--folder", type=Path, metavar="PATH",
                   help="labelled images: one subfolder per class of the model, named by its class or display "
                        "names (cat/, dog/, ...); default: the CIFAR-10 test set (CIFAR-10 models only)")
    p.add_argument("--output", "-o", type=Path, metavar="REPORT.json", help="also write the figures and one row per image")
    p.add_argument("--data-dir", help="CIFAR-10 python batches (default: $CIFAR10_DIR, else download)")
    p.add_argument("--limit", type=int, help="test set: only the first N images")
    add_provider_argument(p)
    p.add_argument("--batch-size", type=int, default=256, help="images per inference call")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("organize", help="sort images into DST/<class>/ folders (copy or move), with a journal "
                                        "so --undo puts everything back")
    p.add_argument("sources", nargs="*", metavar="SRC", help="image files and/or folders (scanned recursively)")
    p.add_argument("--into", type=Path, metavar="DST", help="destination folder (created if missing)")
    p.add_argument("--model", help="exported model name or .onnx path (default: best test accuracy)")
    p.add_argument("--mode", choices=ORGANIZE_MODES, default="copy",
                   help="copy (default: the originals stay) or move")
    p.add_argument("--min-confidence", type=float, default=0.5, metavar="P",
                   help="images below this confidence go to DST/_unsure/ (default 0.5; 0 = never)")
    p.add_argument("--dry-run", action="store_true", help="print what would go where; touch nothing")
    p.add_argument("--undo", type=Path, metavar="DST", help="put back everything the journal in DST records, then exit")
    add_provider_argument(p)
    p.add_argument("--batch-size", type=int, default=256, help="images per inference call")
    p.set_defaults(func=cmd_organize)

    from cifar10_cli.label_issues import add_parser as add_label_issues
    add_label_issues(sub, DEFAULT_FOLDER_MODEL)

    p = sub.add_parser("report", help="markdown leaderboard + plot of the exported models vs the study")
    p.add_argument("--models-dir", type=Path, default=shipped_models_dir())
    p.add_argument("--out", type=Path, default=Path("reports"))
    add_verbose_argument(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("models", help="list the exported models (for the apps) and the trainable ones")
    add_verbose_argument(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("classify", help="classify image files/folders with an exported ONNX model (CSV/JSON/table)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files and/or folders (scanned recursively)")
    p.add_argument("--model", help="exported model name or path to an .onnx file (default: best test accuracy)")
    p.add_argument("--output", "-o", type=Path, help="write results.csv or results.json instead of printing a table")
    p.add_argument("--top-k", type=int, default=3,
                   help="classes shown per file in the table and JSON 'top_k' (the CSV has every class)")
    add_provider_argument(p)
    p.add_argument("--batch-size", type=int, default=256, help="images per inference call")
    p.add_argument("--list-models", action="store_true", help="list the exported models found, then exit")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: a Ray cluster (needs --output; the 'ray' extra)")
    p.add_argument("--address", help="--engine ray: the cluster's address, e.g. 10.0.0.5:6379 or ray://HOST:10001 "
                                     "(default: start a local Ray instance)")
    p.add_argument("--actors", type=int, help="--engine ray: onnxruntime actors (default: one per CPU of the cluster)")
    p.add_argument("--resume", action="store_true",
                   help="continue OUT: skip the files already in it (same path, size and mtime), append the rest")
    p.add_argument("--force", action="store_true",
                   help="let --output replace an existing file that is not a cifar10 results file (or start an "
                        "unfinished run's journal over)")
    p.add_argument("--xmp", action="store_true",
                   help="also write an XMP sidecar next to each image (photo.jpg.xmp: the label as a keyword and the "
                        "confidence; merged into an existing sidecar; the image is never touched). Journaled in "
                        "FOLDER/.cifar10-xmp/ with the earlier sidecars, for --xmp-undo")
    p.add_argument("--xmp-undo", type=Path, metavar="FOLDER",
                   help="put back the XMP sidecars --xmp wrote in FOLDER (the folder that was classified) as they "
                        "were; a sidecar changed since is left as it is; then exit")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("sweep", help="grid or random search over `cifar10 train` options on Ray Tune (ASHA early "
                                     "stopping); exports the best trial")
    p.add_argument("--model", default="baseline", help="registered model name (see `cifar10 models`)")
    p.add_argument("--optimizer", nargs="+", choices=["adam", "adamw", "sgd"], default=[])
    p.add_argument("--lr", nargs="+", default=[], metavar="LR",
                   help="values, or one LOW:HIGH range sampled log-uniformly (--search random)")
    p.add_argument("--batch-size", nargs="+", type=int, default=[])
    p.add_argument("--epochs", nargs="+", type=int, default=[])
    p.add_argument("--augment", nargs="+", choices=["on", "off"], default=[])
    p.add_argument("--search", choices=["grid", "random"], default="grid")
    p.add_argument("--samples", type=int, help="random: number of trials (default 8); grid: repeats of the grid, with seeds SEED, SEED+1, ...")
    p.add_argument("--grace-epochs", type=int, default=1, help="ASHA: epochs every trial runs before it can be stopped")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use only the first N images of each split (smoke runs)")
    p.add_argument("--data-dir", help="CIFAR-10 python batches (default: $CIFAR10_DIR, else download)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="where the sweep folder goes (shared storage on a "
                                                                 "cluster)")
    add_export_arguments(p)
    p.add_argument("--no-export", action="store_true", help="do not export the best trial")
    add_verbose_argument(p)
    p.add_argument("--address", help="a Ray cluster's address (default: a local Ray instance, one trial at a time)")
    p.add_argument("--cpus-per-trial", type=int,
                   help="default: every CPU locally (one trial at a time), the smallest node's CPUs on a cluster")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("app", help="start the desktop app (drag and drop images to classify them)")
    add_app_arguments(p)
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("self-test", help="classify the CIFAR-10 sample images with the best shipped CIFAR-10 model; "
                                        "exit 0 only if all get the label in their file name")
    p.add_argument("--model", help="any discovered CIFAR-10 model name or .onnx path (default: the best shipped "
                                   "CIFAR-10 model, i.e. in exported_models/ or $CIFAR10_MODELS_DIR); a model of "
                                   "other classes cannot be self-tested (use `cifar10 evaluate --folder`)")
    p.add_argument("--samples", type=Path, help="folder of <class>_<n>.png images (default: resources/samples)")
    add_provider_argument(p)
    p.set_defaults(func=cmd_self_test)

    p = sub.add_parser("bundle", help="build the desktop app as a PyInstaller one-folder bundle + archive")
    p.add_argument("--out", type=Path, default=Path("dist"), help="where cifar10-classifier/ and its archive go")
    p.add_argument("--archive", choices=["zip", "gztar", "none"], default="zip",
                   help="zip (default) or gztar (.tar.gz); both keep the bundle's symlinks; none: folder only")
    p.add_argument("--work-dir", type=Path, help="PyInstaller's build folder (default: build/pyinstaller)")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("web", help="start the Streamlit or Gradio web app on localhost")
    p.add_argument("--ui", choices=["streamlit", "gradio"], default="streamlit")
    p.add_argument("--port", type=int, help="default: 8501 (streamlit), 7860 (gradio)")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines too")
    p.add_argument("--models-dir", type=Path, help="folder of <name>.onnx + <name>.json (default: exported_models)")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("export-space", help="write a Hugging Face Space folder (static = free, in-browser ONNX)")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--kind", choices=["static", "gradio", "streamlit"], default="static",
                   help="static: onnxruntime-web in the browser (free hosting); gradio; streamlit (Docker)")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="the models to publish, by name (`cifar10 models` lists them; default: every model found)")
    p.add_argument("--models-dir", type=Path,
                   help="look for models in this folder only (default: exported_models, then your models folder "
                        f"{user_models_dir()}, where `cifar10 train` puts them)")
    p.add_argument("--title", help="the page heading, browser tab and footer, and the Space's name on the Hub "
                                   "(default: 'CIFAR-10 classifier', or '<dataset> classifier' for your own model)")
    p.add_argument("--description", help="a line under the title (and the Hub card's summary if 60 characters or "
                                         "less)")
    p.add_argument("--examples", "--samples-dir", dest="examples", type=Path, metavar="DIR",
                   help="your own example pictures, all shown (default: the studio's samples of the classes the "
                        "models know)")
    p.add_argument("--force", action="store_true",
                   help="replace a Space export-space wrote in OUT_DIR before (only its unchanged files; keeps .git)")
    p.set_defaults(func=cmd_export_space)
    return parser


def cmd_models(args) -> int:
    """The exported models the apps can use (onnxruntime only), then the architectures `cifar10 train` can
    train (those need the 'training' extra; without it, one line says so)."""
    from cifar10.registry import discover_models

    models, errors = discover_models()
    print("Exported models (cifar10 classify --model NAME, the apps):")
    width = max([len(m.name) for m in models] + [4])
    for model in models:
        accuracy = f"{model.test_accuracy:.2%}" if model.test_accuracy is not None else "   ?  "
        print(f"  {model.name:{width}s}  {accuracy}  {model.knows} at {model.image_size} px  {model.onnx_path.parent}")
    if not models:
        print("  (none found)")
    for error in errors:
        print(f"  skipped: {error}")
    print("\nTrainable models (cifar10 train --model NAME):")
    sys.stdout.flush()
    try:
        training_models = _load("training.models")  # registers every model
    except MissingExtra as exc:
        print(f"  (listed once the 'training' extra is installed: {exc.module} is missing; "
              f"pip install -e '.[training]')")
        return 0
    names = training_models.model_names()
    width = max(map(len, names))
    for name in names:
        print(f"  {name:{width}s}  {training_models.get_spec(name).summary}")
    return 0


def main(argv: list[str] | None = None, *, prog: str = "cifar10") -> int:
    """``prog``: the name usage lines show (the bundled ``cifar10-classifier`` runs its subcommands through here)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    args.argv = argv
    global VERBOSE
    VERBOSE = args.verbose
    if VERBOSE:
        _show_training_log()
    try:
        return args.func(args)
    except UserFacingError as exc:
        print(f"cifar10: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
