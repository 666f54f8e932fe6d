"""Negative samples for word2vec: words drawn by their unigram frequency raised to 3/4.

Negative sampling replaces the softmax over the vocabulary by a few binary
decisions: the true context word against `k` words drawn from a noise
distribution. Mikolov et al. found counts raised to 0.75 better than the
plain unigram (which over-draws "the") or uniform (which over-draws rare
words); gensim's `ns_exponent` is the same power.
"""

from __future__ import annotations

import numpy as np


def negative_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """P(word) proportional to count ** power.

    Args:
        counts: occurrences of each word (all >= 1).
        power: 0.75 in word2vec; 1 is the unigram, 0 uniform.

    Returns:
        float64 probabilities summing to 1.

    Raises:
        ValueError: empty counts, a count below 1, or a negative power.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size == 0 or counts.min() < 1:
        raise ValueError("negative sampling needs at least one word and every count >= 1")
    if power < 0:
        raise ValueError(f"power must be >= 0, got {power}")
    weights = counts**power
    return weights / weights.sum()


def draw_negatives(log_probabilities, shape, seed):
    """Word ids drawn independently from a distribution, as a tensor of `shape`.

    Args:
        log_probabilities: float32 tensor [vocabulary] (log of `negative_distribution`).
        shape: the [pairs, negatives] shape of the result (a tf int32 vector).
        seed: a stateless seed, int tensor of shape [2].

    Returns:
        int32 ids of shape `shape`.
    """
    import tensorflow as tf

    # One row of logits and many samples: the op builds the CDF once and
    # binary-searches it per draw, so the cost is O(V + n log V).
    draws = tf.random.stateless_categorical(log_probabilities[None, :], tf.reduce_prod(shape), seed=seed,
                                            dtype=tf.int32)
    return tf.reshape(draws, shape)
