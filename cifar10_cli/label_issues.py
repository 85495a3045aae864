"""``cifar10 label-issues FOLDER``: pictures that are probably in the wrong class folder, most suspicious first.

Out-of-fold predictions of the instant model (k-fold on its cached frozen features) and cleanlab's
confident-learning selection (training/label_issues.py). The CSV has ``path,given_label,suggested_label,
confidence``; nothing in FOLDER is changed (the app's Check Labels view moves a picture when asked, journaled).
Exit codes: 0 done (suspects or none), 2 a usage error, 130 cancelled (Ctrl+C, SIGTERM). ``--progress json``: the
events the app's Check Labels dialog shows (reading the pictures, computing their features) and can cancel.
"""

from __future__ import annotations

import sys


def run(args, progress=None) -> int:
    from cifar10_cli.main import _load

    find_issues, write_csv = (_load("training.label_issues", name) for name in ("find_issues", "write_csv"))
    issues = find_issues(args.folder, model_name=args.model, image_size=args.image_size, folds=args.folds,
                         seed=args.seed, log=lambda text: print(text, file=sys.stderr, flush=True), progress=progress)
    write_csv(issues, args.output)
    if args.output not in (None, "-"):
        print(f"{len(issues)} suspect{'s' * (len(issues) != 1)} written to {args.output}", file=sys.stderr)
    if progress is not None:
        progress({"event": "done", "suspects": len(issues), "output": str(args.output)})
    return 0


def add_parser(sub, default_model: str) -> None:
    p = sub.add_parser("label-issues", help="list pictures that are probably in the wrong class folder (out-of-fold "
                                            "predictions of the instant model + cleanlab's confident learning)")
    p.add_argument("folder", metavar="FOLDER", help="one subfolder per class (or train/ val/ test/ with class subfolders)")
    p.add_argument("--model", default=default_model,
                   help=f"a linear model on cached features (default {default_model})")
    p.add_argument("--output", "-o", metavar="CSV", help="write the CSV here (default: stdout)")
    p.add_argument("--image-size", type=int, metavar="S", help="input size in pixels (default: the model's)")
    p.add_argument("--folds", type=int, default=5, help="k of the k-fold out-of-fold predictions (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", choices=["text", "json"], default="text",
                   help="json (needs --output): one JSON event per line on stdout: cache and features "
                        "({\"done\", \"total\"}), then done or error; logs on stderr")
    p.set_defaults(func=cmd_label_issues)


def cmd_label_issues(args) -> int:
    from cifar10.errors import UserFacingError
    from cifar10_cli.main import sigterm_unwinds, with_json_events

    if args.progress == "json":
        if args.output in (None, "-"):
            raise UserFacingError("label-issues --progress json writes its events on stdout: give the CSV a file "
                                  "with --output")
        return sigterm_unwinds(lambda: with_json_events(lambda emit: run(args, emit)))
    try:
        return sigterm_unwinds(lambda: run(args))
    except KeyboardInterrupt:
        print("cifar10 label-issues: cancelled (nothing was written)", file=sys.stderr)
        return 130
