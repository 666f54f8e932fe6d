"""The data stage end to end: a `DataConfig` in, train/validation/test datasets out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfdl.pipelines.config import DataConfig
from tfdl.pipelines.dataset import make_dataset
from tfdl.pipelines.normalization import fit_normalization
from tfdl.pipelines.sklearn_datasets import ArrayData, load_sklearn_dataset
from tfdl.pipelines.splits import SplitIndices, split_indices


@dataclass
class Pipeline:
    """What the data stage hands to training, evaluation and export.

    Attributes:
        train, validation, test: batched datasets of normalized features.
        data: all examples, raw, as loaded.
        split: which examples went to which split.
        normalizer: the Normalization layer fitted on the training split (None
            when normalization is off); export puts it in the served graph.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    data: ArrayData
    split: SplitIndices
    normalizer: object | None

    @property
    def input_name(self) -> str:
        return self.data.input_name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.data.features.shape[1:])

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.data.class_names

    def raw(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw (unnormalized) features and labels of one split."""
        indices = getattr(self.split, split)
        return self.data.features[indices], self.data.labels[indices]


def load_source(config: DataConfig) -> ArrayData:
    if config.source == "sklearn":
        return load_sklearn_dataset(config.name)
    raise ValueError(f"unknown data source {config.source!r}")


def build_pipeline(config: DataConfig, seed: int, global_batch_size: int | None = None) -> Pipeline:
    """Load, split, fit normalization on the training split, and build the feeds.

    `global_batch_size` overrides `config.batch_size` (the trainer passes the
    per-replica batch times the number of replicas).
    """
    data = load_source(config)
    split = split_indices(
        data.labels,
        validation=config.split.validation,
        test=config.split.test,
        seed=seed,
        stratify=config.split.stratify,
    )
    normalizer = fit_normalization(data.features[split.train], config.normalization)
    batch_size = global_batch_size or config.batch_size

    def feed(indices: np.ndarray, shuffle: bool) -> tf.data.Dataset:
        return make_dataset(
            data.features[indices],
            data.labels[indices],
            batch_size=batch_size,
            preprocess=normalizer,
            shuffle_buffer=config.shuffle_buffer if shuffle else 0,
            seed=seed,
            cache=config.cache,
        )

    return Pipeline(
        train=feed(split.train, shuffle=True),
        validation=feed(split.validation, shuffle=False),
        test=feed(split.test, shuffle=False),
        data=data,
        split=split,
        normalizer=normalizer,
    )
