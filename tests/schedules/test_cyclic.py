"""CyclicLearningRate equals Smith's (2017) formulas for its three modes."""

import numpy as np
import pytest
from schedule_contract import assert_schedule_contract, values

from tfdl.schedules import CyclicLearningRate

BASE, MAX, STEP_SIZE = 1e-3, 6e-3, 50
STEPS = np.arange(0, 600, 3)


def numpy_clr(steps, mode, gamma=1.0):
    """Smith's reference implementation (his Algorithm 1 and the CLR repository)."""
    steps = np.asarray(steps, "float64")
    cycle = np.floor(1 + steps / (2 * STEP_SIZE))
    x = np.abs(steps / STEP_SIZE - 2 * cycle + 1)
    scale = {"triangular": np.ones_like(steps), "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**steps}[mode]
    return BASE + (MAX - BASE) * np.maximum(0, 1 - x) * scale


@pytest.mark.parametrize("mode, gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.995)])
def test_matches_numpy(mode, gamma):
    schedule = CyclicLearningRate(BASE, MAX, STEP_SIZE, mode=mode, gamma=gamma)
    np.testing.assert_allclose(values(schedule, STEPS), numpy_clr(STEPS, mode, gamma), rtol=1e-5)


def test_triangle_landmarks():
    schedule = CyclicLearningRate(BASE, MAX, STEP_SIZE)
    start, peak, trough, second_peak = values(schedule, [0, STEP_SIZE, 2 * STEP_SIZE, 3 * STEP_SIZE])
    assert start == pytest.approx(BASE) and trough == pytest.approx(BASE)
    assert peak == pytest.approx(MAX) and second_peak == pytest.approx(MAX)
    halving = CyclicLearningRate(BASE, MAX, STEP_SIZE, mode="triangular2")
    assert float(halving(3 * STEP_SIZE)) == pytest.approx(BASE + (MAX - BASE) / 2)


def test_contract(tmp_path):
    assert_schedule_contract(CyclicLearningRate(1e-3, 1e-2, step_size=2, mode="exp_range", gamma=0.99), tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_learning_rate": 1e-4}, r"max_learning_rate must be >= base_learning_rate"),
        ({"base_learning_rate": 0.0}, r"base_learning_rate must be > 0"),
        ({"step_size": 0}, r"step_size must be an integer >= 1"),
        ({"mode": "sawtooth"}, r"mode must be one of \('triangular', 'triangular2', 'exp_range'\)"),
        ({"mode": "exp_range", "gamma": 0.0}, r"gamma must be in \(0, 1\]"),
        ({"gamma": 1.01}, r"gamma must be in \(0, 1\]"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CyclicLearningRate(**{"base_learning_rate": BASE, "max_learning_rate": MAX, "step_size": STEP_SIZE, **kwargs})
