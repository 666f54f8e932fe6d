"""TransformerSchedule equals the paper's formula with steps counted from 1 and peaks at warmup."""

import numpy as np
import pytest
from schedule_contract import assert_schedule_contract, values

from tfdl.schedules import TransformerSchedule

STEPS = np.arange(0, 20000, 11)


@pytest.mark.parametrize("d_model, warmup, scale", [(512, 4000, 1.0), (128, 1000, 2.0)])
def test_matches_numpy(d_model, warmup, scale):
    n = STEPS + 1.0
    expected = scale * d_model**-0.5 * np.minimum(n**-0.5, n * warmup**-1.5)
    schedule = TransformerSchedule(d_model, warmup_steps=warmup, scale=scale)
    np.testing.assert_allclose(values(schedule, STEPS), expected, rtol=1e-5)


def test_finite_at_step_zero_and_peaks_at_the_warmup_th_update():
    schedule = TransformerSchedule(512, warmup_steps=4000)
    first = float(schedule(0))
    assert np.isfinite(first) and first == pytest.approx(512**-0.5 * 4000**-1.5)
    curve = values(schedule, range(0, 12000))
    assert int(np.argmax(curve)) == 4000 - 1
    assert curve.max() == pytest.approx((512 * 4000) ** -0.5, rel=1e-6)
    assert np.all(np.diff(curve[:3999]) > 0) and np.all(np.diff(curve[3999:]) < 0)


def test_contract(tmp_path):
    assert_schedule_contract(TransformerSchedule(64, warmup_steps=3, scale=0.5), tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d_model": 0}, r"d_model must be an integer >= 1"),
        ({"warmup_steps": 0}, r"warmup_steps must be an integer >= 1"),
        ({"scale": -1.0}, r"scale must be > 0"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerSchedule(**{"d_model": 512, **kwargs})
