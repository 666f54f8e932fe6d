"""Wasserstein GAN losses (Arjovsky et al. 2017; Gulrajani et al. 2017 for WGAN-GP).

They are plain functions of critic scores, not `keras.losses.Loss` classes:
a WGAN-GP `train_step` already holds the critic's scores on the real and
the generated batch and adds `gradient_penalty` to the critic's loss, so

    d_loss = critic_loss(critic(real), critic(fake)) + lam * gradient_penalty(critic, real, fake)
    g_loss = generator_loss(critic(generator(noise)))

reads as the paper does. A `Loss` class would force the two batches into a
`(y_true, y_pred)` pair with made-up +1/-1 labels, and `compile(loss=...)`
cannot drive a GAN's two optimizers anyway.
"""

from __future__ import annotations

import keras
from keras import ops
from numpy.typing import ArrayLike


@keras.saving.register_keras_serializable(package="tfdl")
def critic_loss(real_scores: ArrayLike, fake_scores: ArrayLike) -> ArrayLike:
    """The critic's loss: `mean(fake_scores) - mean(real_scores)`.

    Minimising it widens the score gap between real and generated samples,
    which estimates the Wasserstein-1 distance (given a 1-Lipschitz critic,
    which the gradient penalty encourages).

    Args:
        real_scores: critic outputs on real samples, shape `(batch,)` or
            `(batch, 1)`.
        fake_scores: critic outputs on generated samples; the batch size may
            differ from `real_scores`'.

    Returns:
        A scalar tensor.

    Example:
    >>> float(critic_loss([1.0, 3.0], [0.0, -2.0]))
    -3.0
    """
    return ops.mean(fake_scores) - ops.mean(real_scores)


@keras.saving.register_keras_serializable(package="tfdl")
def generator_loss(fake_scores: ArrayLike) -> ArrayLike:
    """The generator's loss: `-mean(fake_scores)`; it raises the critic's score of its samples.

    Args:
        fake_scores: critic outputs on generated samples, shape `(batch,)` or
            `(batch, 1)`.

    Returns:
        A scalar tensor.

    Example:
    >>> float(generator_loss([1.0, 3.0]))
    -2.0
    """
    return -ops.mean(fake_scores)
