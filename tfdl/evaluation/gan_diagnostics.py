"""Diagnostics for the failure modes of GANs: what the samples look like, and which classes they cover.

- `sample_grid`: a PNG grid of generated images; drawn each epoch from the
  same noise (and labels), it shows training converge, oscillate or collapse.
- `train_digits_classifier` + `class_histogram`: a classifier trained on the
  real data labels generated samples; mode collapse shows as a class with
  no samples (or one class with most of them), and for a conditional GAN
  the share labelled as the class asked for measures how well it listens.
- `plot_class_histogram`: that histogram as a bar chart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


def sample_grid(images: np.ndarray, path: Path, pixel_range: tuple[float, float], columns: int = 10,
                title: str | None = None) -> Path:
    """Write generated images as a PNG grid, each pixel scaled from `pixel_range` to [0, 1].

    Args:
        images: (n, height, width) or (n, height, width, 1) in raw data units.
        path: the PNG to write (folders are made).
        pixel_range: (low, high) of the raw data's pixels, e.g. (0, 16) for digits.
        columns: images per row.
        title: drawn above the grid.

    Returns:
        `path`.

    Raises:
        ValueError: images are not single-channel 2-D images, or the range is empty.
    """
    from tfdl.evaluation.plots import plot_image_grid

    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"sample_grid draws (n, height, width[, 1]) images, got shape {images.shape}")
    low, high = pixel_range
    if not high > low:
        raise ValueError(f"pixel_range must be (low, high) with high > low, got {pixel_range}")
    return plot_image_grid(np.clip((images - low) / (high - low), 0.0, 1.0), Path(path), columns=columns, title=title)


def train_digits_classifier(features: np.ndarray, labels: np.ndarray, pixel_high: float = 16.0, seed: int = 0):
    """An RBF support-vector classifier of flattened images, trained on real examples (about 0.1 s on digits).

    Args:
        features: (n, ...) raw images or rows; flattened.
        labels: (n,) integer classes.
        pixel_high: the raw pixels' maximum; inputs are divided by it.
        seed: seeds the classifier.

    Returns:
        A fitted scikit-learn pipeline; `predict` takes raw (n, ...) images too.

    Raises:
        ValueError: features and labels differ in length, or fewer than two classes.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.svm import SVC

    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1)
    if len(features) != len(labels):
        raise ValueError(f"features and labels differ in length: {len(features)} vs {len(labels)}")
    if len(np.unique(labels)) < 2:
        raise ValueError("the classifier needs examples of at least two classes")
    flatten = FunctionTransformer(_flatten_scaled, kw_args={"high": float(pixel_high)})
    return make_pipeline(flatten, SVC(C=10.0, gamma="scale", random_state=seed)).fit(features, labels)


def _flatten_scaled(x, high: float):
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1) / high


@dataclass
class ClassHistogram:
    """How a classifier labels generated samples.

    Attributes:
        counts: samples per class.
        share: counts / samples.
        classes_covered: classes with at least one sample.
        largest_share: the share of the most frequent class.
        asked_for_share: for a conditional GAN, the share labelled as the
            class asked for; None otherwise.
        per_class_asked_for: that share for each class asked for; None otherwise.
    """

    counts: list[int]
    share: list[float]
    classes_covered: int
    largest_share: float
    asked_for_share: float | None = None
    per_class_asked_for: list[float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def class_histogram(predicted: np.ndarray, num_classes: int, asked_for: np.ndarray | None = None) -> ClassHistogram:
    """Count the classes a classifier gave generated samples.

    Args:
        predicted: (n,) predicted classes of the samples.
        num_classes: how many classes there are.
        asked_for: (n,) the classes a conditional GAN was asked for; None
            for an unconditional one.

    Returns:
        The histogram and its summary figures.

    Raises:
        ValueError: empty predictions, classes out of range, or `asked_for`
            of another length.

    Example:
    >>> class_histogram(np.array([0, 0, 1, 2]), 4).share
    [0.5, 0.25, 0.25, 0.0]
    """
    predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
    if len(predicted) == 0:
        raise ValueError("class_histogram needs at least one prediction")
    if predicted.min() < 0 or predicted.max() >= num_classes:
        raise ValueError(f"predicted classes must be in [0, {num_classes - 1}], got {predicted.min()}..{predicted.max()}")
    counts = np.bincount(predicted, minlength=num_classes)
    share = counts / len(predicted)
    histogram = ClassHistogram(counts.tolist(), share.tolist(), int((counts > 0).sum()), float(share.max()))
    if asked_for is not None:
        asked_for = np.asarray(asked_for).reshape(-1)
        if len(asked_for) != len(predicted):
            raise ValueError(f"asked_for has {len(asked_for)} labels for {len(predicted)} predictions")
        hits = predicted == asked_for
        histogram.asked_for_share = float(hits.mean())
        histogram.per_class_asked_for = [float(hits[asked_for == c].mean()) if np.any(asked_for == c) else float("nan")
                                         for c in range(num_classes)]
    return histogram


def plot_class_histogram(histogram: ClassHistogram, class_names: Sequence[str], path: Path) -> Path:
    """Bar chart of the share of generated samples per class, with the uniform share marked.

    For a conditional GAN a second series shows, per class asked for, the
    share labelled as that class.
    """
    from tfdl.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    n = len(class_names)
    positions = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * n + 2), 3.6))
    width = 0.4 if histogram.per_class_asked_for is not None else 0.8
    ax.bar(positions - (width / 2 if width < 0.8 else 0), histogram.share, width, label="share of samples")
    if histogram.per_class_asked_for is not None:
        ax.bar(positions + width / 2, histogram.per_class_asked_for, width, label="labelled as asked")
    ax.axhline(1.0 / n, color="grey", linestyle="--", linewidth=1, label="uniform")
    ax.set_xticks(positions, labels=list(class_names))
    ax.set_xlabel("class (by a classifier trained on real data)")
    ax.set_ylim(0, 1.0 if histogram.per_class_asked_for is not None else max(0.3, histogram.largest_share * 1.15))
    ax.legend(fontsize=8)
    return save_figure(plt, fig, Path(path))
