"""A noisy sine series cut into windows: the sequence-to-one forecasting lesson.

Each example is a window of `length` past observations of
`sin(2 pi t / period + phase) + noise`, with its own period (drawn from
`[min_period, max_period]`) and phase; the target is the next `horizon`
observations. The naive forecast (repeat the last observation) pays for the
noise twice and for the trend it ignores; a forecaster that reads the whole
window averages the noise away and follows the curve.

    data: {source: {type: generated, name: sine, examples: 3000, params: {length: 40, noise: 0.1}}}
"""

from __future__ import annotations

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.generated import register_generator


@register_generator("sine")
def make_sine_windows(
    examples: int,
    seed: int,
    length: int = 40,
    horizon: int = 1,
    noise: float = 0.1,
    min_period: float = 12.0,
    max_period: float = 40.0,
    input_name: str = "sequence",
) -> ArrayData:
    """Generate `examples` windows of a noisy sine and the observations that follow each.

    Args:
        examples: how many windows.
        seed: the same seed gives the same windows.
        length: observations per window.
        horizon: observations to forecast after each window.
        noise: standard deviation of the Gaussian noise on every observation.
        min_period, max_period: range of the sine's period, in steps.
        input_name: the model input's name.

    Returns:
        ArrayData with features float32 [examples, length, 1] and labels
        float32 [examples] (horizon 1) or [examples, horizon]; no class names.

    Raises:
        ValueError: a count below 1, negative noise, or a bad period range.
    """
    if min(examples, length, horizon) < 1:
        raise ValueError(f"sine needs examples, length and horizon >= 1, got {examples}, {length}, {horizon}")
    if noise < 0:
        raise ValueError(f"sine noise is a standard deviation and must be >= 0, got {noise}")
    if not 0 < min_period <= max_period:
        raise ValueError(f"sine needs 0 < min_period <= max_period, got {min_period} and {max_period}")
    rng = np.random.default_rng(seed)
    period = rng.uniform(min_period, max_period, size=(examples, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(examples, 1))
    steps = np.arange(length + horizon)[None, :]
    series = np.sin(2 * np.pi * steps / period + phase) + rng.normal(0.0, noise, size=(examples, length + horizon))
    series = series.astype(np.float32)
    targets = series[:, length:] if horizon > 1 else series[:, length]
    return ArrayData(series[:, :length, None], targets, (), input_name, ("value",))
