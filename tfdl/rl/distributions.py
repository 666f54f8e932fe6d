"""Log-probabilities, entropies, samples and modes of the two policy distributions, in TensorFlow.

Categorical (from logits) for discrete actions, diagonal Gaussian (mean and
log std) for continuous ones. Sampling takes a `tf.random.Generator`, whose
state a checkpoint saves, so a resumed run draws the numbers it would have
drawn; categorical sampling uses the Gumbel-max trick (argmax of logits plus
Gumbel noise is a draw from softmax(logits)).
"""

from __future__ import annotations

import math

import tensorflow as tf

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def categorical_log_prob(logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    """log pi(a | s) of a categorical policy: log softmax(logits)[action], row by row.

    Args:
        logits: unnormalized log-probabilities, (batch, num_actions).
        actions: integer actions, (batch,).

    Returns:
        (batch,) log-probabilities of the actions.
    """
    log_probs = tf.nn.log_softmax(logits)
    return tf.gather(log_probs, tf.cast(actions, tf.int32), axis=1, batch_dims=1)


def categorical_entropy(logits: tf.Tensor) -> tf.Tensor:
    """-sum p log p per row."""
    log_probs = tf.nn.log_softmax(logits)
    return -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)


def categorical_sample(logits: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
    """One int64 action per row drawn from softmax(logits)."""
    uniform = generator.uniform(tf.shape(logits), minval=1e-12, maxval=1.0)
    return tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), axis=-1)


def gaussian_log_prob(mean: tf.Tensor, log_std: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    """Log density of a diagonal Gaussian, summed over action dimensions."""
    z = (actions - mean) * tf.exp(-log_std)
    return tf.reduce_sum(-0.5 * tf.square(z) - log_std - _HALF_LOG_2PI, axis=-1)


def gaussian_entropy(log_std: tf.Tensor) -> tf.Tensor:
    """Entropy of a diagonal Gaussian, summed over action dimensions."""
    return tf.reduce_sum(log_std + 0.5 + _HALF_LOG_2PI, axis=-1)


def gaussian_sample(mean: tf.Tensor, log_std: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
    """mean + std * N(0, 1) per element."""
    return mean + tf.exp(log_std) * generator.normal(tf.shape(mean))
