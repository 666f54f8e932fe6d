"""In-memory tables (numpy arrays, nested lists, pandas frames) to `ArrayData`.

Features become float32 with NaN marking a missing value, which the
missing-value policy (`tfdl.pipelines.missing`) handles later; anything that
cannot become a number is refused here, naming the row or column.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.errors import DataError, where
from tfdl.pipelines.labels import encode_labels


def from_arrays(
    features,
    labels,
    *,
    class_names: Sequence[str] | None = None,
    input_name: str = "features",
    feature_names: Sequence[str] = (),
) -> ArrayData:
    """Examples from a feature array and a label array.

    Args:
        features: a numpy array or nested lists, one row per example, every
            row of the same shape; numbers, with None or NaN for a missing
            value.
        labels: one label per example: class indices or class names (see
            `encode_labels`).
        class_names: the name of each class index, or None to derive them
            from the labels.
        input_name: the name of the model's input.
        feature_names: the name of each feature column (2-D features only).

    Returns:
        The examples, with float32 features and int32 labels.

    Raises:
        DataError: if there are no examples, rows have different shapes
            (naming the first row that differs and the expected shape), a
            value is not a number, the feature names do not match the
            columns, the counts of features and labels differ, or a label is
            bad.
    """
    feature_names = tuple(str(name) for name in feature_names)
    matrix = _float_matrix(features, feature_names)
    if len(matrix) != len(labels):
        raise DataError(
            f"features hold {len(matrix)} examples but labels {len(labels)}; give one label per row of features"
        )
    if feature_names and (matrix.ndim != 2 or matrix.shape[1] != len(feature_names)):
        raise DataError(
            f"{len(feature_names)} feature_names were given for features of shape {matrix.shape}; "
            "give one name per column of 2-D features"
        )
    indices, names = encode_labels(labels, class_names)
    return ArrayData(matrix, indices, names, input_name, feature_names)


def _float_matrix(features, feature_names: tuple[str, ...]) -> np.ndarray:
    if isinstance(features, np.ndarray) and features.dtype.kind in "biuf":
        if len(features) == 0:
            raise DataError("features are empty; give at least one example")
        return features.astype(np.float32)
    rows = list(features)
    if not rows:
        raise DataError("features are empty; give at least one example")
    try:
        fast = np.array(rows)
    except ValueError:  # numpy refuses ragged rows; the checks below say where
        fast = None
    if fast is not None and fast.dtype.kind in "biuf":
        return fast.astype(np.float32)
    _check_row_shapes(rows)
    values = np.empty((len(rows), *_shape(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        values[i] = row
    return _numbers_only(values, feature_names)


def _shape(value) -> tuple | None:
    """The shape of nested lists/arrays; None when they are ragged inside."""
    if isinstance(value, np.ndarray):
        return value.shape
    if isinstance(value, (list, tuple)):
        inner = [_shape(item) for item in value]
        if any(s is None for s in inner) or len(set(inner)) > 1:
            return None
        return (len(value), *(inner[0] if inner else ()))
    return ()


def _check_row_shapes(rows: list) -> None:
    expected = _shape(rows[0])
    if expected is None:
        raise DataError("features row 0 is ragged inside (its parts have different lengths); give every row one shape")
    for i, row in enumerate(rows):
        shape = _shape(row)
        if shape != expected:
            got = "a ragged shape" if shape is None else f"shape {shape}"
            raise DataError(
                f"features have inconsistent shapes: row {i} has {got} but row 0 has shape {expected}; "
                f"give every example the shape {expected} (pad or fix the rows)"
            )


def _numbers_only(values: np.ndarray, feature_names: tuple[str, ...]) -> np.ndarray:
    out = np.empty(values.shape, dtype=np.float32)
    for position, value in np.ndenumerate(values):
        if value is None:
            out[position] = np.nan
        elif isinstance(value, numbers.Real):
            out[position] = value
        else:
            raise DataError(
                f"features {_place(position, feature_names)}: {value!r} is not a number; features must be "
                "numeric: encode text or categories as numbers first, or drop that column"
            )
    return out


def _place(position: tuple, feature_names: tuple[str, ...]) -> str:
    row = position[0]
    if len(position) == 2:
        j = position[1]
        return where(row=row, column=feature_names[j]) if j < len(feature_names) else f"{where(row=row)}, column {j}"
    return f"{where(row=row)}, position {position[1:]}"


def from_dataframe(
    frame,
    label_column: str,
    *,
    feature_columns: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    input_name: str = "features",
) -> ArrayData:
    """Examples from a pandas DataFrame: some columns are features, one the label.

    Missing values (NaN, None, `pd.NA`) in feature columns become NaN and are
    kept for the missing-value policy. Messages name rows by the frame's
    index labels.

    Args:
        frame: a `pandas.DataFrame`.
        label_column: the column that holds the labels (class indices or
            class names, see `encode_labels`).
        feature_columns: the feature columns, in this order; defaults to
            every column but the label.
        class_names: the name of each class index, or None to derive them
            from the labels.
        input_name: the name of the model's input.

    Returns:
        The examples, with float32 features, int32 labels and the feature
        column names as `feature_names`.

    Raises:
        DataError: if `frame` is not a DataFrame or is empty, a named column
            does not exist (listing the columns there are), the label is also
            a feature, a feature column is not numeric (naming it and the
            first value that is not a number), or a label is bad.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"from_dataframe needs a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise DataError("the DataFrame has no rows; give at least one example")
    columns = _checked_columns(frame, label_column, feature_columns)
    matrix = np.column_stack([_numeric_column(frame[column], column) for column in columns]).astype(np.float32)
    row_names = [f"row {label}" for label in frame.index]
    raw = _raw_labels(frame[label_column])
    indices, names = encode_labels(raw, class_names, row_names=row_names, source=f"column {label_column!r}")
    return ArrayData(matrix, indices, names, input_name, tuple(str(c) for c in columns))


def _checked_columns(frame, label_column: str, feature_columns: Sequence[str] | None) -> list:
    available = list(frame.columns)
    listing = ", ".join(repr(c) for c in available)
    if label_column not in available:
        raise DataError(f"label_column {label_column!r} is not a column of the DataFrame; its columns are {listing}")
    if feature_columns is None:
        columns = [c for c in available if c != label_column]
    else:
        columns = list(feature_columns)
        unknown = [c for c in columns if c not in available]
        if unknown:
            raise DataError(
                f"feature_columns {', '.join(map(repr, unknown))} are not columns of the DataFrame; "
                f"its columns are {listing}"
            )
        if label_column in columns:
            raise DataError(f"the label column {label_column!r} is also in feature_columns; remove it from the features")
    if not columns:
        raise DataError(f"the DataFrame has no feature columns besides the label {label_column!r}")
    return columns


def _raw_labels(series) -> np.ndarray:
    """The label column as numpy, missing labels as NaN (numbers) or None (anything else)."""
    import pandas as pd

    if (pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series)) and not series.hasnans:
        return series.to_numpy(dtype=np.int64)
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.astype(object).where(series.notna(), None).to_numpy()


def _numeric_column(series, column) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or (
        pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series)
    ):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    for index, value in series.items():
        missing = value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
        if not missing and not isinstance(value, numbers.Real):
            raise DataError(
                f"feature column {column!r} is not numeric (dtype {series.dtype}; row {index} holds {value!r}); "
                "drop it from feature_columns or encode it as numbers first"
            )
    return series.astype(object).where(series.notna(), np.nan).to_numpy(dtype=np.float64)
