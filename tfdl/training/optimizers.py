"""Keras optimizers from an `OptimizerConfig`."""

from __future__ import annotations

from tfdl.training.config import OptimizerConfig


def make_optimizer(config: OptimizerConfig):
    import keras

    if config.schedule is not None:
        from tfdl.schedules import build_schedule

        learning_rate = build_schedule(config.schedule.name, **config.schedule.params)
    else:
        learning_rate = config.learning_rate
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
