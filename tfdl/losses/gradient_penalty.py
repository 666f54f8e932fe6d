"""The WGAN-GP gradient penalty (Gulrajani et al. 2017): keep the critic near 1-Lipschitz.

This is the one TensorFlow-specific loss: the gradient of the critic with
respect to its input is taken with `tf.GradientTape`, because Keras 3 has no
backend-neutral gradient op. Everything else uses `keras.ops` and
`keras.random`. Called inside an outer tape (the critic's training step),
the penalty is differentiable with respect to the critic's weights: the
inner tape's gradient is recorded by the outer one (a second derivative).
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf
from keras import ops
from numpy.typing import ArrayLike

# Added under the square root: the norm's derivative is infinite at a zero
# gradient, and a dead critic region would otherwise give NaN weight updates.
# It moves a unit norm by 5e-13, far below float32 resolution.
_NORM_EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="tfdl")
def gradient_penalty(
    critic: Callable,
    real: ArrayLike,
    fake: ArrayLike,
    seed: int | keras.random.SeedGenerator | None = None,
    target_norm: float = 1.0,
) -> ArrayLike:
    """`mean((||grad critic(x_hat)||_2 - target_norm)**2)` on random interpolates.

    `x_hat = eps * real + (1 - eps) * fake` with one `eps ~ U(0, 1)` per
    example; the norm of each example's gradient is taken over all its
    non-batch axes. The critic must score each example independently (no
    BatchNormalization: the paper uses layer normalisation), since the
    gradient of the summed scores is read as per-example gradients.

    Args:
        critic: a callable (e.g. a `keras.Model`) mapping a batch to scores
            of shape `(batch,)` or `(batch, 1)`.
        real: a batch of real samples.
        fake: a batch of generated samples, same shape as `real`.
        seed: randomness of `eps`: a `keras.random.SeedGenerator` (use one
            owned by the model inside a compiled train step, so each step
            draws new values), an int (the same draw each call), or None
            (Keras's global generator; only outside compiled functions).
        target_norm: the gradient norm the penalty pulls towards, > 0.
            Default 1.0 (the paper's 1-Lipschitz target).

    Returns:
        A scalar tensor.

    Example:
    >>> import numpy as np
    >>> critic = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    >>> real, fake = np.ones((4, 3), "float32"), np.zeros((4, 3), "float32")
    >>> round(float(gradient_penalty(critic, real, fake, seed=0)), 4)  # (sqrt(3) - 1) ** 2
    0.5359
    """
    if not target_norm > 0:
        raise ValueError(f"target_norm must be > 0; got target_norm={target_norm}.")
    real = ops.convert_to_tensor(real)
    fake = ops.cast(fake, real.dtype)
    if tuple(real.shape) != tuple(fake.shape) and None not in real.shape and None not in fake.shape:
        raise ValueError(f"real and fake must have the same shape; got {tuple(real.shape)} and {tuple(fake.shape)}.")
    batch = ops.shape(real)[0]
    eps_shape = (batch,) + (1,) * (len(real.shape) - 1)
    eps = keras.random.uniform(eps_shape, dtype=real.dtype, seed=seed)
    interpolates = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        # A Keras critic scores in training mode, as in the rest of its step.
        scores = critic(interpolates, training=True) if isinstance(critic, keras.layers.Layer) else critic(interpolates)
    grads = tape.gradient(scores, interpolates)
    sample_axes = tuple(range(1, len(grads.shape)))
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=sample_axes) + _NORM_EPSILON)
    return ops.mean(ops.square(norms - target_norm))
