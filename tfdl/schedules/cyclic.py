"""Cyclical learning rates (Smith 2017): bounce between a base and a max rate.

The rate rises linearly from `base_learning_rate` to `max_learning_rate` over
`step_size` steps and falls back over the next `step_size` (one cycle is
`2 * step_size` steps). The amplitude is scaled per mode:

- "triangular": constant amplitude;
- "triangular2": the amplitude halves every cycle;
- "exp_range": the amplitude is multiplied by `gamma ** step`.
"""

from __future__ import annotations

import keras
from keras import ops

MODES = ("triangular", "triangular2", "exp_range")


@keras.saving.register_keras_serializable(package="tfdl")
class CyclicLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's cyclical learning rate.

    With `cycle = floor(1 + step / (2 * step_size))` and
    `x = |step / step_size - 2 * cycle + 1|`:
    `lr = base + (max - base) * max(0, 1 - x) * scale`, where scale is 1
    ("triangular"), `1 / 2 ** (cycle - 1)` ("triangular2") or `gamma ** step`
    ("exp_range").

    Args:
        base_learning_rate: the lower bound, > 0.
        max_learning_rate: the upper bound, >= base_learning_rate.
        step_size: steps in half a cycle, an int >= 1 (Smith suggests 2 to 10
            epochs' worth).
        mode: "triangular", "triangular2" or "exp_range". Default "triangular".
        gamma: the per-step amplitude factor of "exp_range", in (0, 1].
            Default 1.0.
        name: name of the schedule. Default "CyclicLearningRate".

    Example:
    >>> schedule = CyclicLearningRate(0.001, 0.006, step_size=100)
    >>> [round(float(schedule(s)), 6) for s in (0, 50, 100, 150, 200)]
    [0.001, 0.0035, 0.006, 0.0035, 0.001]
    """

    def __init__(
        self,
        base_learning_rate: float,
        max_learning_rate: float,
        step_size: int,
        mode: str = "triangular",
        gamma: float = 1.0,
        name: str = "CyclicLearningRate",
    ):
        super().__init__()
        if not base_learning_rate > 0:
            raise ValueError(f"base_learning_rate must be > 0; got base_learning_rate={base_learning_rate}.")
        if not max_learning_rate >= base_learning_rate:
            raise ValueError(
                f"max_learning_rate must be >= base_learning_rate ({base_learning_rate}); "
                f"got max_learning_rate={max_learning_rate}."
            )
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1; got step_size={step_size}.")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got mode={mode!r}.")
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1]; got gamma={gamma}.")
        self.base_learning_rate = float(base_learning_rate)
        self.max_learning_rate = float(max_learning_rate)
        self.step_size = int(step_size)
        self.mode = mode
        self.gamma = float(gamma)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cycle = ops.floor(1.0 + step / (2.0 * self.step_size))
        x = ops.abs(step / self.step_size - 2.0 * cycle + 1.0)
        amplitude = (self.max_learning_rate - self.base_learning_rate) * ops.maximum(0.0, 1.0 - x)
        if self.mode == "triangular2":
            amplitude = amplitude / ops.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            amplitude = amplitude * ops.power(self.gamma, step)
        return self.base_learning_rate + amplitude

    def get_config(self) -> dict:
        return {
            "base_learning_rate": self.base_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
            "name": self.name,
        }
