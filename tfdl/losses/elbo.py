"""The VAE objective: the negative evidence lower bound, per example.

`vae_loss` is a function rather than a `keras.losses.Loss` because it needs
four tensors (the input, its reconstruction, and the posterior's mean and
log-variance), which do not fit the `(y_true, y_pred)` signature of
`compile(loss=...)`; a VAE calls it from its `train_step` (or `add_loss`)
and averages the result over the batch.
"""

from __future__ import annotations

import keras
from keras import ops
from numpy.typing import ArrayLike

from tfdl.losses.gaussian_kl import gaussian_kl_divergence

LIKELIHOODS = ("bernoulli", "gaussian")


@keras.saving.register_keras_serializable(package="tfdl")
def vae_loss(
    x: ArrayLike,
    reconstruction: ArrayLike,
    mean: ArrayLike,
    log_var: ArrayLike,
    likelihood: str = "bernoulli",
    beta: float = 1.0,
    from_logits: bool = False,
) -> ArrayLike:
    """Negative ELBO per example: reconstruction term + beta * KL(q(z|x) || N(0, I)).

    Reconstruction terms, summed over every non-batch axis of `x`:

    - "bernoulli": binary cross-entropy (`x` in [0, 1], e.g. pixel
      intensities); `reconstruction` holds probabilities, or logits when
      `from_logits=True` (numerically safer).
    - "gaussian": `0.5 * (x - reconstruction)**2`, the negative log-likelihood
      of a unit-variance Gaussian up to its constant `0.5 * log(2 pi)` per
      element.

    Args:
        x: the inputs, shape `(batch, ...)`.
        reconstruction: the decoder's output, same shape as `x`.
        mean: the encoder's posterior means, shape `(batch, *latent)`.
        log_var: the encoder's posterior log-variances, same shape as `mean`.
        likelihood: "bernoulli" or "gaussian". Default "bernoulli".
        beta: weight >= 0 of the KL term (beta-VAE); 1.0 is the ELBO.
        from_logits: for "bernoulli", whether `reconstruction` holds logits.

    Returns:
        A tensor of shape `(batch,)`; take its mean for the training loss.

    Example:
    >>> import numpy as np
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> loss = vae_loss(x, x, np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32"), "gaussian")
    >>> [float(v) for v in loss]
    [0.0, 0.0]
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got likelihood={likelihood!r}.")
    if beta < 0:
        raise ValueError(f"beta must be >= 0; got beta={beta}.")
    reconstruction = ops.convert_to_tensor(reconstruction)
    if not keras.backend.is_float_dtype(reconstruction.dtype):
        reconstruction = ops.cast(reconstruction, keras.config.floatx())
    x = ops.cast(x, reconstruction.dtype)
    if likelihood == "bernoulli":
        per_element = ops.binary_crossentropy(x, reconstruction, from_logits=from_logits)
    else:
        per_element = 0.5 * ops.square(x - reconstruction)
    data_axes = tuple(range(1, len(per_element.shape)))
    reconstruction_term = ops.sum(per_element, axis=data_axes) if data_axes else per_element
    kl = ops.cast(gaussian_kl_divergence(mean, log_var), reconstruction_term.dtype)
    return reconstruction_term + beta * kl
