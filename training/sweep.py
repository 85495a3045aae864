"""``cifar10 sweep``: a grid or random search over ``cifar10 train`` options on Ray Tune.

Each trial is one ``training.train.train`` run in its own Ray worker process (a fresh TensorFlow per
trial), reporting its validation accuracy after every epoch; ASHA stops the trials that fall behind at
each rung. At the end: ``trials.csv`` (one line per trial), ``curves.png`` (every trial's validation
curve in one plot) and ``sweep.json`` in the sweep folder, and the best finished trial is exported like
any run (``training.export.export_run``: ONNX + card, its equivalent ``cifar10 train`` command kept).

Where the trials run: without ``--address`` a local Ray instance with this machine's CPUs, and every
trial gets all of them (TensorFlow uses every core), so trials run one at a time; on a cluster each
trial gets the CPUs of the smallest node, so as many trials run at once as there are nodes (or
``--cpus-per-trial`` decides). On a cluster ``--out`` and the data must be on a shared file system.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cifar10.errors import UserFacingError

OPTIONS = ("optimizer", "lr", "batch_size", "epochs", "augment")
FLAGS = {"optimizer": "--optimizer", "lr": "--lr", "batch_size": "--batch-size", "epochs": "--epochs"}


@dataclass
class SweepSpec:
    model: str = "baseline"
    optimizer: list = field(default_factory=list)     # [] = the model's default
    lr: list = field(default_factory=list)            # values, or one "LOW:HIGH" range (random search, log-uniform)
    batch_size: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    augment: list = field(default_factory=list)       # [True, False]
    search: str = "grid"                              # grid | random
    samples: int | None = None                        # random: trials; grid: repeats of the grid, seeds seed, seed+1, ...
    grace_epochs: int = 1                             # ASHA: every trial runs at least this many epochs
    seed: int = 0
    limit: int | None = None
    data_dir: str | None = None


def parse_lr(values: list[str]) -> list:
    """``["1e-3", "3e-4"]`` -> floats; ``["1e-4:1e-2"]`` -> a (low, high) tuple for log-uniform sampling."""
    out = []
    for value in values:
        if ":" in value:
            low, high = (float(v) for v in value.split(":", 1))
            if not 0 < low < high:
                raise UserFacingError(f"sweep: --lr {value}: a range is LOW:HIGH with 0 < LOW < HIGH")
            out.append((low, high))
        else:
            out.append(float(value))
    return out


def param_space(spec: SweepSpec) -> tuple[dict, int]:
    """Ray Tune's param_space for the spec and its num_samples."""
    from ray import tune

    space: dict = {"model": spec.model, "seed": spec.seed, "limit": spec.limit, "data_dir": spec.data_dir}
    ranges = [v for v in spec.lr if isinstance(v, tuple)]
    if ranges and (spec.search != "random" or len(spec.lr) != 1):
        raise UserFacingError("sweep: an --lr LOW:HIGH range needs --search random and no other --lr value")
    for name in OPTIONS:
        values = getattr(spec, name)
        if not values:
            continue
        if name == "lr" and ranges:
            space[name] = tune.loguniform(*ranges[0])
        elif len(values) == 1:
            space[name] = values[0]
        elif spec.search == "grid":
            space[name] = tune.grid_search(list(values))
        else:
            space[name] = tune.choice(list(values))
    if spec.search == "grid":
        if (spec.samples or 1) > 1:  # repeats of the grid: one seed each (the same seed would repeat the same run)
            space["seed"] = tune.grid_search([spec.seed + i for i in range(spec.samples)])
        return space, 1
    if spec.search != "random":
        raise UserFacingError(f"sweep: unknown search '{spec.search}': grid or random")
    return space, spec.samples or 8


def grid_size(spec: SweepSpec) -> int:
    sizes = [len(getattr(spec, name)) for name in OPTIONS if getattr(spec, name)]
    return math.prod(sizes) if sizes else 1


def train_command(config: dict) -> str:
    """The ``cifar10 train`` command line a trial's configuration stands for (kept in the run and card)."""
    parts = ["cifar10", "train", "--model", config["model"]]
    for name, flag in FLAGS.items():
        if config.get(name) is not None:
            parts += [flag, f"{config[name]:.6g}" if name == "lr" else str(config[name])]
    if config.get("augment") is not None:
        parts.append("--augment" if config["augment"] else "--no-augment")
    parts += ["--seed", str(config.get("seed", 0))]
    if config.get("limit"):
        parts += ["--limit", str(config["limit"])]
    if config.get("data_dir"):
        parts += ["--data-dir", str(config["data_dir"])]
    return " ".join(shlex.quote(p) for p in parts)


def run_trial(config: dict) -> None:
    """One trial, in its own Ray worker process: ``cifar10 train`` with ``config``, reporting every epoch."""
    import keras
    from ray import tune

    from training.train import TrainSettings, train

    context = tune.get_context()
    out = Path(config["runs_dir"]) / context.get_trial_id()

    class ReportEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            tune.report({"epoch": epoch + 1, **{k: float(logs[k]) for k in
                                                ("val_accuracy", "val_loss", "accuracy", "loss") if k in logs}})

    settings = TrainSettings.for_model(config["model"], epochs=config.get("epochs"),
                                       batch_size=config.get("batch_size"), optimizer=config.get("optimizer"),
                                       lr=config.get("lr"), augment=config.get("augment"), seed=config.get("seed", 0),
                                       limit=config.get("limit"))
    train(settings, data_dir=config.get("data_dir"), out=out, export_dir=None, command=train_command(config),
          callbacks=[ReportEpoch()])


@dataclass
class TrialSummary:
    trial_id: str
    config: dict
    val_curve: list[float]
    status: str             # finished | stopped early | error
    run_dir: str | None     # the finished run (run.json), if any
    best_val_accuracy: float | None

    @property
    def label(self) -> str:
        parts = [f"{k}={self.config[k]:.3g}" if k == "lr" else f"{k}={self.config[k]}"
                 for k in OPTIONS if k in self.config and self.config[k] is not None]
        return ", ".join(parts) or self.trial_id


def summarise(results, runs_dir: Path) -> list[TrialSummary]:
    trials = []
    for result in results:
        config = {k: v for k, v in result.config.items() if k in OPTIONS}
        trial_id = Path(result.path).name.split("_")[-2] if result.path else "?"
        frame = result.metrics_dataframe
        curve = [float(v) for v in frame["val_accuracy"]] if frame is not None and "val_accuracy" in frame else []
        trial_id = str(frame["trial_id"].iloc[0]) if frame is not None and "trial_id" in frame and len(frame) else trial_id
        run_dirs = sorted((runs_dir / trial_id).glob("*/run.json"))
        run_dir = str(run_dirs[-1].parent) if run_dirs else None
        status = "error" if result.error else ("finished" if run_dir else "stopped early")
        trials.append(TrialSummary(trial_id, config, curve, status, run_dir, max(curve) if curve else None))
    return trials


def plot_curves(trials: list[TrialSummary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for trial in trials:
        if not trial.val_curve:
            continue
        epochs = list(range(1, len(trial.val_curve) + 1))
        style = "-" if trial.status == "finished" else "--"
        ax.plot(epochs, trial.val_curve, style, marker="o", markersize=3,
                label=f"{trial.label} ({trial.status})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if ax.lines:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_sweep(spec: SweepSpec, *, out: Path, export_dir: Path | None, address: str | None = None,
              cpus_per_trial: int | None = None, log=None, replace_model: bool = False) -> dict:
    """Run the sweep; returns its summary (also written to ``<sweep folder>/sweep.json``). The best trial is
    exported as ``<export_dir>/<model>.onnx``: an existing model of that name is replaced only with
    ``replace_model`` (checked before the first trial starts, and again at export time)."""
    from cifar10.ray_engine import RaySession
    from training.export import check_name_free, export_run

    if export_dir is not None and not replace_model:
        check_name_free(Path(export_dir), spec.model, other="--export-dir ANOTHER_FOLDER")

    log = log or (lambda message: print(message, file=sys.stderr))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    sweep_dir = (Path(out) / f"sweep-{spec.model}-{stamp}").resolve()
    runs_dir = sweep_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console tables off: one line per epoch instead
    with RaySession(address) as session:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        space, samples = param_space(spec)
        space["runs_dir"] = str(runs_dir)
        nodes = session.nodes()
        if cpus_per_trial is None:
            node_cpus = [int(n["Resources"].get("CPU", 1)) for n in nodes] or [1]
            cpus_per_trial = session.cpus() if not session.address else min(node_cpus)
        at_once = max(1, session.cpus() // cpus_per_trial)
        trials = grid_size(spec) * (spec.samples or 1) if spec.search == "grid" else samples
        log(f"sweep on {session.describe()}: {trials} trial{'s' * (trials != 1)} ({spec.search} search), "
            f"{cpus_per_trial} CPU{'s' * (cpus_per_trial != 1)} each, so {at_once} at a time"
            + (" (local: one trial at a time uses every core; --address to run on a cluster)" if at_once == 1 and not session.address else ""))
        max_epochs = max(spec.epochs) if spec.epochs else _default_epochs(spec.model)
        # max_t one past the longest schedule: ASHA stops a trial that reaches max_t, which would end the
        # best trial at its last epoch before it writes its run record.
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max(max_epochs, 1) + 1,
                                  grace_period=max(1, min(spec.grace_epochs, max_epochs)), reduction_factor=2)
        trainable = tune.with_resources(run_trial, {"cpu": cpus_per_trial})
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", scheduler=scheduler, num_samples=samples),
            run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=0,
                                      callbacks=[_EpochLog(log)]))
        grid = tuner.fit()
        results = [grid[i] for i in range(len(grid))]
    summaries = summarise(results, runs_dir)
    plot_curves(summaries, sweep_dir / "curves.png", f"{spec.model}: validation accuracy of {len(summaries)} trials")
    with open(sweep_dir / "trials.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", *OPTIONS, "epochs_run", "best_val_accuracy", "status", "run_dir"])
        for t in summaries:
            writer.writerow([t.trial_id, *(t.config.get(k, "") for k in OPTIONS), len(t.val_curve),
                             "" if t.best_val_accuracy is None else f"{t.best_val_accuracy:.4f}", t.status,
                             t.run_dir or ""])
    finished = [t for t in summaries if t.status == "finished" and t.best_val_accuracy is not None]
    best = max(finished, key=lambda t: t.best_val_accuracy) if finished else None
    summary = {"sweep_dir": str(sweep_dir), "model": spec.model, "search": spec.search, "trials": len(summaries),
               "finished": len(finished), "stopped_early": sum(t.status == "stopped early" for t in summaries),
               "errors": sum(t.status == "error" for t in summaries), "cpus_per_trial": cpus_per_trial,
               "best": None, "exported": None}
    for t in summaries:
        log(f"  {t.trial_id}  {t.label:60s} {len(t.val_curve)} epochs  best val "
            f"{'-' if t.best_val_accuracy is None else f'{t.best_val_accuracy:.4f}'}  {t.status}")
    if best is None:
        (sweep_dir / "sweep.json").write_text(json.dumps(summary, indent=2))
        raise UserFacingError(f"sweep: no trial finished (see {sweep_dir})")
    summary["best"] = {"trial": best.trial_id, "config": best.config, "best_val_accuracy": best.best_val_accuracy,
                       "run_dir": best.run_dir}
    log(f"best trial {best.trial_id}: {best.label}, val accuracy {best.best_val_accuracy:.4f}; run {best.run_dir}")
    if export_dir is not None:
        onnx_path = export_run(Path(best.run_dir), Path(export_dir), data_dir=spec.data_dir,
                               replace_model=replace_model)
        summary["exported"] = str(onnx_path)
    (sweep_dir / "sweep.json").write_text(json.dumps(summary, indent=2))
    log(f"sweep folder {sweep_dir}: trials.csv, curves.png, sweep.json"
        + (f"; best trial exported to {summary['exported']}" if summary["exported"] else ""))
    return summary


def _default_epochs(model: str) -> int:
    from training.models import get_spec

    return int(get_spec(model).defaults.epochs)


class _EpochLog:
    """A Tune callback: one line per trial epoch and per trial end, on the driver."""

    def __new__(cls, log):
        from ray.tune import Callback

        class EpochLog(Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                log(f"  trial {trial.trial_id} epoch {result.get('epoch')}: "
                    f"val accuracy {result.get('val_accuracy', float('nan')):.4f}")

            def on_trial_complete(self, iteration, trials, trial, **info):
                log(f"  trial {trial.trial_id} ended")

        return EpochLog()
