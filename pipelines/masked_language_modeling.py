"""BERT's masking of token ids for masked language modelling, as a tf.data transform.

Of the real (non-special) tokens, `rate` (15%) are selected for prediction;
of those, 80% become [MASK], 10% a random token, 10% stay as they are, so the
model cannot learn that only [MASK] positions matter. The mask is drawn anew
each time an example passes (dynamic masking), from a seeded stateless RNG.
Labels are 0 (padding, ignored by `MaskedSparseCategoricalCrossentropy`)
everywhere but at the selected positions, so the loss is the mean over the
tokens the model must predict.
"""

from __future__ import annotations

import tensorflow as tf


def mask_tokens(
    ids: tf.Tensor,
    seed: tf.Tensor,
    *,
    mask_id: int,
    vocabulary_size: int,
    first_word_id: int,
    rate: float = 0.15,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mask a batch of token ids (batch, length).

    Args:
        ids: int32 token ids; ids below `first_word_id` (padding, [UNK],
            [CLS], [MASK]) are never selected, except [UNK], which is a word.
        seed: shape (2,) int seed of the stateless RNG (vary it per batch).
        mask_id: the [MASK] token's id.
        vocabulary_size: random replacements are drawn from [first_word_id, vocabulary_size).
        first_word_id: the first id of an ordinary word.
        rate: the fraction of real tokens selected for prediction.

    Returns:
        (masked ids, labels): labels hold the original id at the selected
        positions and 0 elsewhere.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    ids = tf.cast(ids, tf.int32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    eligible = (ids >= first_word_id) | (ids == 1)
    selected = eligible & (tf.random.stateless_uniform(tf.shape(ids), seeds[0]) < rate)
    action = tf.random.stateless_uniform(tf.shape(ids), seeds[1])
    random_ids = tf.random.stateless_uniform(
        tf.shape(ids), seeds[2], minval=first_word_id, maxval=vocabulary_size, dtype=tf.int32
    )
    masked = tf.where(selected & (action < 0.8), mask_id, ids)
    masked = tf.where(selected & (action >= 0.8) & (action < 0.9), random_ids, masked)
    return masked, tf.where(selected, ids, 0)


def masked_lm_dataset(
    ids,
    *,
    batch_size: int,
    mask_id: int,
    vocabulary_size: int,
    first_word_id: int,
    rate: float = 0.15,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (masked ids, labels) for pretraining, with a fresh mask every epoch.

    Each batch gets its own stateless seed (the run seed, the epoch, the batch
    index), so the masks differ between epochs yet the whole run repeats
    exactly for the same seed. The dataset repeats forever: give `fit` a
    `steps_per_epoch` (one pass is `ceil(len(ids) / batch_size)` steps).
    """
    ids = tf.data.Dataset.from_tensor_slices(ids)
    epochs = tf.data.Dataset.counter()

    def one_epoch(epoch):
        batches = ids.shuffle(10_000, seed=seed).batch(batch_size).enumerate()
        return batches.map(
            lambda i, batch: mask_tokens(
                batch, tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch, i]),
                mask_id=mask_id, vocabulary_size=vocabulary_size, first_word_id=first_word_id, rate=rate,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)
