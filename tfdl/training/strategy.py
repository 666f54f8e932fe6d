"""One factory for the tf.distribute strategy a config asks for."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def make_strategy(name: str = "auto", devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """Create the strategy named by the training config.

    `auto` picks MirroredStrategy when several GPUs are visible and the
    default strategy otherwise. Models, optimizers and metrics must be created
    inside `strategy.scope()`.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        device = devices[0] if devices else ("/gpu:0" if gpus else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices) if devices else None)
    raise ValueError(
        f"training.strategy: unknown strategy {name!r}; use auto, default, one_device or mirrored"
    )


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """A short human description, e.g. `MirroredStrategy (2 replicas)`."""
    name = type(strategy).__name__.lstrip("_")
    if name == "DefaultDistributionStrategy":
        name = "the default strategy"
    replicas = strategy.num_replicas_in_sync
    return f"{name} ({replicas} replica{'s' if replicas != 1 else ''})"
