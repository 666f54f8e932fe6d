"""Raw labels (class indices or class names) to int32 class indices, checked.

Every source (numpy arrays, pandas frames, CSV files) hands its label column
here, so a bad label is reported the same way wherever it came from: by the
row it sits in, with the valid classes listed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tfdl.pipelines.errors import DataError

# Bad rows named in one error message; the total count is always given.
_MAX_SHOWN = 5


def encode_labels(
    labels,
    class_names: Sequence[str] | None = None,
    *,
    row_names: Sequence[str] | None = None,
    source: str = "labels",
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Turn raw labels into int32 class indices and the class names.

    Integer labels (or floats with integral values) are class indices: they
    must lie in `[0, len(class_names))`; without `class_names` the classes are
    `0..max(labels)`, named `"0"`, `"1"`, .... String labels are class names:
    each must be one of `class_names`; without `class_names` the classes are
    the sorted unique strings. A missing label is `None` or NaN.

    Args:
        labels: one label per example (a sequence or 1-D array of ints,
            floats, strings or None).
        class_names: the name of each class index, or None to derive them from
            the labels.
        row_names: how to name each example in messages (e.g. `"data.csv,
            line 17"`); defaults to `"row i"` with i counted from 0.
        source: what the labels are, for messages (e.g. `"column 'species'"`).

    Returns:
        `(indices, class_names)`: an int32 array with one class index per
        example, and the class names as a tuple of strings.

    Raises:
        DataError: if a label is missing, negative, not an integer, outside
            the classes or not a known class name (the message names up to
            five bad rows, the total count and the valid classes), or if
            `class_names` repeats a name.
    """
    values = _as_flat_array(labels, source)
    names = _checked_class_names(class_names, source)
    if _holds_strings(values):
        return _encode_strings(values, names, row_names, source)
    return _encode_indices(values, names, row_names, source)


def _as_flat_array(labels, source: str) -> np.ndarray:
    values = np.asarray(labels) if not isinstance(labels, np.ndarray) else labels
    if values.ndim != 1:
        raise DataError(f"{source}: expected one label per example (a 1-D array), got shape {values.shape}")
    return values


def _checked_class_names(class_names: Sequence[str] | None, source: str) -> tuple[str, ...] | None:
    if class_names is None:
        return None
    names = tuple(str(name) for name in class_names)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{source}: class_names repeats {', '.join(map(repr, repeated))}; give each class one name")
    return names


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _holds_strings(values: np.ndarray) -> bool:
    if values.dtype.kind in "US":
        return True
    return values.dtype == object and any(isinstance(v, (str, bytes)) for v in values)


def _row_name(index: int, row_names: Sequence[str] | None) -> str:
    return row_names[index] if row_names is not None else f"row {index}"


def _raise_bad_rows(bad: list[tuple[int, str]], total: int, row_names, source: str, valid: str) -> None:
    shown = "; ".join(f"{_row_name(i, row_names)}: {problem}" for i, problem in bad[:_MAX_SHOWN])
    more = f" (and {len(bad) - _MAX_SHOWN} more)" if len(bad) > _MAX_SHOWN else ""
    raise DataError(
        f"{source}: {len(bad)} of {total} labels are not valid: {shown}{more}. "
        f"Valid labels are {valid}; fix those rows, or pass the right class_names"
    )


def _encode_strings(values: np.ndarray, names: tuple[str, ...] | None, row_names, source: str):
    texts = [None if _is_missing(v) else (v.decode() if isinstance(v, bytes) else str(v)) for v in values]
    if names is None:
        names = tuple(sorted({t for t in texts if t is not None}))
    index = {name: i for i, name in enumerate(names)}
    bad = [
        (i, "missing label" if t is None else f"{t!r} is not a class name")
        for i, t in enumerate(texts)
        if t is None or t not in index
    ]
    if bad:
        _raise_bad_rows(bad, len(texts), row_names, source, f"the class names {', '.join(map(repr, names))}")
    return np.fromiter((index[t] for t in texts), dtype=np.int32, count=len(texts)), names


def _encode_indices(values: np.ndarray, names: tuple[str, ...] | None, row_names, source: str):
    if values.dtype == object:
        # Only None can be here besides numbers: string labels took the other path.
        numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    elif values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
    else:
        raise DataError(f"{source}: labels of type {values.dtype} are neither class indices nor class names")
    missing = np.isnan(numbers)
    fractional = ~missing & (numbers != np.floor(np.where(missing, 0.0, numbers)))
    negative = ~missing & (numbers < 0)
    usable = ~(missing | fractional | negative)
    if names is None:
        top = int(numbers[usable].max()) if usable.any() else -1
        names = tuple(str(i) for i in range(top + 1))
    too_large = usable & (numbers >= len(names))
    bad_mask = missing | fractional | negative | too_large
    if bad_mask.any():
        bad = [(int(i), _index_problem(_plain(values[i]), numbers[i], len(names))) for i in np.flatnonzero(bad_mask)]
        valid = f"the integers 0..{len(names) - 1} (classes {', '.join(map(repr, names))})" if names else "none (no classes)"
        _raise_bad_rows(bad, len(values), row_names, source, valid)
    return numbers.astype(np.int32), names


def _plain(value):
    """The number as a user wrote it: 5, not np.int64(5), nor 5.0 from a column that had NaN."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _index_problem(raw, number: float, n_classes: int) -> str:
    if math.isnan(number):
        return "missing label"
    if number != math.floor(number):
        return f"{raw!r} is not an integer class index"
    if number < 0:
        return f"{raw!r} is negative"
    return f"{raw!r} is not below the number of classes ({n_classes})"
