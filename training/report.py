"""`cifar10 report`: a markdown leaderboard of every exported model next to the study's figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load_cards(models_dir: Path) -> list[dict]:
    cards = [json.loads(p.read_text()) for p in sorted(Path(models_dir).glob("*.json"))]
    return sorted((c for c in cards if "test_accuracy" in c), key=lambda c: -c["test_accuracy"])


def _fmt(value, digits=4):
    return "—" if value is None else f"{value:.{digits}f}"


def leaderboard_markdown(cards: list[dict]) -> str:
    lines = [
        "# Leaderboard: exported models on the 10,000 CIFAR-10 test images",
        "",
        "Figures measured by onnxruntime on the exported `.onnx` files (`cifar10 export`); the study's",
        "figures are copied from its table (`../shared/seed/`) for comparison, not re-measured.",
        "",
        "| model | test acc. | macro F1 | ECE | params | epochs | train time | study column | study acc. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        study = c.get("study", {})
        minutes = c.get("training_wall_time_s", 0) / 60
        lines.append(
            f"| `{c['name']}` | {_fmt(c['test_accuracy'])} | {_fmt(c.get('f1_macro'))} | {_fmt(c.get('ece'))} "
            f"| {c.get('parameters', 0):,} | {c.get('training', {}).get('epochs_run', '—')} | {minutes:.1f} min "
            f"| {study.get('column', '—')} | {_fmt(study.get('test_accuracy'))} |")
    lines += ["", "Training commands (each from the model's card):", ""]
    lines += [f"- `{c['name']}`: `{c.get('training_command', '—')}` on {c.get('machine', {}).get('cpu', '?')} "
              f"({c.get('machine', {}).get('cores', '?')} cores)" for c in cards]
    lines += ["", "![leaderboard](leaderboard.png)", ""]
    return "\n".join(lines)


def plot_leaderboard(cards: list[dict], path: Path) -> None:
    names = [c["name"] for c in cards]
    ours = [c["test_accuracy"] for c in cards]
    study = [c.get("study", {}).get("test_accuracy") or 0 for c in cards]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(cards) + 1.5))
    y = range(len(cards))
    ax.barh([i + 0.2 for i in y], ours, height=0.4, label="this project (ONNX, measured)")
    ax.barh([i - 0.2 for i in y], study, height=0.4, label="original study (reported)", color="#bbb")
    for i, acc in zip(y, ours):
        ax.text(acc + 0.005, i + 0.2, f"{acc:.3f}", va="center", fontsize=8)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("test accuracy")
    ax.legend(loc="lower right", fontsize=8)
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
