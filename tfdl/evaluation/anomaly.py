"""Anomaly detection by reconstruction error: the threshold, the scores, and the plot.

A model trained on normal examples only (an autoencoder) rebuilds them well
and anything else badly, so its per-example reconstruction error is an
anomaly score. The threshold is chosen on validation data that holds normal
examples only: at the `quantile` of their errors, so about 1 - quantile of
normal inputs are flagged. That needs no labelled anomalies, which in
practice are rare or unknown before deployment, and it fixes the false-alarm
rate the operator pays for. The test split, normal and anomalous together,
then measures precision and recall at that threshold, plus the ROC AUC,
which needs no threshold at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AnomalyMetrics:
    """Detection of anomalies at one threshold.

    Precision with nothing flagged, and recall with no anomaly present, are 0
    (as scikit-learn's `zero_division=0`).
    """

    threshold: float
    precision: float
    recall: float
    f1: float
    auc: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    false_positive_rate: float

    def to_dict(self) -> dict:
        """JSON-ready figures."""
        return asdict(self)


def reconstruction_errors(inputs: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error per example, over every axis but the first.

    Args:
        inputs: examples, shape (n, ...).
        reconstructions: the model's reconstructions, same shape.

    Returns:
        float64 array of shape (n,).

    Raises:
        ValueError: the shapes differ.
    """
    inputs, reconstructions = np.asarray(inputs, np.float64), np.asarray(reconstructions, np.float64)
    if inputs.shape != reconstructions.shape:
        raise ValueError(f"inputs {inputs.shape} and reconstructions {reconstructions.shape} must have one shape")
    return np.square(inputs - reconstructions).reshape(len(inputs), -1).mean(axis=1)


def choose_threshold(normal_errors: np.ndarray, quantile: float = 0.95) -> float:
    """The anomaly threshold: the `quantile` of the reconstruction errors of normal validation examples.

    Args:
        normal_errors: errors of normal examples the model was not trained on.
        quantile: share of normal examples to keep below the threshold, in (0, 1).

    Returns:
        The threshold; errors strictly above it are anomalies.

    Raises:
        ValueError: no errors, a non-finite error, or `quantile` outside (0, 1).
    """
    errors = np.asarray(normal_errors, np.float64).ravel()
    if errors.size == 0:
        raise ValueError("choose_threshold needs the errors of at least one normal validation example")
    if not np.all(np.isfinite(errors)):
        raise ValueError("normal_errors hold NaN or infinite values; the model diverged")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {quantile}")
    return float(np.quantile(errors, quantile))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random anomaly scores above a random normal example (ties count half).

    Returns NaN when either group is empty.
    """
    scores, positive = np.asarray(scores, np.float64).ravel(), np.asarray(positive, bool).ravel()
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    from scipy.stats import rankdata

    # Mann-Whitney U from average ranks: ties count half without comparing every pair.
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def anomaly_metrics(errors: np.ndarray, is_anomaly: np.ndarray, threshold: float) -> AnomalyMetrics:
    """Precision, recall and F1 of flagging `errors > threshold`, against the truth `is_anomaly`.

    Args:
        errors: per-example reconstruction errors (the anomaly scores).
        is_anomaly: per-example truth, bool or 0/1.
        threshold: from `choose_threshold`.

    Returns:
        `AnomalyMetrics`.

    Raises:
        ValueError: `errors` and `is_anomaly` differ in length.
    """
    errors, truth = np.asarray(errors, np.float64).ravel(), np.asarray(is_anomaly, bool).ravel()
    if len(errors) != len(truth):
        raise ValueError(f"errors hold {len(errors)} examples but is_anomaly {len(truth)}; they must match")
    flagged = errors > threshold
    tp, fp = int(np.sum(flagged & truth)), int(np.sum(flagged & ~truth))
    fn, tn = int(np.sum(~flagged & truth)), int(np.sum(~flagged & ~truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return AnomalyMetrics(
        threshold=float(threshold), precision=precision, recall=recall, f1=f1, auc=roc_auc(errors, truth),
        true_positives=tp, false_positives=fp, false_negatives=fn, true_negatives=tn,
        false_positive_rate=fp / (fp + tn) if fp + tn else 0.0,
    )


def plot_error_histogram(normal_errors: np.ndarray, anomalous_errors: np.ndarray, threshold: float, path: Path) -> Path:
    """Histograms of the reconstruction errors of normal and anomalous examples, with the threshold as a line.

    Args:
        normal_errors, anomalous_errors: per-example errors of each group (either may be empty).
        threshold: drawn as a vertical line.
        path: the PNG to write.

    Returns:
        `path`.
    """
    from tfdl.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    normal, anomalous = np.asarray(normal_errors, np.float64), np.asarray(anomalous_errors, np.float64)
    both = np.concatenate([normal, anomalous, [threshold]])
    bins = np.linspace(both.min(), both.max(), 40)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(normal, bins=bins, alpha=0.6, label=f"normal ({len(normal)})")
    if len(anomalous):
        ax.hist(anomalous, bins=bins, alpha=0.6, label=f"anomalous ({len(anomalous)})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("reconstruction error (MSE)")
    ax.set_ylabel("examples")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(plt, fig, Path(path))
