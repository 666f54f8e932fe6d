"""tfdl.schedules: learning-rate schedules, each a registered `keras.optimizers.schedules.LearningRateSchedule`.

Every schedule computes with `keras.ops` on the step, so it runs inside a
compiled train step; pass one as `keras.optimizers.Adam(learning_rate=...)`,
or build one by name from a config with `build_schedule`.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

from tfdl.schedules.cosine_warmup import CosineDecayWithWarmup
from tfdl.schedules.cyclic import CyclicLearningRate
from tfdl.schedules.exponential_decay import ExponentialDecay
from tfdl.schedules.inverse_sqrt import TransformerSchedule
from tfdl.schedules.scaled import ScaledSchedule
from tfdl.schedules.step_decay import StepDecay

SCHEDULES: dict[str, type[keras.optimizers.schedules.LearningRateSchedule]] = {
    "step": StepDecay,
    "exponential": ExponentialDecay,
    "cosine_warmup": CosineDecayWithWarmup,
    "cyclic": CyclicLearningRate,
    "transformer": TransformerSchedule,
}


def build_schedule(name: str, **params: Any) -> keras.optimizers.schedules.LearningRateSchedule:
    """Build the schedule registered under `name` with keyword `params`.

    Args:
        name: one of "step", "exponential", "cosine_warmup", "cyclic",
            "transformer".
        **params: the schedule's constructor arguments.

    Returns:
        The schedule instance.

    Example:
    >>> schedule = build_schedule("exponential", initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.96)
    >>> type(schedule).__name__
    'ExponentialDecay'
    """
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; known schedules: {', '.join(sorted(SCHEDULES))}.")
    schedule_class = SCHEDULES[name]
    signature = inspect.signature(schedule_class)
    try:
        signature.bind(**params)
    except TypeError as error:
        raise ValueError(
            f"Bad parameters for schedule {name!r} ({error}); it takes: {', '.join(signature.parameters)}."
        ) from error
    return schedule_class(**params)


__all__ = [
    "SCHEDULES",
    "CosineDecayWithWarmup",
    "CyclicLearningRate",
    "ExponentialDecay",
    "ScaledSchedule",
    "StepDecay",
    "TransformerSchedule",
    "build_schedule",
]
