"""`cifar10 report`: the leaderboard. One row per column of the original study's table (its figure next to
every model we trained for it: our test accuracy, the command, epochs, wall time, machine), then every
exported model, the extra ones included, and whether it ships in the apps or lives in the leaderboard only.

The study's figures come from the registry (each study model's ``study={...}``, copied from the study's
table in ``../shared/seed/``); ours come from the model cards, which ``cifar10 export`` measures with
onnxruntime on the exported ``.onnx``. Cards are read from the models folder (the models the apps and the
bundle ship) and its ``study/`` subfolder (leaderboard only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cifar10.machine import describe  # noqa: E402

LEADERBOARD_ONLY = "study"  # subfolder of the models folder: exported with a card, not shipped in the apps
FLOAT_TWINS = "float"       # subfolder: the float32 sources of the shipped int8 models (issue 26), leaderboard only

# Study columns without a trained model here, and why (the row says it instead of a figure).
NOT_TRAINED = {
    "vgg16_transfer": "needs Keras' VGG16 ImageNet weights, a download this machine cannot make; "
                      "`efficientnet_lite0_transfer` is our transfer model",
    "animals10_cnn": "Animals-10 is not on this machine: `cifar10 train --model animals10_cnn --data <Animals-10 "
                     "folder>`",
}


def load_cards(models_dir: Path) -> list[dict]:
    """Every card (``*.json`` with a ``test_accuracy``) in ``models_dir`` and its ``study/`` and ``float/``
    subfolders, best first (an int8 card's name gets " (int8)", a float twin's " (float)"); each gets ``_ships`` (True for the top folder, the one the apps and the bundle read)."""
    cards = []
    folders = ((Path(models_dir), True, ""), (Path(models_dir) / LEADERBOARD_ONLY, False, ""),
               (Path(models_dir) / FLOAT_TWINS, False, " (float)"))
    for folder, ships, suffix in folders:
        for path in sorted(folder.glob("*.json")):
            card = json.loads(path.read_text())
            if "test_accuracy" in card:
                int8 = isinstance(card.get("quantization"), dict) and "source" in card["quantization"]
                cards.append(card | {"_ships": ships, "name": card.get("name", path.stem) + (" (int8)" if int8
                                                                                             else suffix)})
    return sorted(cards, key=lambda c: -c["test_accuracy"])


def card_model(card: dict) -> str:
    """The registered model a card was trained from (its export name can differ: ``cnn_adam_m1-seed1``)."""
    return card.get("training", {}).get("settings", {}).get("model") or card["name"]


def study_columns() -> list[tuple[str, dict]]:
    """(model name, study dict) for every registered model that reproduces a column of the study's table,
    in the table's order."""
    from training import models

    specs = [models.get_spec(name) for name in models.model_names()]
    found = [(s.name, s.study) for s in specs if s.study.get("table_column")]
    return sorted(found, key=lambda item: item[1]["table_column"])


def recipe_changes(card: dict, model: str) -> list[str]:
    """How the card's training settings differ from the model's registered recipe (the study's
    hyperparameters): ["epochs 20 (10)", ...]; empty when it was trained as registered."""
    from dataclasses import asdict

    from training import models

    defaults = asdict(models.get_spec(model).defaults)
    settings = card.get("training", {}).get("settings", {})
    changes = [f"{key} {settings[key]} ({value})" for key, value in defaults.items()
               if key in settings and key != "image_size" and settings[key] != value
               and not (key == "precision" and value == "auto")]  # auto: whichever the machine resolved
    if settings.get("limit"):
        changes.append(f"limit {settings['limit']}")
    return changes


def _fmt(value, digits=4):
    return "—" if value is None else f"{value:.{digits}f}"


def _minutes(card: dict) -> str:
    seconds = card.get("training_wall_time_s")
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def _machine(card: dict) -> str:
    return describe(card.get("machine", {}))


def _epochs(card: dict):
    return card.get("training", {}).get("epochs_run", "—")


def _command(card: dict) -> str:
    return f"`{card.get('training_command', '—')}`"


def study_table_rows(cards: list[dict]) -> list[dict]:
    """One row per (study column, card trained for it); a column nobody trained gets one row without ours."""
    rows = []
    for model, study in study_columns():
        trained = [c for c in cards if card_model(c) == model and c.get("dataset", "CIFAR-10") ==
                   study.get("dataset", "CIFAR-10")]
        for card in trained or [None]:
            rows.append({"model": model, "study": study, "card": card})
    return rows


def untrained_models(cards: list[dict]) -> list:
    """Registered models outside the study's table that no card in the models folder was trained from."""
    from training import models

    trained = {card_model(c) for c in cards} | {model for model, _ in study_columns()}
    return [models.get_spec(name) for name in models.model_names()
            if name not in trained and not name.startswith("test_")]  # test_*: models for tests only


def leaderboard_markdown(cards: list[dict]) -> str:
    lines = [
        "# Leaderboard",
        "",
        "Our figures are measured by onnxruntime on the exported `.onnx` files (`cifar10 export`, on the 10,000",
        "CIFAR-10 test images); the study's are copied from its table (`../shared/seed/`), not re-measured.",
        "What explains the table's odd figures: [docs/study_table.md](../docs/study_table.md). \"recipe\": the",
        "table's hyperparameters as registered (`cifar10 train --model NAME`), or what the run changed (registered",
        "value in brackets).",
        "",
        "## The study's table, column by column",
        "",
        "| # | study column | study: acc. (final loss), epochs | our model | our test acc. | Δ | recipe | epochs | "
        "train time | command | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in study_table_rows(cards):
        study, card = row["study"], row["card"]
        loss = f" ({study['final_loss']:.4f})" if "final_loss" in study else ""
        theirs = f"{study['test_accuracy']:.4f}{loss}, {study.get('epochs', '?')}"
        dataset = study.get("dataset", "CIFAR-10")
        column = study["column"] + ("" if dataset == "CIFAR-10" else f" ({dataset})")
        if card is None:
            why = NOT_TRAINED.get(row["model"], f"not trained yet: `cifar10 train --model {row['model']}`")
            lines.append(f"| {study['table_column']} | {column} | {theirs} | `{row['model']}` | — | | | | | {why} | |")
            continue
        delta = card["test_accuracy"] - study["test_accuracy"]
        where = "" if card["_ships"] else " (leaderboard only)"
        changes = recipe_changes(card, row["model"])
        recipe = "changed: " + ", ".join(changes) if changes else "the table's"
        lines.append(
            f"| {study['table_column']} | {column} | {theirs} | `{card['name']}`{where} | "
            f"**{card['test_accuracy']:.4f}** | {delta:+.4f} | {recipe} | {_epochs(card)} | {_minutes(card)} | "
            f"{_command(card)} | {_machine(card)} |")
    lines += [
        "",
        "## Every exported model",
        "",
        "Models in `exported_models/` ship in the apps and the bundle; those in `exported_models/study/` are",
        "leaderboard only (`cifar10 evaluate exported_models/study/<name>.onnx` re-measures any of them), and so",
        "are the float twins of the shipped int8 models in `exported_models/float/` (`cifar10 quantize`).",
        "",
        "| model | ships in the apps | test acc. | macro F1 | ECE | params | epochs | train time | command | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        lines.append(
            f"| `{c['name']}` | {'yes' if c['_ships'] else 'no'} | {_fmt(c['test_accuracy'])} | "
            f"{_fmt(c.get('f1_macro'))} | {_fmt(c.get('ece'))} | {c.get('parameters', 0):,} | {_epochs(c)} | "
            f"{_minutes(c)} | {_command(c)} | {_machine(c)} |")
    untrained = untrained_models(cards)
    if untrained:
        lines += ["", "## Registered, not trained yet", "", "| model | what | command |", "|---|---|---|"]
        lines += [f"| `{spec.name}` | {spec.summary} | `cifar10 train --model {spec.name}` |" for spec in untrained]
    lines += ["", "![leaderboard](leaderboard.png)", ""]
    return "\n".join(lines)


def plot_leaderboard(cards: list[dict], path: Path) -> None:
    study = {model: s["test_accuracy"] for model, s in study_columns()}
    names = [c["name"] + ("" if c["_ships"] else " *") for c in cards]
    ours = [c["test_accuracy"] for c in cards]
    theirs = [study.get(card_model(c), 0) for c in cards]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(cards) + 2))
    y = range(len(cards))
    ax.barh([i + 0.2 for i in y], ours, height=0.4, label="this project (ONNX, measured)")
    ax.barh([i - 0.2 for i in y], theirs, height=0.4, label="original study (reported)", color="#bbb")
    for i, acc in zip(y, ours):
        ax.text(acc + 0.005, i + 0.2, f"{acc:.3f}", va="center", fontsize=8)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("test accuracy (* = leaderboard only, not shipped in the apps)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8)  # below: no bar hidden
    ax.set_title("CIFAR-10 test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(models_dir: Path, out: Path) -> Path:
    cards = load_cards(models_dir)
    if not cards:
        raise SystemExit(f"No model cards with test_accuracy in {models_dir}.")
    out.mkdir(parents=True, exist_ok=True)
    plot_leaderboard(cards, out / "leaderboard.png")
    path = out / "leaderboard.md"
    path.write_text(leaderboard_markdown(cards))
    print(f"Wrote {path} and {out / 'leaderboard.png'} ({len(cards)} models)", file=sys.stderr)
    return path
