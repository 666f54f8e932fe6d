"""PNG plots for reports: learning curves and the confusion matrix.

Uses matplotlib's Agg backend, so it works with no display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """One panel per metric, training against validation, by epoch."""
    plt = _pyplot()
    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """Counts per (true, predicted) class, with the count written in each cell."""
    plt = _pyplot()
    n = len(class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), labels=class_names, rotation=45 if n > 10 else 0)
    ax.set_yticks(range(n), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = confusion.max() / 2 if confusion.size else 0
    for i in range(n):
        for j in range(n):
            colour = "white" if confusion[i, j] > threshold else "black"
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
