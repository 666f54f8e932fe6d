"""Arrays to a `tf.data.Dataset` that keeps the accelerator fed.

Order matters: preprocessing runs once before `cache`, shuffling after it
(so each epoch sees a new order without redoing work), then batching and
`prefetch` so the next batch is ready while the model works on this one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf


def make_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    preprocess: Callable | None = None,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Build a batched dataset of `(features, labels)` pairs.

    Args:
        features, labels: arrays with one row per example.
        batch_size: the global batch size.
        preprocess: applied to the features of each batch of examples before
            caching, e.g. a fitted `keras.layers.Normalization`.
        shuffle_buffer: shuffle with this buffer (0: keep the order, as for
            evaluation).
        seed: seeds the shuffle, so a run is reproducible.
        cache: keep the preprocessed examples in memory after one pass.
    """
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if preprocess is not None:
        # Preprocess whole chunks: one vectorized call instead of one per row.
        ds = (
            ds.batch(1024)
            .map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            # unbatch forgets the length; Keras needs it for progress bars and
            # to know where an epoch ends.
            .apply(tf.data.experimental.assert_cardinality(len(features)))
        )
    if cache:
        ds = ds.cache()
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
