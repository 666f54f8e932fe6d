"""Step decay: multiply the learning rate by `drop` every `every_steps` optimizer steps.

One rule (`lr * drop ** floor(step / every_steps)`) rather than arbitrary
piecewise boundaries: it is the classic "halve every N steps" schedule, one
number to tune; Keras's `PiecewiseConstantDecay` covers arbitrary boundaries.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_learning_rate * drop ** floor(step / every_steps)`.

    Args:
        initial_learning_rate: the rate for steps `[0, every_steps)`, > 0.
        drop: the factor applied at each boundary, in (0, 1]. Default 0.5.
        every_steps: the number of optimizer steps between drops, an int >= 1.
        name: name of the schedule. Default "StepDecay".

    Example:
    >>> schedule = StepDecay(0.1, drop=0.5, every_steps=10)
    >>> [round(float(schedule(s)), 4) for s in (0, 9, 10, 25)]
    [0.1, 0.1, 0.05, 0.025]
    """

    def __init__(self, initial_learning_rate: float, drop: float = 0.5, every_steps: int = 1000, name: str = "StepDecay"):
        super().__init__()
        if not initial_learning_rate > 0:
            raise ValueError(f"initial_learning_rate must be > 0; got initial_learning_rate={initial_learning_rate}.")
        if not 0 < drop <= 1:
            raise ValueError(f"drop must be in (0, 1]; got drop={drop}.")
        if int(every_steps) != every_steps or every_steps < 1:
            raise ValueError(f"every_steps must be an integer >= 1; got every_steps={every_steps}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.drop = float(drop)
        self.every_steps = int(every_steps)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        drops = ops.floor(step / self.every_steps)
        return self.initial_learning_rate * ops.power(self.drop, drops)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "drop": self.drop,
            "every_steps": self.every_steps,
            "name": self.name,
        }
