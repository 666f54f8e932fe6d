"""Tiny models for serving tests, whose answers tell which version served them."""

from __future__ import annotations

import keras


def constant_model(value: float) -> keras.Model:
    """A model that answers `value` whatever its input, so an answer tells which version gave it."""
    inputs = keras.Input((2,), name="x")
    outputs = keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value), name="y"
    )(inputs)
    return keras.Model(inputs, outputs)
