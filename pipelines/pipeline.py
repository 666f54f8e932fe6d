"""The data stage end to end: a `DataConfig` in, train/validation/test feeds out.

    source -> checks -> (missing values) -> split -> fit transforms on train
           -> feeds (tf.data) + the preprocessing the served model carries

Every statistic (normalization, imputation, vocabulary, class weights) is
fitted on the training split only, so nothing of the validation or test
examples leaks into training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.config import IN_MEMORY_SOURCES, DataConfig
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.dataset import make_dataset
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.feature_transforms import FeatureTransforms, fit_feature_transforms
from tfdl.pipelines.splits import SplitIndices, split_indices

# Training examples kept, raw, for int8 calibration: TFLite's converter
# needs a few hundred to find stable activation ranges.
CALIBRATION_EXAMPLES = 500


@dataclass
class Pipeline:
    """What the data stage hands to training, evaluation and export.

    Attributes:
        train, validation, test: batched feeds of model-ready `(inputs, labels)`.
        input_name, input_shape, input_dtype: the served model's input (raw
            pixels, raw rows, raw strings), before `preprocessing`.
        class_names: the name of each class index.
        preprocessing: the fitted layer(s) that turn a raw input into what the
            model was trained on (imputation, normalization, vectorization);
            export puts them in front of the model. None when there are none.
        test_inputs, test_labels: the test split as served (raw) inputs and labels.
        calibration_inputs: raw inputs drawn from the training split (at most
            `CALIBRATION_EXAMPLES`), to calibrate int8 quantization.
        sizes: examples per split.
        report: what was dropped, filled or skipped on the way.
        class_weight: per-class loss weights for `fit`, when asked for.
        model_params: what the data decides of the model (vocabulary size...).
        split, data: the split indices and the examples of in-memory sources.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    input_name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    class_names: tuple[str, ...]
    preprocessing: object | None
    test_inputs: np.ndarray
    test_labels: np.ndarray
    calibration_inputs: np.ndarray
    sizes: dict[str, int]
    report: DataReport = field(default_factory=DataReport)
    class_weight: dict[int, float] | None = None
    model_params: dict = field(default_factory=dict)
    split: SplitIndices | None = None
    data: ArrayData | None = None
    assets: dict[str, Callable[[Path], Path]] = field(default_factory=dict)

    def raw(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw features and labels of one split of an in-memory source."""
        if self.data is None or self.split is None:
            raise ValueError("raw() needs an in-memory source; streamed sources have test_inputs only")
        indices = getattr(self.split, split)
        return self.data.features[indices], self.data.labels[indices]

    def save_assets(self, directory: Path | str) -> dict[str, Path]:
        """Write what a client needs beside the model (labels, vocabulary); returns name -> path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        labels = directory / "labels.txt"
        labels.write_text("".join(f"{name}\n" for name in self.class_names), encoding="utf-8")
        return {"labels": labels, **{name: save(directory) for name, save in self.assets.items()}}


def build_pipeline(
    config: DataConfig, seed: int, global_batch_size: int | None = None, data: ArrayData | None = None
) -> Pipeline:
    """Load, check, split, fit the transforms on the training split, and build the feeds.

    `global_batch_size` overrides `config.batch_size` (the trainer passes the
    per-replica batch times the number of replicas). `data` replaces the
    config's source with examples already in memory (`from_arrays`,
    `from_dataframe`); they are treated like rows of a CSV file.

    Raises:
        DataError: bad data (a file, row or column named in the message).
    """
    report = DataReport()
    batch_size = global_batch_size or config.batch_size
    if data is not None:
        if data.features.dtype.kind != "f":
            raise DataError("build_pipeline(data=...) takes numeric features; load images and texts by config")
        return _in_memory_pipeline(config, data, seed, batch_size, report)
    if isinstance(config.source, IN_MEMORY_SOURCES):
        from tfdl.pipelines.sources import load_examples

        data = load_examples(config.source, on_bad_data=config.on_bad_data, report=report, seed=seed)
        return _in_memory_pipeline(config, data, seed, batch_size, report)
    from tfdl.pipelines.streams import streamed_pipeline

    return streamed_pipeline(config, seed, batch_size, report)


def _in_memory_pipeline(config: DataConfig, data: ArrayData, seed: int, batch_size: int, report: DataReport) -> Pipeline:
    numeric = data.features.dtype.kind == "f"
    if numeric:
        data = _missing_before_split(config, data, report)
    if not data.class_names and config.split.stratify:
        # Regression targets: stratifying would make every distinct value its own class.
        raise DataError(
            "split.stratify needs class labels, but this data has regression targets (no class names); "
            "set data.split.stratify: false"
        )
    split = split_indices(
        data.labels,
        validation=config.split.validation,
        test=config.split.test,
        seed=seed,
        stratify=config.split.stratify,
    )
    train = data.take(split.train)
    transforms = fit_feature_transforms(config, data, train, seed, report, batch_size)
    class_weight = _class_weight(config, train)
    resample = _resampler(config, train, seed)

    def feed(indices: np.ndarray, name: str) -> tf.data.Dataset:
        training = name == "train"
        return make_dataset(
            data.features[indices],
            data.labels[indices],
            batch_size=batch_size,
            load=transforms.load,
            preprocess=transforms.preprocess,
            cache=config.cache,
            cache_file=Path(config.cache_dir) / name if config.cache_dir else None,
            resample=resample if training else None,
            shuffle_buffer=config.shuffle_buffer if training else 0,
            seed=seed,
            batch=transforms.batch,
            augment=transforms.augment if training else None,
            postprocess=transforms.after_batch,
            deterministic=config.deterministic,
        )

    return Pipeline(
        train=feed(split.train, "train"),
        validation=feed(split.validation, "validation"),
        test=feed(split.test, "test"),
        input_name=data.input_name,
        input_shape=transforms.input_shape,
        input_dtype=transforms.input_dtype,
        class_names=data.class_names,
        preprocessing=transforms.served,
        test_inputs=transforms.raw_inputs(data.features[split.test]),
        test_labels=data.labels[split.test],
        calibration_inputs=transforms.raw_inputs(
            data.features[np.sort(np.random.default_rng(seed).permutation(split.train)[:CALIBRATION_EXAMPLES])]
        ),
        sizes={"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
        report=report,
        class_weight=class_weight,
        model_params=transforms.model_params,
        split=split,
        data=data,
        assets=transforms.assets,
    )


def _missing_before_split(config: DataConfig, data: ArrayData, report: DataReport) -> ArrayData:
    """Apply the `error` and `drop` policies; `impute` is fitted after the split."""
    from tfdl.pipelines.missing import check_no_missing, drop_missing

    if config.missing.policy == "error":
        check_no_missing(data.features, data.feature_names)
        return data
    if config.missing.policy == "drop":
        features, labels, _ = drop_missing(data.features, data.labels, report=report, feature_names=data.feature_names)
        if len(labels) == 0:
            raise DataError("every row has a missing value, so `missing.policy: drop` leaves nothing; use `impute`")
        return ArrayData(features, labels, data.class_names, data.input_name, data.feature_names)
    return data


def _class_weight(config: DataConfig, train: ArrayData) -> dict[int, float] | None:
    if config.imbalance.class_weight == "none":
        return None
    from tfdl.pipelines.imbalance import class_weights

    return class_weights(train.labels, len(train.class_names))


def _resampler(config: DataConfig, train: ArrayData, seed: int):
    if config.imbalance.resample == "none":
        return None
    from tfdl.pipelines.imbalance import resample_dataset

    num_classes = len(train.class_names)
    target = config.imbalance.target
    return lambda ds: resample_dataset(
        ds, train.labels, num_classes=num_classes, target=target, method=config.imbalance.resample, seed=seed
    )
