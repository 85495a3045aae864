"""PNG plots of training curves, confusion matrices and the leaderboard (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cifar10.contract import CLASS_NAMES  # noqa: E402


def plot_history(history: dict, path: Path, title: str) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        if f"test_{key}" in history:  # --test-curve: for the curve only, nothing selected on it
            ax.plot(epochs, history[f"test_{key}"], label=f"test {key} (curve only)", linestyle="--")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title}: training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, path: Path, title: str, class_names=CLASS_NAMES) -> None:
    """``class_names``: the model's classes as apps show them (display names when the dataset has them)."""
    matrix = np.asarray(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"a {matrix.shape} confusion matrix for {n} class names")
    side = min(max(5.0, 0.55 * n + 2.5), 24.0)
    fig, ax = plt.subplots(figsize=(side, side * 0.87))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2
    for i, j in np.ndindex(matrix.shape):
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7 if n <= 20 else 5,
                color="white" if matrix[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(f"{title}: confusion matrix (test set)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
