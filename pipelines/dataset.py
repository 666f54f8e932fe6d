"""Examples to a `tf.data.Dataset` that keeps the accelerator fed.

The stages, in the order that makes each one cheap:

    slices -> load (per example, parallel) -> preprocess (vectorized, in chunks)
           -> cache -> resample -> shuffle -> batch -> augment -> postprocess
           -> prefetch

Loading (decoding an image file) and preprocessing (normalization, text
vectorization) run once, before the cache, so later epochs replay their
results; everything random (resampling, shuffling, augmentation) runs after
it, so each epoch sees a new order and new augmentations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from tfdl.pipelines.options import feed_options

# Examples per vectorized preprocessing call: large enough to amortize the
# per-call overhead, small enough to keep memory flat.
_PREPROCESS_CHUNK = 1024


def make_dataset(features: np.ndarray, labels: np.ndarray, *, batch_size: int, **stages) -> tf.data.Dataset:
    """A batched feed of `(features, labels)` held in memory; `stages` as for `make_feed`."""
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    return make_feed(ds, count=len(labels), batch_size=batch_size, **stages)


def make_feed(
    ds: tf.data.Dataset,
    *,
    count: int,
    batch_size: int,
    load: Callable | None = None,
    preprocess: Callable | None = None,
    cache: str | bool = "memory",
    cache_file: str | Path | None = None,
    resample: Callable[[tf.data.Dataset], tf.data.Dataset] | None = None,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    batch: Callable[[tf.data.Dataset], tf.data.Dataset] | None = None,
    augment: Callable[[tf.data.Dataset], tf.data.Dataset] | None = None,
    postprocess: Callable | None = None,
    deterministic: bool = True,
    shard_by: str = "data",
) -> tf.data.Dataset:
    """Build a batched feed from a dataset of `count` unbatched `(features, label)` pairs.

    Args:
        ds: the examples; features may be file paths or texts that `load` /
            `preprocess` turn into tensors.
        count: how many examples `ds` holds (Keras needs an epoch's length).
        batch_size: the global batch size.
        load: maps one example's features to a tensor (e.g. reads and decodes
            an image file); runs in parallel.
        preprocess: maps a chunk of examples' features at once, e.g. a fitted
            `keras.layers.Normalization` or `TextVectorization`.
        cache: `memory`, `disk` (into `cache_file`) or `none`; True/False mean
            memory/none.
        resample: draws the cached examples to a target class distribution
            (training only); it must keep the dataset's cardinality known.
        shuffle_buffer: shuffle with this buffer (0: keep the order, as for
            evaluation).
        seed: seeds the shuffle, so a run is reproducible.
        batch: replaces plain batching (e.g. bucketing by sequence length).
        augment: transforms the batched dataset (training only): random image
            augmentation, see `tfdl.pipelines.augmentation.augment`.
        postprocess: maps whole batches of features after `augment`, every
            feed (normalizing augmented images).
        deterministic: keep a fixed element order through parallel stages.
        shard_by: the auto-shard policy under a multi-worker strategy
            (`data` for examples in memory, `file` for file sources).
    """
    if load is not None:
        ds = ds.map(lambda x, y: (load(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    if preprocess is not None:
        # Preprocess whole chunks: one vectorized call instead of one per row.
        ds = (
            ds.batch(_PREPROCESS_CHUNK)
            .map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
        )
    # unbatch forgets the length; Keras needs it for progress bars and to know
    # where an epoch ends.
    ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    ds = _cache(ds, cache, cache_file)
    if resample is not None:
        ds = resample(ds)
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = batch(ds) if batch is not None else ds.batch(batch_size)
    if augment is not None:
        ds = augment(ds)
    if postprocess is not None:
        ds = ds.map(lambda x, y: (postprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(feed_options(deterministic, shard_by=shard_by))


def _cache(ds: tf.data.Dataset, cache: str | bool, cache_file: str | Path | None) -> tf.data.Dataset:
    mode = {True: "memory", False: "none"}.get(cache, cache)
    if mode == "memory":
        return ds.cache()
    if mode == "disk":
        if cache_file is None:
            raise ValueError("cache='disk' needs cache_file, the path prefix of the cache files")
        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        return ds.cache(str(cache_file))
    if mode == "none":
        return ds
    raise ValueError(f"unknown cache {cache!r}; use memory, disk or none")
