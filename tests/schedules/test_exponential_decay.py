"""ExponentialDecay reproduces Keras's documented table and equals the Keras built-in."""

import keras
import numpy as np
import pytest
from schedule_contract import PROBE_STEPS, assert_schedule_contract, values

from tfdl.schedules import ExponentialDecay


def test_reproduces_the_keras_staircase_table():
    schedule = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96, staircase=True)
    table = values(schedule, [0, 1000, 2000, 3000, 4000])
    np.testing.assert_allclose(table, [0.1, 0.096, 0.09216, 0.08847, 0.08493], atol=5e-6)
    # Staircase: constant inside an interval.
    assert float(schedule(999)) == pytest.approx(0.1) and float(schedule(1999)) == pytest.approx(0.096)


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps, decay_rate", [(1000, 0.96), (7, 0.5), (250, 1.1)])
def test_equals_keras_builtin_at_many_steps(staircase, decay_steps, decay_rate):
    steps = np.unique(np.concatenate([PROBE_STEPS, np.arange(0, 5000, 37)]))
    ours = ExponentialDecay(0.1, decay_steps, decay_rate, staircase=staircase)
    theirs = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps, decay_rate, staircase=staircase)
    # Both compute in float32, which underflows to 0 where numpy gives 1e-300.
    np.testing.assert_allclose(values(ours, steps), values(theirs, steps), rtol=1e-6, atol=1e-30)
    expected = 0.1 * decay_rate ** ((np.floor if staircase else np.asarray)(steps / decay_steps))
    np.testing.assert_allclose(values(ours, steps), expected, rtol=1e-5, atol=1e-30)


def test_contract(tmp_path):
    assert_schedule_contract(ExponentialDecay(0.01, decay_steps=3, decay_rate=0.9, staircase=True), tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"decay_steps": 0}, r"decay_steps must be > 0"),
        ({"decay_steps": -5}, r"decay_steps must be > 0"),
        ({"decay_rate": 0.0}, r"decay_rate must be > 0"),
        ({"initial_learning_rate": -0.1}, r"initial_learning_rate must be > 0"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExponentialDecay(**{"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.96, **kwargs})
