"""CosineDecayWithWarmup: linear warmup, cosine to alpha * peak, continuous at the boundary."""

import keras
import numpy as np
import pytest
from schedule_contract import assert_schedule_contract, values

from tfdl.schedules import CosineDecayWithWarmup

PEAK, WARMUP, DECAY = 2e-3, 100, 1100
STEPS = np.arange(0, 1500, 7)


def numpy_schedule(steps, peak, warmup, decay, alpha, initial):
    steps = np.asarray(steps, "float64")
    warm = initial + (peak - initial) * steps / max(warmup, 1)
    progress = np.clip(steps - warmup, 0, decay - warmup) / (decay - warmup)
    cosine = peak * (alpha + (1 - alpha) * 0.5 * (1 + np.cos(np.pi * progress)))
    return np.where(steps < warmup, warm, cosine)


@pytest.mark.parametrize("alpha, initial, warmup", [(0.0, 0.0, WARMUP), (0.1, 5e-4, WARMUP), (0.2, 0.0, 0)])
def test_matches_numpy(alpha, initial, warmup):
    schedule = CosineDecayWithWarmup(PEAK, warmup, DECAY, alpha=alpha, initial_learning_rate=initial)
    expected = numpy_schedule(STEPS, PEAK, warmup, DECAY, alpha, initial)
    np.testing.assert_allclose(values(schedule, STEPS), expected, rtol=1e-5, atol=1e-10)


def test_landmarks_and_continuity_at_the_warmup_boundary():
    schedule = CosineDecayWithWarmup(PEAK, WARMUP, DECAY, alpha=0.1, initial_learning_rate=1e-4)
    assert float(schedule(0)) == pytest.approx(1e-4)
    before, at, after = values(schedule, [WARMUP - 1, WARMUP, WARMUP + 1])
    assert at == pytest.approx(PEAK, rel=1e-6)
    slope = (PEAK - 1e-4) / WARMUP
    assert at - before == pytest.approx(slope, rel=1e-3)  # no jump from the warmup line to the peak
    assert 0 < at - after < slope  # and the cosine starts flat
    assert float(schedule(DECAY)) == pytest.approx(0.1 * PEAK, rel=1e-6)
    assert float(schedule(10 * DECAY)) == pytest.approx(0.1 * PEAK, rel=1e-6)  # holds the floor
    assert np.all(np.diff(values(schedule, range(WARMUP, DECAY + 1))) <= 0)


def test_equals_keras_cosine_decay_with_decay_counted_after_warmup():
    ours = CosineDecayWithWarmup(PEAK, WARMUP, DECAY, alpha=0.05)
    theirs = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=DECAY - WARMUP, alpha=0.05, warmup_target=PEAK, warmup_steps=WARMUP
    )
    np.testing.assert_allclose(values(ours, STEPS), values(theirs, STEPS), rtol=1e-5, atol=1e-10)


def test_contract(tmp_path):
    schedule = CosineDecayWithWarmup(1e-3, warmup_steps=2, decay_steps=10, alpha=0.1, initial_learning_rate=1e-4)
    assert_schedule_contract(schedule, tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"warmup_steps": 200, "decay_steps": 100}, r"warmup_steps must be in \[0, decay_steps\) = \[0, 100\)"),
        ({"warmup_steps": 100, "decay_steps": 100}, r"warmup_steps must be in \[0, decay_steps\)"),
        ({"warmup_steps": -1}, r"warmup_steps must be in \[0, decay_steps\)"),
        ({"decay_steps": 0, "warmup_steps": 0}, r"decay_steps must be > 0"),
        ({"peak_learning_rate": 0.0}, r"peak_learning_rate must be > 0"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"initial_learning_rate": 1.0}, r"initial_learning_rate must be in \[0, peak_learning_rate\]"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CosineDecayWithWarmup(**{"peak_learning_rate": PEAK, "warmup_steps": WARMUP, "decay_steps": DECAY, **kwargs})
