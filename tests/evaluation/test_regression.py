"""Regression metrics against hand-computed values, and the forecast plot."""

import numpy as np
import pytest

from tfdl.evaluation.regression import plot_forecast, regression_metrics


def test_metrics_match_hand_computed_values():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(truth, np.array([[1.5], [2.0], [2.0], [4.0]]), baseline_predicted=2.5, baseline="mean")
    assert m.mse == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert m.mae == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert m.r2 == pytest.approx(1 - 1.25 / 5.0)  # SST about the mean 2.5: 2.25 + 0.25 + 0.25 + 2.25
    assert m.baseline_mse == pytest.approx(5.0 / 4) and m.baseline_mae == pytest.approx(1.0)
    assert m.skill == pytest.approx(1 - 0.3125 / 1.25)
    assert m.to_dict()["examples"] == 4


def test_a_per_example_baseline_broadcasts_over_the_horizon():
    truth = np.array([[1.0, 2.0], [3.0, 5.0]])
    m = regression_metrics(truth, truth, baseline_predicted=np.array([[1.0], [4.0]]), baseline="last value")
    assert m.mse == 0.0 and m.r2 == 1.0
    assert m.baseline_mse == pytest.approx((0 + 1 + 1 + 1) / 4)


def test_mismatched_predictions_are_refused():
    with pytest.raises(ValueError, match="predicted holds 3 values but truth 2"):
        regression_metrics(np.zeros(2), np.zeros(3), 0.0, "zero")


def test_the_forecast_plot_is_written(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(6, 2))
    path = plot_forecast(truth, truth + 0.1, tmp_path / "plots" / "forecast.png", history=rng.normal(size=(6, 10)))
    assert path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"
