"""Time series to (input window, label window) examples, split by time so no split sees another's future.

`split_series` cuts a series into train, validation and test in time order;
`window_dataset` then cuts each part into windows on its own, so a window
never spans two splits. The windows follow the TensorFlow time-series
tutorial's `WindowGenerator`: the inputs are `input_width` steps, and the
labels are the `label_width` steps that end `shift` steps after the inputs
end.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tfdl.pipelines.errors import DataError


def split_series(series: np.ndarray, *, validation: float, test: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a series in time order: train first, then validation, then test.

    Never shuffled: a model is then validated and tested on a future it has
    not seen, as it will be used. Sizes are rounded from the fractions; the
    train part takes the rest.

    Args:
        series: shape (T,) or (T, features), in time order.
        validation: fraction of the steps for validation, in (0, 1).
        test: fraction of the steps for test, in (0, 1).

    Returns:
        `(train, validation, test)`: consecutive slices of `series` (views,
        not copies).

    Raises:
        DataError: a fraction is outside (0, 1), they sum to 1 or more, or a
            part would be empty.
    """
    series = np.asarray(series)
    for name, fraction in (("validation", validation), ("test", test)):
        if not 0 < fraction < 1:
            raise DataError(f"{name} must be a fraction in (0, 1), got {fraction}")
    if validation + test >= 1:
        raise DataError(f"validation + test = {validation + test} leaves no training steps; make them sum to less than 1")
    total = len(series)
    n_test = int(round(total * test))
    n_validation = int(round(total * validation))
    n_train = total - n_validation - n_test
    if min(n_train, n_validation, n_test) < 1:
        raise DataError(
            f"a series of {total} steps split with validation={validation} and test={test} gives "
            f"{n_train}/{n_validation}/{n_test} steps; use a longer series or larger fractions"
        )
    return series[:n_train], series[n_train : n_train + n_validation], series[n_train + n_validation :]


def window_dataset(
    series: np.ndarray,
    *,
    input_width: int,
    label_width: int = 1,
    shift: int = 1,
    label_columns: Sequence[int] | None = None,
    stride: int = 1,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of `(inputs, labels)` windows cut from one series.

    A window starts every `stride` steps and spans `input_width + shift`
    steps: inputs are its first `input_width` steps (every feature), labels
    its last `label_width` steps (the `label_columns` features). With the
    defaults, each window's label is the step right after its inputs.

    Args:
        series: shape (T,) or (T, F), in time order; a 1-D series is one
            feature.
        input_width: steps in each input window.
        label_width: steps in each label window, at most `input_width + shift`.
        shift: how many steps after the input window the label window ends
            (>= 1, so a label always lies in the inputs' future).
        label_columns: the feature indices to predict; None: all of them.
        stride: steps between the starts of consecutive windows.
        batch_size: windows per batch.
        shuffle: shuffle the windows (anew each epoch); off for evaluation.
        seed: makes the shuffle the same on every run.

    Returns:
        A dataset of inputs (batch, input_width, F) and labels
        (batch, label_width, len(label_columns)), in the series' dtype.

    Raises:
        DataError: the series is too short for one window, or an argument is
            out of range.
    """
    values = _as_steps_by_features(series)
    steps, features = values.shape
    for name, value, least in (("input_width", input_width, 1), ("label_width", label_width, 1),
                               ("shift", shift, 1), ("stride", stride, 1), ("batch_size", batch_size, 1)):
        if int(value) != value or value < least:
            raise DataError(f"{name} must be an integer >= {least}, got {value}")
    window = input_width + shift
    if label_width > window:
        raise DataError(
            f"label_width={label_width} is longer than the window input_width + shift = {window}; "
            "shorten it or increase shift"
        )
    columns = _label_columns(label_columns, features)
    if steps < window:
        raise DataError(
            f"the series has {steps} time steps but one window needs input_width + shift = "
            f"{input_width} + {shift} = {window}; use a longer series (or split) or a smaller window"
        )

    starts = np.arange(0, steps - window + 1, stride, dtype=np.int64)
    data = tf.constant(values)
    offsets = tf.range(window, dtype=tf.int64)

    def cut(batch_starts):
        # One gather per batch builds all its windows at once.
        windows = tf.gather(data, batch_starts[:, None] + offsets)
        labels = tf.gather(windows[:, window - label_width :], columns, axis=-1)
        return windows[:, :input_width], labels

    dataset = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        # Shuffling start indices (not windows) makes a full shuffle cheap.
        dataset = dataset.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(cut, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _as_steps_by_features(series) -> np.ndarray:
    values = np.asarray(series)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"a series must have shape (T,) or (T, features), got {values.shape}")
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise DataError(f"a series must hold numbers, got dtype {values.dtype}")
    return values


def _label_columns(label_columns: Sequence[int] | None, features: int) -> list[int]:
    if label_columns is None:
        return list(range(features))
    columns = list(label_columns)
    if not columns:
        raise DataError("label_columns is empty; give the feature indices to predict, or None for all")
    for column in columns:
        if not 0 <= column < features:
            raise DataError(
                f"label column {column} is out of range: the series has {features} features "
                f"(columns 0..{features - 1})"
            )
    return columns
