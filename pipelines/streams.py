"""Sources read as streams, split before they reach tfdl: TFRecord files and TFDS datasets.

Their examples stay on disk; each split is a dataset read in parallel and
parsed in batches. Checks run before training, in one pass: corrupt records
(TFRecord), labels outside the classes, and empty splits. Normalization
statistics come from (a bounded sample of) the training split only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tfdl.pipelines.config import DataConfig, TFDSSource, TFRecordSource
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.dataset import make_feed
from tfdl.pipelines.errors import DataError, where
from tfdl.pipelines.feature_transforms import FeatureTransforms, fit_stream_transforms

# Examples parsed per vectorized call when reading records.
_PARSE_CHUNK = 1024
# Training examples read to fit normalization: a bounded, stable sample.
_STATS_SAMPLE = 10_000
_SPLITS = ("train", "validation", "test")


def streamed_pipeline(config: DataConfig, seed: int, batch_size: int, report: DataReport):
    """Build the `Pipeline` of a TFRecord or TFDS source."""
    from tfdl.pipelines.pipeline import CALIBRATION_EXAMPLES, Pipeline

    source = config.source
    if isinstance(source, TFRecordSource):
        splits, sizes, class_names = _tfrecord_splits(source, config.on_bad_data, report, seed)
    elif isinstance(source, TFDSSource):
        splits, sizes, class_names = _tfds_splits(source, config, seed)
    else:
        raise TypeError(f"{type(source).__name__} is not a streamed source")
    for name, size in sizes.items():
        if size == 0:
            raise DataError(f"the {name} split of {source.describe()} holds no examples; it needs at least one")
    sample, _ = _arrays(splits["train"].take(_STATS_SAMPLE))
    transforms = fit_stream_transforms(config, sample, seed)
    test_inputs, test_labels = _arrays(splits["test"])

    def feed(name: str) -> tf.data.Dataset:
        training = name == "train"
        return make_feed(
            splits[name],
            count=sizes[name],
            batch_size=batch_size,
            preprocess=transforms.preprocess,
            cache=config.cache,
            cache_file=Path(config.cache_dir) / name if config.cache_dir else None,
            shuffle_buffer=config.shuffle_buffer if training else 0,
            seed=seed,
            augment=transforms.augment if training else None,
            postprocess=transforms.after_batch,
            deterministic=config.deterministic,
            shard_by="file",
        )

    return Pipeline(
        train=feed("train"),
        validation=feed("validation"),
        test=feed("test"),
        input_name=source.input_name or source.input_key,
        input_shape=transforms.input_shape,
        input_dtype=transforms.input_dtype,
        class_names=class_names,
        preprocessing=transforms.served,
        test_inputs=test_inputs,
        test_labels=test_labels,
        calibration_inputs=sample[:CALIBRATION_EXAMPLES],
        sizes=sizes,
        report=report,
        class_weight=_class_weight(config, splits["train"], len(class_names)),
        model_params=transforms.model_params,
    )


def _arrays(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Features and int32 labels of a split, read in one pass."""
    xs, ys = zip(*ds.batch(_PARSE_CHUNK).as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys).astype(np.int32)


def _class_weight(config: DataConfig, train: tf.data.Dataset, num_classes: int):
    if config.imbalance.resample != "none":
        raise DataError("resampling needs examples in memory; for TFRecord and TFDS sources use class_weight")
    if config.imbalance.class_weight == "none":
        return None
    from tfdl.pipelines.imbalance import class_weights

    return class_weights(_arrays(train)[1], num_classes)


def _tfrecord_splits(source: TFRecordSource, on_bad_data: str, report: DataReport, seed: int):
    from tfdl.pipelines.tfrecord import list_tfrecord_files, load_feature_spec, read_tfrecords, scan_tfrecords

    train_files = list_tfrecord_files(source.train)
    spec = load_feature_spec(source.spec or Path(train_files[0]).parent)
    for role, key in (("input_key", source.input_key), ("label_key", source.label_key)):
        if key not in spec:
            raise DataError(f"{role} {key!r} is not a feature of the records; they hold {', '.join(sorted(spec))}")
    num_classes = len(source.class_names)
    splits, sizes = {}, {}
    for name in _SPLITS:
        counts = scan_tfrecords(
            getattr(source, name), compression=source.compression, spec=spec, on_bad_data=on_bad_data, report=report,
        )
        bad = _bad_labels(counts, source, spec, num_classes, on_bad_data, report)
        records = read_tfrecords(
            list(counts), {source.input_key: spec[source.input_key], source.label_key: spec[source.label_key]},
            compression=source.compression, batch_size=_PARSE_CHUNK, record_counts=counts,
            shuffle_files=name == "train", seed=seed,
        )
        ds = records.map(
            lambda r: (r[source.input_key], tf.cast(r[source.label_key], tf.int32)), num_parallel_calls=tf.data.AUTOTUNE,
        ).unbatch()
        if bad:
            ds = ds.filter(lambda x, y: (y >= 0) & (y < num_classes))
        splits[name], sizes[name] = ds, sum(counts.values()) - bad
    return splits, sizes, tuple(source.class_names)


def _bad_labels(counts: dict, source: TFRecordSource, spec: dict, num_classes: int, on_bad_data: str, report: DataReport) -> int:
    """Find labels outside the classes, file by file, so a message can name the file and record."""
    from tfdl.pipelines.tfrecord import read_tfrecords

    bad_total, examples = 0, []
    for path, count in counts.items():
        if count == 0:
            continue
        labels = np.concatenate([
            batch[source.label_key].reshape(-1) for batch in read_tfrecords(
                [path], {source.label_key: spec[source.label_key]}, compression=source.compression,
                batch_size=65536, record_counts={path: count},
            ).as_numpy_iterator()
        ])
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if len(bad) and on_bad_data == "error":
            raise DataError(
                f"{where(path, record=int(bad[0]))}: label {labels[bad[0]]} is outside the {num_classes} classes "
                f"(0..{num_classes - 1}: {', '.join(source.class_names)}); {len(bad)} records of this file have such "
                "labels. Fix the labels or class_names, or set on_bad_data: skip"
            )
        bad_total += len(bad)
        examples += [where(path, record=int(i)) for i in bad[:5]]
    report.add("records skipped: label outside the classes", bad_total, examples)
    return bad_total


def _tfds_splits(source: TFDSSource, config: DataConfig, seed: int):
    from tfdl.pipelines.tfds_source import tfds_class_names, tfds_splits

    loaded = tfds_splits(
        source.name, data_dir=source.data_dir, validation=config.split.validation, test=config.split.test,
        as_supervised=False, shuffle_files=True, seed=seed,
    )
    class_names = tfds_class_names(loaded.info, source.label_key)
    keys = list(loaded.info.features.keys())
    if source.input_key not in keys:
        raise DataError(f"input_key {source.input_key!r} is not a feature of {source.name}; it has {', '.join(keys)}")
    size = tuple(source.image_size) if source.image_size else None

    def pick(example):
        x = tf.cast(example[source.input_key], tf.float32)
        if size is not None:
            x = tf.image.resize(x, size)
        return x, tf.cast(example[source.label_key], tf.int32)

    splits, sizes = {}, {}
    for name in _SPLITS:
        ds = getattr(loaded, name).map(pick, num_parallel_calls=tf.data.AUTOTUNE)
        count = int(ds.cardinality())
        splits[name], sizes[name] = ds, count if count >= 0 else int(ds.reduce(0, lambda n, _: n + 1))
    return splits, sizes, class_names
