"""Keras optimizers from an `OptimizerConfig`."""

from __future__ import annotations

from tfdl.training.config import OptimizerConfig


def make_optimizer(config: OptimizerConfig, scale: float = 1.0):
    """The Keras optimizer `config` names.

    Args:
        config: the optimizer config.
        scale: multiplies the learning rate (or the schedule's every value):
            the number of replicas under `training.scale_learning_rate`.
    """
    import keras

    if config.schedule is not None:
        from tfdl.schedules import ScaledSchedule, build_schedule

        learning_rate = build_schedule(config.schedule.name, **config.schedule.params)
        if scale != 1.0:
            learning_rate = ScaledSchedule(learning_rate, scale)
    else:
        learning_rate = config.learning_rate * scale
    common = {
        "learning_rate": learning_rate,
        "clipnorm": config.clipnorm,
        "global_clipnorm": config.global_clipnorm,
    }
    if config.weight_decay is not None:
        common["weight_decay"] = config.weight_decay
    if config.name == "adam":
        return keras.optimizers.Adam(**common)
    if config.name == "adamw":
        return keras.optimizers.AdamW(**common)
    if config.name == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, nesterov=config.nesterov, **common)
    if config.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=config.momentum, **common)
    raise ValueError(f"training.optimizer.name: unknown optimizer {config.name!r}")
