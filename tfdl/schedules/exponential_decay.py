"""Exponential decay: the learning rate shrinks by `decay_rate` every `decay_steps` steps.

The same schedule as `keras.optimizers.schedules.ExponentialDecay` (and
tested equal to it), with argument checking that names a bad value.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class ExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`.

    Args:
        initial_learning_rate: the rate at step 0, > 0.
        decay_steps: the number of steps over which the rate is multiplied by
            `decay_rate` once, > 0.
        decay_rate: the factor per `decay_steps`, > 0 (< 1 decays).
        staircase: if True, `step / decay_steps` is floored, so the rate
            changes in steps every `decay_steps`. Default False.
        name: name of the schedule. Default "ExponentialDecay".

    Example:
    >>> schedule = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96, staircase=True)
    >>> [round(float(schedule(s)), 5) for s in (0, 999, 1000, 2000)]
    [0.1, 0.1, 0.096, 0.09216]
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ):
        super().__init__()
        if not initial_learning_rate > 0:
            raise ValueError(f"initial_learning_rate must be > 0; got initial_learning_rate={initial_learning_rate}.")
        if not decay_steps > 0:
            raise ValueError(f"decay_steps must be > 0; got decay_steps={decay_steps}.")
        if not decay_rate > 0:
            raise ValueError(f"decay_rate must be > 0 (< 1 to decay); got decay_rate={decay_rate}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def __call__(self, step):
        progress = ops.cast(step, "float32") / self.decay_steps
        if self.staircase:
            progress = ops.floor(progress)
        return self.initial_learning_rate * ops.power(self.decay_rate, progress)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }
