"""The word2vec feed: skip-gram pairs or CBOW contexts, with negatives, as a tf.data pipeline.

A corpus arrives as one flat array of word ids and the sentence of each id
(`tfdl.pipelines.word_vocabulary.encode_corpus`). Sentences are grouped into
chunks of about `chunk_tokens` words and each chunk is turned into examples
in one vectorized map:

1. frequent words are dropped with `subsampling.keep_probabilities` (before
   windows are formed, as in word2vec.c, so windows reach past them);
2. each remaining word gets a window radius drawn uniformly from 1..window
   (`shrink_window`, word2vec's "reduced window", which weights near words
   more) or exactly `window`; windows never cross a sentence boundary;
3. skip-gram: one example per (word, context word) pair; CBOW: one example
   per word, its context words as input;
4. `negatives` noise words per example from `negative_sampling`.

Every example is `{"inputs": int32 [C], "inputs_mask": float32 [C],
"positive": int32 [], "negatives": int32 [K]}`: the model averages the input
embeddings of `inputs` where the mask is 1 (C = 1 for skip-gram, 2 x window
for CBOW) and scores `positive` against `negatives`. All randomness is
stateless and seeded; a training feed draws new subsamples, windows and
negatives on each pass, a validation feed the same ones every time.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Architecture = Literal["skipgram", "cbow"]


def context_windows(ids, sentence, window: int, radius):
    """Each word's context ids and which of them are real, in a fixed [-window..window] layout.

    Args:
        ids: int32 [n] word ids (after subsampling).
        sentence: int32 [n] sentence number of each id.
        window: the largest radius.
        radius: int32 [n], each word's own radius (<= window).

    Returns:
        `(context, valid)`: int32 and bool [n, 2 x window]; columns are the
        offsets -window..-1, 1..window.
    """
    import tensorflow as tf

    n = tf.size(ids)
    offsets = tf.concat([tf.range(-window, 0), tf.range(1, window + 1)], axis=0)
    positions = tf.range(n)[:, None] + offsets[None, :]
    inside = (positions >= 0) & (positions < n)
    clipped = tf.clip_by_value(positions, 0, tf.maximum(n - 1, 0))
    same_sentence = tf.gather(sentence, clipped) == sentence[:, None]
    near = tf.abs(offsets)[None, :] <= radius[:, None]
    return tf.gather(ids, clipped), inside & same_sentence & near


def _examples(ids, sentence, seeds, *, architecture: Architecture, window: int, negatives: int, keep,
              noise, shrink_window: bool, shuffle: bool):
    import tensorflow as tf

    from tfdl.pipelines.negative_sampling import draw_negatives
    from tfdl.pipelines.subsampling import subsample_mask

    seeds = tf.reshape(tf.cast(seeds, tf.int64), [4, 2])
    kept = subsample_mask(ids, keep, seeds[0])
    ids, sentence = tf.boolean_mask(ids, kept), tf.boolean_mask(sentence, kept)
    if shrink_window:
        radius = tf.random.stateless_uniform(tf.shape(ids), seeds[1], minval=1, maxval=window + 1, dtype=tf.int32)
    else:
        radius = tf.fill(tf.shape(ids), window)
    context, valid = context_windows(ids, sentence, window, radius)
    if architecture == "skipgram":
        centre = tf.broadcast_to(ids[:, None], tf.shape(context))
        inputs = tf.boolean_mask(centre, valid)[:, None]
        positive = tf.boolean_mask(context, valid)
        mask = tf.ones_like(inputs, tf.float32)
    else:
        has_context = tf.reduce_any(valid, axis=1)
        inputs = tf.boolean_mask(tf.where(valid, context, 0), has_context)  # padding slots hold id 0
        mask = tf.cast(tf.boolean_mask(valid, has_context), tf.float32)
        positive = tf.boolean_mask(ids, has_context)
    if shuffle:  # a chunk's examples come out in text order otherwise
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(positive)[0]), seeds[2])
        inputs, mask, positive = tf.gather(inputs, order), tf.gather(mask, order), tf.gather(positive, order)
    drawn = draw_negatives(*noise, tf.stack([tf.shape(positive)[0], negatives]), seeds[3])
    return {"inputs": inputs, "inputs_mask": mask, "positive": positive, "negatives": drawn}


def _chunk_splits(sentence: np.ndarray, chunk_tokens: int) -> np.ndarray:
    """Row splits cutting the flat corpus into chunks of about `chunk_tokens` ids, at sentence starts."""
    starts = np.flatnonzero(np.diff(sentence, prepend=-1))
    splits, last = [0], 0
    for start in starts[1:]:
        if start - last >= chunk_tokens:
            splits.append(int(start))
            last = start
    splits.append(len(sentence))
    return np.asarray(splits, dtype=np.int64)


def word2vec_dataset(
    ids: np.ndarray,
    sentence: np.ndarray,
    counts: np.ndarray,
    *,
    architecture: Architecture = "skipgram",
    window: int = 5,
    negatives: int = 5,
    sample: float = 1e-3,
    negative_power: float = 0.75,
    shrink_window: bool = True,
    batch_size: int = 1024,
    seed: int = 0,
    training: bool = True,
    steps: int | None = None,
    chunk_tokens: int = 8192,
):
    """The word2vec feed over an encoded corpus (see the module docstring for each step).

    Args:
        ids, sentence: from `encode_corpus`: word ids and sentence numbers.
        counts: training count of each vocabulary word (subsampling and noise use them).
        architecture: `skipgram` or `cbow`.
        window: the largest context radius, >= 1.
        negatives: noise words per example, >= 1.
        sample: subsampling threshold t; 0 keeps every word.
        negative_power: the noise distribution is counts ** power.
        shrink_window: draw each word's radius from 1..window (word2vec's default).
        batch_size: examples per batch.
        seed: seeds every random draw.
        training: shuffle and draw anew on every pass; false gives the same
            batches each pass (validation).
        steps: batches per pass; the feed then repeats the corpus as needed
            and stops after `steps` batches (a known epoch length). None: one
            pass over the corpus.
        chunk_tokens: words per chunk of the vectorized map.

    Returns:
        A `tf.data.Dataset` of batched example dicts.

    Raises:
        ValueError: a setting out of range, an unknown architecture, or ids
            and sentence of different lengths.
    """
    import tensorflow as tf

    from tfdl.pipelines.negative_sampling import alias_table, negative_distribution
    from tfdl.pipelines.subsampling import keep_probabilities

    if architecture not in ("skipgram", "cbow"):
        raise ValueError(f"architecture must be 'skipgram' or 'cbow', got {architecture!r}")
    for name, value in (("window", window), ("negatives", negatives), ("batch_size", batch_size),
                        ("chunk_tokens", chunk_tokens)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if len(ids) != len(sentence):
        raise ValueError(f"ids ({len(ids)}) and sentence ({len(sentence)}) must have one entry per word")
    if len(ids) == 0:
        raise ValueError("the corpus is empty after encoding; check min_count and the text")
    keep = tf.constant(keep_probabilities(counts, sample), tf.float32)
    noise = tuple(tf.constant(t) for t in alias_table(negative_distribution(counts, negative_power)))
    splits = _chunk_splits(np.asarray(sentence), chunk_tokens)
    chunks = tf.data.Dataset.from_tensor_slices((
        tf.RaggedTensor.from_row_splits(np.asarray(ids, np.int32), splits),
        tf.RaggedTensor.from_row_splits(np.asarray(sentence, np.int32), splits),
    ))
    if training:
        chunks = chunks.shuffle(len(splits), seed=seed, reshuffle_each_iteration=True)
    if steps is not None:
        chunks = chunks.repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=training).batch(8)

    def make(chunk, chunk_seeds):
        ids_, sentence_ = chunk
        return _examples(ids_, sentence_, chunk_seeds, architecture=architecture, window=window,
                         negatives=negatives, keep=keep, noise=noise, shrink_window=shrink_window,
                         shuffle=training)

    examples = tf.data.Dataset.zip(chunks, seeds).map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = examples.rebatch(batch_size, drop_remainder=False)
    if steps is not None:
        # The chunks repeat forever; a known length lets the trainer plan its epochs without a counting pass.
        batches = batches.take(steps).apply(tf.data.experimental.assert_cardinality(steps))
    return batches.prefetch(tf.data.AUTOTUNE)


def count_examples(dataset) -> int:
    """Examples in one pass of a `word2vec_dataset` (batches may be ragged at chunk ends)."""
    import tensorflow as tf

    return int(dataset.reduce(tf.constant(0, tf.int64),
                              lambda total, batch: total + tf.cast(tf.shape(batch["positive"])[0], tf.int64)))
