"""StepDecay equals lr * drop ** floor(step / every_steps)."""

import numpy as np
import pytest
from schedule_contract import PROBE_STEPS, assert_schedule_contract, values

from tfdl.schedules import StepDecay


@pytest.mark.parametrize("drop, every", [(0.5, 10), (0.1, 1000), (1.0, 3)])
def test_matches_numpy(drop, every):
    schedule = StepDecay(0.2, drop=drop, every_steps=every)
    expected = 0.2 * drop ** np.floor(PROBE_STEPS / every)
    # float32 underflows to 0 where numpy (float64) gives 1e-101.
    np.testing.assert_allclose(values(schedule), expected, rtol=1e-6, atol=1e-30)


def test_is_constant_between_boundaries_and_drops_at_them():
    schedule = StepDecay(1.0, drop=0.5, every_steps=4)
    np.testing.assert_allclose(values(schedule, range(10)), [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_contract(tmp_path):
    assert_schedule_contract(StepDecay(0.1, drop=0.5, every_steps=1, name="halve"), tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial_learning_rate": 0.0}, r"initial_learning_rate must be > 0"),
        ({"drop": 0.0}, r"drop must be in \(0, 1\]"),
        ({"drop": 1.5}, r"drop must be in \(0, 1\]"),
        ({"every_steps": 0}, r"every_steps must be an integer >= 1"),
        ({"every_steps": 2.5}, r"every_steps must be an integer >= 1"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StepDecay(**{"initial_learning_rate": 0.1, "every_steps": 10, **kwargs})
