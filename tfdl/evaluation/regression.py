"""Regression metrics against a naive baseline, and the forecast-against-truth plot.

A regression figure means little alone: an MSE of 0.05 is good or bad
depending on what predicting without a model scores. So every evaluation
here is paired with a naive baseline on the same examples (the mean of the
training targets, or, for a time series, the last observed value) and
reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RegressionMetrics:
    """Predictions scored against true targets, beside a naive baseline's score.

    Attributes:
        mse, mae: mean squared and mean absolute error over every target value.
        r2: coefficient of determination, 1 - SSE / SST (SST about the test
            targets' own mean); 1 is perfect, 0 no better than that mean.
        baseline: what the naive forecast is, e.g. "last observed value".
        baseline_mse, baseline_mae: the naive forecast's errors.
        examples: number of examples scored.
    """

    mse: float
    mae: float
    r2: float
    baseline: str
    baseline_mse: float
    baseline_mae: float
    examples: int

    @property
    def skill(self) -> float:
        """1 - MSE / baseline MSE: the share of the baseline's error the model removes (1 perfect, 0 none)."""
        return 1.0 - self.mse / self.baseline_mse if self.baseline_mse > 0 else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready figures."""
        return {
            "mse": self.mse, "mae": self.mae, "r2": self.r2, "baseline": self.baseline,
            "baseline_mse": self.baseline_mse, "baseline_mae": self.baseline_mae,
            "skill": self.skill, "examples": self.examples,
        }


def regression_metrics(truth: np.ndarray, predicted: np.ndarray, baseline_predicted: np.ndarray,
                       baseline: str) -> RegressionMetrics:
    """Score `predicted` and the naive `baseline_predicted` against `truth`.

    Args:
        truth: true targets, [examples] or [examples, outputs].
        predicted: the model's predictions, any shape with as many values as `truth`.
        baseline_predicted: the naive forecast, broadcastable to `truth`'s shape.
        baseline: a short description of the naive forecast, for the report.

    Returns:
        RegressionMetrics.

    Raises:
        ValueError: no examples, or `predicted` holds a different number of values than `truth`.
    """
    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if truth.size == 0:
        raise ValueError("regression_metrics needs at least one example")
    if predicted.size != truth.size:
        raise ValueError(f"predicted holds {predicted.size} values but truth {truth.size} ({truth.shape}); they must match")
    predicted = predicted.reshape(truth.shape)
    naive = np.broadcast_to(np.asarray(baseline_predicted, dtype=np.float64), truth.shape)
    total = np.sum((truth - truth.mean()) ** 2)
    sse = np.sum((truth - predicted) ** 2)
    return RegressionMetrics(
        mse=float(np.mean((truth - predicted) ** 2)),
        mae=float(np.mean(np.abs(truth - predicted))),
        r2=float(1.0 - sse / total) if total > 0 else float("nan"),
        baseline=baseline,
        baseline_mse=float(np.mean((truth - naive) ** 2)),
        baseline_mae=float(np.mean(np.abs(truth - naive))),
        examples=int(len(truth)),
    )


def plot_forecast(truth: np.ndarray, predicted: np.ndarray, path: Path, history: np.ndarray | None = None,
                  windows: int = 4) -> Path:
    """Forecast against truth: a scatter over every test value and, for a time series, a few windows.

    Args:
        truth: true targets, [examples] or [examples, horizon].
        predicted: predictions, as many values as `truth`.
        path: the PNG to write.
        history: the observed windows, [examples, time] (a univariate
            series); when given, the first `windows` of them are drawn with
            their true and forecast continuations.
        windows: how many windows to draw.

    Returns:
        `path`.
    """
    from tfdl.evaluation.plots import pyplot, save_figure

    plt = pyplot()
    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(truth.shape)
    panels = 1 + (min(windows, len(truth)) if history is not None else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), squeeze=False)
    ax = axes[0, 0]
    ax.scatter(truth.ravel(), predicted.ravel(), s=6, alpha=0.5)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="perfect")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("test targets")
    ax.legend()
    if history is not None:
        steps = np.asarray(history).shape[1]
        for i, ax in enumerate(axes[0, 1:]):
            ahead = np.arange(steps, steps + truth[i].size)
            ax.plot(np.arange(steps), history[i], color="grey", label="observed")
            ax.plot(ahead, np.ravel(truth[i]), "o-", color="tab:blue", label="truth")
            ax.plot(ahead, np.ravel(predicted[i]), "x--", color="tab:red", label="forecast")
            ax.set_xlabel("step")
            ax.set_title(f"test window {i + 1}")
            ax.legend(fontsize=7)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    return save_figure(plt, fig, Path(path))
