"""PNG plots for reports: learning curves and the confusion matrix.

Uses matplotlib's Agg backend, so it works with no display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), for plot functions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, path: Path) -> Path:
    """Lay out `fig`, write it to `path` (folders made) as a PNG, close it; returns `path`."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """One panel per metric, training against validation, by epoch."""
    plt = pyplot()
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
    return save_figure(plt, fig, path)


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """Counts per (true, predicted) class, with the count written in each cell."""
    plt = pyplot()
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
    return save_figure(plt, fig, path)


def plot_attention(weights: np.ndarray, source_tokens: Sequence[str], output_tokens: Sequence[str], path: Path) -> Path:
    """Heatmap of attention weights: one row per output step, one column per source token."""
    plt = pyplot()
    weights = np.asarray(weights)[: len(output_tokens), : len(source_tokens)]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.45 * len(source_tokens) + 1.5), max(2.5, 0.45 * len(output_tokens) + 1.2)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_tokens)), labels=list(source_tokens))
    ax.set_yticks(range(len(output_tokens)), labels=list(output_tokens))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(plt, fig, path)


def plot_image_grid(images: np.ndarray, path: Path, columns: int = 10, title: str | None = None) -> Path:
    """Grayscale images (n, height, width) in a grid, e.g. VAE samples or reconstructions."""
    plt = pyplot()
    images = np.asarray(images)
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 0.8 + (0.4 if title else 0)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image in zip(axes.ravel(), images):
        ax.imshow(image, cmap="gray_r", vmin=0.0, vmax=1.0)
    if title:
        fig.suptitle(title)
    return save_figure(plt, fig, path)


def plot_mask_overlays(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                       path: Path, count: int = 6) -> Path:
    """The first `count` images with their true and predicted masks laid over them, one row each.

    Class 0 (the background) is left clear; every other class gets its own colour.
    """
    plt = pyplot()
    count = min(count, len(images))
    colours = plt.get_cmap("tab10")(np.arange(len(class_names)))[:, :3]
    images = np.asarray(images, dtype=np.float64)
    low, high = images.min(), images.max()
    images = (images - low) / (high - low if high > low else 1.0)  # whatever the input scaling
    fig, axes = plt.subplots(count, 3, figsize=(6.6, 2.2 * count), squeeze=False)
    for row in range(count):
        image = images[row] if images.shape[-1] == 3 else np.repeat(images[row][..., :1], 3, axis=-1)
        for col, (title, mask) in enumerate((("image", None), ("true", truth[row]), ("predicted", predicted[row]))):
            shown = image
            if mask is not None:
                tint = colours[np.asarray(mask)]
                alpha = (np.asarray(mask) > 0)[..., None] * 0.6
                shown = image * (1 - alpha) + tint * alpha
            axes[row, col].imshow(shown)
            axes[row, col].set_axis_off()
            if row == 0:
                axes[row, col].set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[i]) for i in range(1, len(class_names))]
    fig.legend(handles, list(class_names)[1:], loc="lower center", ncol=len(handles))
    return save_figure(plt, fig, path)


def plot_detections(images: np.ndarray, truth: Sequence[dict], found: Sequence[dict], class_names: Sequence[str],
                    path: Path, count: int = 6, min_score: float = 0.3) -> Path:
    """The first `count` images with their true boxes (dashed) and detections scoring `min_score` or more.

    `truth` and `found` hold one dict per image with normalized
    `[ymin, xmin, ymax, xmax]` `boxes` and `classes` (and `scores` for `found`).
    """
    plt = pyplot()
    count = min(count, len(images))
    colours = plt.get_cmap("tab10")(np.arange(len(class_names)))[:, :3]
    images = np.asarray(images, dtype=np.float64)
    low, high = images.min(), images.max()
    images = (images - low) / (high - low if high > low else 1.0)
    fig, axes = plt.subplots(1, count, figsize=(2.4 * count, 2.7), squeeze=False)
    for i in range(count):
        ax = axes[0, i]
        height, width = images[i].shape[:2]
        ax.imshow(images[i] if images.shape[-1] == 3 else images[i][..., 0], cmap=None if images.shape[-1] == 3 else "gray")
        for boxes, classes, scores, style in (
            (truth[i]["boxes"], truth[i]["classes"], None, "--"),
            (found[i]["boxes"], found[i]["classes"], found[i]["scores"], "-"),
        ):
            for j, (box, cls) in enumerate(zip(np.asarray(boxes), np.asarray(classes))):
                if scores is not None and scores[j] < min_score:
                    continue
                y0, x0, y1, x1 = box * [height, width, height, width]
                ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, linestyle=style,
                                           edgecolor=colours[int(cls)], linewidth=1.5))
                if scores is not None:
                    ax.text(x0, y0 - 1, f"{class_names[int(cls)]} {scores[j]:.2f}", color=colours[int(cls)],
                            fontsize=6, va="bottom")
        ax.set_axis_off()
    fig.suptitle("dashed: truth; solid: detections", fontsize=8)
    return save_figure(plt, fig, path)
