"""Imbalanced classes: balanced class weights, and resampling to a target class mix.

Two remedies, both fitted on the training split only: weight the loss
(`class_weights`, for `model.fit(class_weight=...)`), or change the mix of
examples the model sees (`resample` for arrays, `resample_dataset` for an
existing tf.data stream). Validation and test keep the real class mix, so
their metrics still say how the model does on real data.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import numpy as np
import tensorflow as tf

from tfdl.pipelines.errors import DataError, where

Target = Sequence[float] | Literal["uniform"]

# How far a target distribution's sum may be from 1 (float rounding in a
# config, e.g. three times 0.333333).
_SUM_TOLERANCE = 1e-6


def class_distribution(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The fraction of examples in each class.

    Args:
        labels: one integer class index per example.
        num_classes: the number of classes; classes without examples get 0.

    Returns:
        float64 array of shape `(num_classes,)` that sums to 1.

    Raises:
        DataError: if there are no labels, or a label is not an integer in
            `[0, num_classes)`.
    """
    labels = _check_labels(labels, num_classes)
    return np.bincount(labels, minlength=num_classes) / len(labels)


def class_weights(train_labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced class weights: `n_samples / (num_classes * count_c)`.

    scikit-learn's `"balanced"` formula: every class then carries the same
    total weight in the loss. Compute it from the training labels only, so
    nothing about validation or test leaks into training.

    Args:
        train_labels: the class index of each training example.
        num_classes: the number of classes the model predicts.

    Returns:
        A dict from each class index to its weight, as `model.fit(class_weight=...)` takes it.

    Raises:
        DataError: if a label is not an integer in `[0, num_classes)`, or a
            class has no training example (its weight would be infinite).
    """
    labels = _check_labels(train_labels, num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    absent = np.flatnonzero(counts == 0)
    if len(absent):
        raise DataError(
            f"classes {absent.tolist()} have no training examples, so their "
            "balanced weight would be infinite; re-split with stratification "
            "(each split keeps every class) or remove those classes"
        )
    weights = len(labels) / (num_classes * counts)
    return {c: float(w) for c, w in enumerate(weights)}


def resample(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    target: Target,
    method: Literal["oversample", "rejection"] = "oversample",
    seed: int | None = None,
    num_examples: int | None = None,
    num_classes: int | None = None,
) -> tf.data.Dataset:
    """Unbatched `(feature, label)` pairs drawn to a target class distribution.

    `oversample` keeps one shuffled, repeating stream per class and draws
    from them with the target weights (`Dataset.sample_from_datasets`):
    rare classes repeat, no example is thrown away. `rejection` streams the
    shuffled examples through `Dataset.rejection_resample`, which drops
    examples of common classes (TF logs "Proportion of examples rejected by
    sampler is high" when it drops most of them).

    Each pass over the returned dataset is one epoch of `num_examples`
    examples (a known cardinality, as Keras wants); each new pass draws
    afresh, and the same seed gives the same sequence of epochs.

    Args:
        features: one row per example (numbers or strings such as file paths).
        labels: one integer class index per example.
        target: the wanted fraction of each class (one per class,
            non-negative, summing to 1), or `"uniform"` for equal fractions.
        method: `oversample` or `rejection`, as above.
        seed: seeds every shuffle and draw; None draws differently each run.
        num_examples: examples per epoch; default `len(labels)`.
        num_classes: the number of classes; default the target's length, or
            `labels.max() + 1` for `"uniform"`.

    Returns:
        The dataset of unbatched `(feature, label)` pairs.

    Raises:
        DataError: if features and labels differ in length, a label is not a
            class index, the target is invalid or asks for a class that has
            no examples, `method` is unknown, or `num_examples` is not positive.
    """
    if len(features) != len(labels):
        raise DataError(f"features hold {len(features)} examples but labels {len(labels)}; they must match")
    labels = np.asarray(labels)
    target_dist, initial, num_examples = _checked_plan(labels, target, num_classes, num_examples)
    if method == "oversample":
        # Slicing the arrays per class is one pass; filtering a dataset per
        # class (as resample_dataset must) would read every example per class.
        streams = {
            c: tf.data.Dataset.from_tensor_slices((features[labels == c], labels[labels == c]))
            for c in np.flatnonzero(target_dist > 0)
        }
        return _oversample(streams, labels, target_dist, seed=seed).take(num_examples)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    return _resample_stream(dataset, labels, target_dist, initial, method, seed, _label_of_pair).take(num_examples)


def resample_dataset(
    dataset: tf.data.Dataset,
    labels: np.ndarray,
    *,
    target: Target,
    method: Literal["oversample", "rejection"] = "oversample",
    seed: int | None = None,
    num_examples: int | None = None,
    num_classes: int | None = None,
    label_fn: Callable[..., tf.Tensor] | None = None,
) -> tf.data.Dataset:
    """Resample an existing unbatched dataset to a target class distribution.

    For examples that are already a tf.data stream, e.g. the cached,
    preprocessed training feed or a TFDS split. `labels` holds the class of
    every example in `dataset` (in any order); it gives each class's share
    and the epoch length, so the dataset is never read to count them.

    `oversample` keeps one stream per class (`dataset.filter`), so it reads
    the dataset once per class per cycle: cheap for a cached dataset.
    `rejection` reads it once per cycle. Each holds examples in a shuffle
    buffer (one class's, or the whole dataset's, so that a dataset sorted
    by class still mixes within an epoch); the source is read repeatedly.

    Args:
        dataset: unbatched examples, `(x, y)` pairs unless `label_fn` says
            how to find the label.
        labels: the integer class of each example in `dataset`.
        target: the wanted fraction of each class, or `"uniform"`.
        method: `oversample` or `rejection`, as for `resample`.
        seed: seeds every shuffle and draw.
        num_examples: examples per epoch; default `len(labels)`.
        num_classes: the number of classes; default as for `resample`.
        label_fn: maps one element (its components as arguments) to its
            integer class; default: the second component of an `(x, y)` pair.

    Returns:
        Unbatched elements of `dataset`, `num_examples` per epoch.

    Raises:
        DataError: if a label is not a class index, the target is invalid or
            asks for a class with no examples, `method` is unknown, or
            `num_examples` is not positive.
    """
    labels = np.asarray(labels)
    target_dist, initial, num_examples = _checked_plan(labels, target, num_classes, num_examples)
    label_fn = _label_of_pair if label_fn is None else label_fn
    return _resample_stream(dataset, labels, target_dist, initial, method, seed, label_fn).take(num_examples)


def _checked_plan(
    labels: np.ndarray, target: Target, num_classes: int | None, num_examples: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """The checked target and initial class distributions, and the epoch length."""
    num_classes = _num_classes(target, labels, num_classes)
    initial = class_distribution(labels, num_classes)
    target_dist = _check_target(target, initial)
    num_examples = len(labels) if num_examples is None else num_examples
    if num_examples <= 0:
        raise DataError(f"num_examples={num_examples}: an epoch needs at least one example")
    return target_dist, initial, int(num_examples)


def _resample_stream(
    dataset: tf.data.Dataset,
    labels: np.ndarray,
    target: np.ndarray,
    initial: np.ndarray,
    method: str,
    seed: int | None,
    label_fn: Callable[..., tf.Tensor],
) -> tf.data.Dataset:
    """An endless stream of `dataset`'s elements resampled by `method`."""
    if method == "oversample":
        streams = {
            c: dataset.filter(lambda *element, c=int(c): tf.equal(tf.cast(label_fn(*element), tf.int64), c))
            for c in np.flatnonzero(target > 0)
        }
        return _oversample(streams, labels, target, seed=seed)
    if method == "rejection":
        shuffled = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        return _rejection(shuffled, target, initial, seed=seed, label_fn=label_fn)
    raise DataError(f"unknown resampling method {method!r}; use 'oversample' or 'rejection'")


def _oversample(
    streams: dict[int, tf.data.Dataset], labels: np.ndarray, target: np.ndarray, *, seed: int | None
) -> tf.data.Dataset:
    """An endless mix of the per-class streams, drawn with the target weights."""
    repeated, weights = [], []
    for c, stream in streams.items():
        # Each class gets its own seed so classes of equal size are not
        # shuffled in lockstep.
        class_seed = None if seed is None else seed + 1 + int(c)
        count = int(np.sum(labels == c))
        repeated.append(stream.shuffle(count, seed=class_seed, reshuffle_each_iteration=True).repeat())
        weights.append(float(target[c]))
    # rerandomize_each_iteration: a new class sequence every epoch, still
    # reproducible from the seed.
    return tf.data.Dataset.sample_from_datasets(repeated, weights=weights, seed=seed, rerandomize_each_iteration=True)


def _rejection(
    dataset: tf.data.Dataset,
    target: np.ndarray,
    initial: np.ndarray,
    *,
    seed: int | None,
    label_fn: Callable[..., tf.Tensor],
) -> tf.data.Dataset:
    """An endless rejection-resampled stream of `dataset`'s elements."""
    source = dataset.repeat()
    if np.allclose(target, initial, rtol=0.0, atol=_SUM_TOLERANCE):
        # Nothing to resample. rejection_resample would divide by (max - min)
        # of target/initial, 0 here: unless rounding makes every ratio exactly
        # 1, its acceptance probabilities are NaN and its filter branch, when
        # drawn, rejects every example forever.
        return source

    def class_of(*element):
        return tf.cast(label_fn(*element), tf.int32)

    # TF computes target / initial in numpy for a static shortcut; a class
    # with neither examples nor target gives 0/0 there, which is harmless
    # (TF's graph adds a tiny epsilon) but would warn.
    with np.errstate(divide="ignore", invalid="ignore"):
        resampled = source.rejection_resample(
            class_of,
            target_dist=target.astype(np.float32),
            initial_dist=initial.astype(np.float32),
            seed=seed,
        )
    # rejection_resample yields (class, element) pairs.
    return resampled.map(lambda _, element: element, num_parallel_calls=tf.data.AUTOTUNE)


def _label_of_pair(features: tf.Tensor, label: tf.Tensor) -> tf.Tensor:
    return label


def _num_classes(target: Target, labels: np.ndarray, num_classes: int | None) -> int:
    """The number of classes: as given, else the target's length, else the labels'."""
    if num_classes is not None:
        return num_classes
    # Bad labels (empty, not integers) are reported by class_distribution.
    highest = int(np.max(labels)) if len(labels) and np.issubdtype(labels.dtype, np.integer) else 0
    if isinstance(target, str):
        return highest + 1
    if highest >= len(target):
        raise DataError(
            f"target has {len(target)} fractions but the labels go up to class "
            f"{highest}; give one fraction per class"
        )
    return len(target)


def _check_target(target: Target, initial: np.ndarray) -> np.ndarray:
    """The target as a float array; it must suit the classes in `initial`."""
    num_classes = len(initial)
    if isinstance(target, str):
        if target != "uniform":
            raise DataError(f"unknown target {target!r}; give one fraction per class, or 'uniform'")
        target_dist = np.full(num_classes, 1.0 / num_classes)
    else:
        target_dist = _check_distribution("target", np.asarray(target, dtype=np.float64), num_classes)
    starved = np.flatnonzero((target_dist > 0) & (initial == 0))
    if len(starved):
        raise DataError(
            f"the target asks for classes {starved.tolist()} (fractions "
            f"{target_dist[starved].tolist()}) but they have no examples; set "
            "their target to 0, or add examples of them"
        )
    return target_dist


def _check_distribution(name: str, values: np.ndarray, num_classes: int) -> np.ndarray:
    if values.shape != (num_classes,):
        raise DataError(f"{name} has {values.size} fractions but there are {num_classes} classes; give one per class")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise DataError(f"{name} {values.tolist()} has a negative or non-finite fraction; each must be >= 0")
    if abs(values.sum() - 1.0) > _SUM_TOLERANCE:
        raise DataError(f"{name} {values.tolist()} sums to {values.sum():.6g}, not 1; give fractions that sum to 1")
    return values


def _check_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"labels must be a non-empty 1-D array of class indices; got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be integer class indices; got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        first = int(bad[0])
        raise DataError(
            f"{where(record=first)}: label {labels[first]} is not a class index in "
            f"[0, {num_classes}) ({len(bad)} such labels); fix the labels or the number of classes"
        )
    return labels
