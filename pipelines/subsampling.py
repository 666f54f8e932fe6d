"""Subsampling of frequent words (Mikolov et al. 2013), as word2vec and gensim do it.

Words like "the" occur in almost every window and teach little; each
occurrence of a word with corpus frequency f (its share of all words) is
kept with probability

    code:  p = (sqrt(f / t) + 1) * t / f      (word2vec.c and gensim)
    paper: p = sqrt(t / f)                    ("Distributed Representations...", eq. 5)

capped at 1, where t is the `sample` threshold (1e-3 in gensim, 1e-5 in the
paper). Words rarer than about t are always kept. Dropping happens before
windows are formed, so it also widens the effective window around rare words.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Formula = Literal["code", "paper"]


def keep_probabilities(counts: np.ndarray, sample: float, formula: Formula = "code") -> np.ndarray:
    """The probability that one occurrence of each word is kept.

    Args:
        counts: occurrences of each word in the training corpus.
        sample: the threshold t; 0 turns subsampling off (every word kept).
        formula: `code` (word2vec.c, gensim) or `paper` (see the module docstring).

    Returns:
        float64 array like `counts`, each value in (0, 1].

    Raises:
        ValueError: a negative `sample`, an unknown `formula`, or a count below 1.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample < 0:
        raise ValueError(f"sample must be >= 0 (0 turns subsampling off), got {sample}")
    if formula not in ("code", "paper"):
        raise ValueError(f"formula must be 'code' or 'paper', got {formula!r}")
    if counts.size and counts.min() < 1:
        raise ValueError("every vocabulary word must occur at least once; drop words with count 0")
    if sample == 0:
        return np.ones_like(counts)
    frequency = counts / counts.sum()
    if formula == "paper":
        keep = np.sqrt(sample / frequency)
    else:
        keep = (np.sqrt(frequency / sample) + 1.0) * sample / frequency
    return np.minimum(keep, 1.0)


def subsample_mask(ids, keep, seed):
    """A boolean mask over `ids` (int32 [n]) keeping each with probability `keep[id]`.

    Args:
        ids: token ids, a tf int32 vector.
        keep: `keep_probabilities` as a float32 tensor.
        seed: a stateless seed, int tensor of shape [2].

    Returns:
        A tf.bool vector like `ids`.
    """
    import tensorflow as tf

    draws = tf.random.stateless_uniform(tf.shape(ids), seed=seed, dtype=tf.float32)
    return draws < tf.gather(keep, ids)
