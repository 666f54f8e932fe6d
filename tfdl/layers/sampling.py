"""Sampling: the VAE reparameterization trick, z = mean + exp(log_var / 2) * eps.

Draws a latent sample from N(mean, exp(log_var)) in a way gradients flow
through to `mean` and `log_var`, with the noise drawn by `keras.random` from a
seed generator the layer owns (so training can be made reproducible and its
state checkpointed).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from tfdl.layers.seed_state import SeedState


def _check_same_shape(mean_shape: Sequence, log_var_shape: Sequence) -> None:
    """Raise unless the two static shapes can be equal (None matches anything)."""
    mean_shape, log_var_shape = tuple(mean_shape), tuple(log_var_shape)
    same = len(mean_shape) == len(log_var_shape) and all(
        a is None or b is None or a == b for a, b in zip(mean_shape, log_var_shape)
    )
    if not same:
        raise ValueError(
            f"Sampling needs `mean` and `log_var` of the same shape; got mean "
            f"shape {mean_shape} and log_var shape {log_var_shape}. Pass "
            "`[mean, log_var]` from two heads of equal size."
        )


@keras.saving.register_keras_serializable(package="tfdl")
class Sampling(SeedState, keras.layers.Layer):
    """Draws z ~ N(mean, exp(log_var)) by reparameterization.

    Computes `z = mean + exp(0.5 * log_var) * eps` with `eps ~ N(0, I)` of the
    shape of `mean`, drawn by `keras.random.normal` from a
    `keras.random.SeedGenerator` owned by the layer. Each call draws fresh
    noise (the generator's state advances), and gradients flow to `mean` and
    `log_var`, which is what lets a variational autoencoder train its encoder.

    Export: the random path exports to a SavedModel (the seed generator's
    state is a variable in it, so each serving call draws new noise). It does
    not convert to TFLite with the builtin op set: the converter rejects
    TensorFlow's `StatelessRandomNormalV2` op. Set `mean_at_inference=True`
    to serve deterministically; that model converts to TFLite.

    Args:
        seed: int or None. Seed of the layer's `SeedGenerator`: the same seed
            gives the same sequence of draws. Defaults to `None` (a random
            seed).
        mean_at_inference: bool. When True, a call with `training=False`
            (inference, `predict`, serving) returns `mean` unchanged instead
            of a sample. Defaults to `False` (always sample).
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list `[mean, log_var]` of two float tensors of equal shape.
        training: bool. Only consulted when `mean_at_inference` is True.

    Example:

    >>> import numpy as np
    >>> layer = Sampling(seed=0)
    >>> mean, log_var = np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32")
    >>> tuple(layer([mean, log_var]).shape)
    (2, 3)
    """

    def __init__(self, seed: int | None = None, mean_at_inference: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.mean_at_inference = mean_at_inference
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        mean_shape, log_var_shape = input_shape
        _check_same_shape(mean_shape, log_var_shape)

    def call(self, inputs, training: bool = False):
        mean, log_var = inputs
        _check_same_shape(mean.shape, log_var.shape)
        if self.mean_at_inference and not training:
            return mean
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        mean_shape, log_var_shape = input_shape
        _check_same_shape(mean_shape, log_var_shape)
        return tuple(mean_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"seed": self.seed, "mean_at_inference": self.mean_at_inference})
        return config

