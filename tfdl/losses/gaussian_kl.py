"""KL divergence of a diagonal Gaussian from the standard normal: the VAE's prior term."""

from __future__ import annotations

import keras
from keras import ops
from numpy.typing import ArrayLike


@keras.saving.register_keras_serializable(package="tfdl")
def gaussian_kl_divergence(mean: ArrayLike, log_var: ArrayLike) -> ArrayLike:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, in nats.

    Closed form for a diagonal Gaussian against the standard normal:
    `-0.5 * sum(1 + log_var - mean**2 - exp(log_var))`, summed over every
    non-batch axis. Written with `keras.ops`, so it runs in any backend and
    inside a compiled train step.

    Args:
        mean: the posterior means, shape `(batch, *latent)`.
        log_var: the posterior log-variances, same shape as `mean`.

    Returns:
        A tensor of shape `(batch,)`.

    Example:
    >>> import numpy as np
    >>> kl = gaussian_kl_divergence(np.zeros((2, 3)), np.zeros((2, 3)))
    >>> [float(v) for v in kl]
    [0.0, 0.0]
    """
    mean = ops.convert_to_tensor(mean)
    if not keras.backend.is_float_dtype(mean.dtype):
        mean = ops.cast(mean, keras.config.floatx())
    log_var = ops.cast(log_var, mean.dtype)
    if tuple(mean.shape) != tuple(log_var.shape):
        raise ValueError(f"mean and log_var must have the same shape; got {tuple(mean.shape)} and {tuple(log_var.shape)}.")
    kl = -0.5 * (1.0 + log_var - ops.square(mean) - ops.exp(log_var))
    latent_axes = tuple(range(1, len(kl.shape)))
    return ops.sum(kl, axis=latent_axes) if latent_axes else kl
