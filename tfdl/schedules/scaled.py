"""A schedule times a constant: the linear scaling rule for a global batch that grows with the replicas."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tfdl")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`factor * schedule(step)`.

    Args:
        schedule: any learning-rate schedule.
        factor: the multiplier, > 0 (the number of replicas, for linear scaling).

    Example:
    >>> from tfdl.schedules import StepDecay
    >>> scaled = ScaledSchedule(StepDecay(0.1, drop=0.5, every_steps=10), 4)
    >>> [round(float(scaled(s)), 4) for s in (0, 10)]
    [0.4, 0.2]
    """

    def __init__(self, schedule: keras.optimizers.schedules.LearningRateSchedule, factor: float):
        super().__init__()
        if not factor > 0:
            raise ValueError(f"factor must be > 0; got factor={factor}.")
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return self.factor * self.schedule(step)

    def get_config(self) -> dict:
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "factor": self.factor}

    @classmethod
    def from_config(cls, config: dict) -> "ScaledSchedule":
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
