"""The regression task of `tfdl run`: real-valued targets, scored by MSE, MAE and R^2 beside a naive baseline.

The naive baseline is the one a forecaster must beat: for a univariate time
series (inputs [examples, time, 1]) the last observed value, repeated over
the horizon; for anything else the mean of the training targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfdl.evaluation.tables import markdown_table
from tfdl.tasks.base import RunTask, TaskEvaluation


def is_univariate_series(inputs: np.ndarray) -> bool:
    """Whether raw inputs are windows of one series, [examples, time, 1], so persistence is the baseline."""
    return inputs.ndim == 3 and inputs.shape[-1] == 1


def naive_forecast(pipeline) -> tuple[np.ndarray, str]:
    """The baseline's predictions for the test split, and what it is.

    Args:
        pipeline: the data stage's `Pipeline`.

    Returns:
        (predictions broadcastable to the test labels, a description).
    """
    labels = pipeline.test_labels
    if is_univariate_series(pipeline.test_inputs):
        last = pipeline.test_inputs[:, -1, 0].astype(np.float64)
        return last.reshape((-1,) + (1,) * (labels.ndim - 1)), "last observed value"
    train = pipeline.raw("train")[1] if pipeline.data is not None else labels
    return np.asarray(train, dtype=np.float64).mean(axis=0), "mean of the training targets"


def regression_section(m) -> list[str]:
    """The report's test-set table of `RegressionMetrics`."""
    return markdown_table(
        ["", "MSE", "MAE", "R^2", "examples"],
        [["model", f"{m.mse:.5f}", f"{m.mae:.5f}", f"{m.r2:.4f}", m.examples],
         [f"baseline: {m.baseline}", f"{m.baseline_mse:.5f}", f"{m.baseline_mae:.5f}", "", m.examples]],
    ) + ["", f"The model removes {100 * m.skill:.1f}% of the baseline's squared error."]


class RegressionTask(RunTask):
    name = "regression"

    def objective(self, pipeline):
        return "mean_squared_error", ["mean_absolute_error"]

    def evaluate(self, model, pipeline, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation.regression import plot_forecast, regression_metrics

        labels = pipeline.test_labels
        predicted = np.asarray(model.predict(pipeline.test, verbose=0)).reshape(labels.shape)
        naive, baseline = naive_forecast(pipeline)
        m = regression_metrics(labels, predicted, naive, baseline)
        series = is_univariate_series(pipeline.test_inputs)
        plot = plot_forecast(labels, predicted, run_dir / "plots" / "forecast.png",
                             history=pipeline.test_inputs[..., 0] if series else None)
        return TaskEvaluation(
            figures=m.to_dict(),
            headline=f"test MSE {m.mse:.5f} (baseline {m.baseline_mse:.5f}), MAE {m.mae:.5f}, R^2 {m.r2:.4f}",
            section=regression_section(m),
            plots={"Forecast against truth (test)": plot},
        )
