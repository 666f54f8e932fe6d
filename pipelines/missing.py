"""Missing values (NaN) in feature tables: refuse them, drop their rows, or impute them.

The policy is the user's choice (`data.missing.policy`): with none, a NaN is
an error that says where it is; `drop` removes the rows and counts them;
`impute` fills from statistics fitted on the training split only, held in a
`MissingValueImputation` layer so the served model fills the same way.
Every row dropped and value filled is counted in the `DataReport`.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from tfdl.layers.missing_value_imputation import MissingValueImputation
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError

Strategy = Literal["mean", "median", "most_frequent", "constant"]

# Rows named per column in an error message; counts are always exact.
_MAX_SHOWN = 5


def check_no_missing(
    features: np.ndarray,
    feature_names: Sequence[str] = (),
    *,
    row_names: Sequence[str] | None = None,
) -> None:
    """Raise if any feature value is missing (NaN).

    Args:
        features: one row per example; 2-D tables, or any shape (each value
            after the first axis counts as a column).
        feature_names: the name of each column, for messages.
        row_names: how to name each row in messages; defaults to `"row i"`.

    Raises:
        DataError: naming each column with missing values, its count and
            first rows, and saying to set a missing-value policy.
    """
    missing = _missing_mask(features)
    if not missing.any():
        return
    columns = np.flatnonzero(missing.any(axis=0))
    parts = []
    for j in columns:
        rows = np.flatnonzero(missing[:, j])
        first = ", ".join(_row_name(i, row_names) for i in rows[:_MAX_SHOWN])
        parts.append(f"{_column_name(j, feature_names)}: {len(rows)} (first at {first})")
    raise DataError(
        f"the features hold {int(missing.sum())} missing values (NaN) in {len(columns)} column(s): "
        f"{'; '.join(parts)}. Set a missing-value policy: `data.missing.policy: drop` to drop those rows, "
        "or `impute` to fill them from training statistics"
    )


def drop_missing(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    report: DataReport,
    feature_names: Sequence[str] = (),
    row_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop every row with a missing (NaN) feature value, counting them.

    The report gets `"rows dropped: missing values"` (rows dropped in all)
    and, per column, `"rows dropped: missing value in column 'C'"` (rows
    with that column missing; a row missing two columns counts in both).

    Args:
        features: one row per example.
        labels: one label per example.
        report: where the dropped rows are counted.
        feature_names: the name of each column, for the report.
        row_names: how to name each row in the report; defaults to `"row i"`.

    Returns:
        `(features, labels, kept_indices)`: the complete rows, their labels,
        and their indices in the input.

    Raises:
        DataError: if every row has a missing value (suggesting `impute`),
            or features and labels differ in length.
    """
    if len(features) != len(labels):
        raise DataError(f"features hold {len(features)} rows but labels {len(labels)}; they must match")
    missing = _missing_mask(features)
    incomplete = missing.any(axis=1)
    kept = np.flatnonzero(~incomplete)
    if len(features) and not len(kept):
        raise DataError(
            f"every one of the {len(features)} rows has a missing value, so `drop` would leave no data; "
            "use the `impute` missing-value policy instead"
        )
    dropped = np.flatnonzero(incomplete)
    report.add("rows dropped: missing values", len(dropped), [_row_name(i, row_names) for i in dropped[:_MAX_SHOWN]])
    for j in np.flatnonzero(missing.any(axis=0)):
        rows = np.flatnonzero(missing[:, j])
        report.add(
            f"rows dropped: missing value in {_column_name(j, feature_names)}",
            len(rows),
            [_row_name(i, row_names) for i in rows[:_MAX_SHOWN]],
        )
    return features[kept], labels[kept], kept


def fit_imputer(
    train_features: np.ndarray,
    strategy: Strategy,
    *,
    fill_value: float = 0.0,
    indicator: bool = False,
    feature_names: Sequence[str] = (),
    report: DataReport | None = None,
) -> MissingValueImputation:
    """Fit per-column fill values on the training rows, as a Keras layer.

    Statistics ignore NaN. `most_frequent` breaks ties by the smallest value.
    A column missing in every training row has no statistic: it is filled
    with `fill_value`, and that is said in the layer's `notes` (and in
    `report` when given).

    Args:
        train_features: the training split's features, shape
            `(examples, features)`, NaN where missing. Never pass validation
            or test rows: their values would leak into training.
        strategy: `"mean"`, `"median"`, `"most_frequent"` or `"constant"`
            (every column filled with `fill_value`).
        fill_value: the value for `"constant"` and for columns with no
            training value.
        indicator: append a 0/1 missing-indicator column for each column that
            has missing values in the training rows.
        feature_names: the name of each column, for notes.
        report: where columns with no training value are recorded, if given.

    Returns:
        A built `MissingValueImputation` layer; its `notes` attribute lists
        what the fit could not do as asked.

    Raises:
        DataError: if `strategy` is unknown, `fill_value` is not finite or
            the features are not a 2-D table.
    """
    if strategy not in ("mean", "median", "most_frequent", "constant"):
        raise DataError(f"unknown imputation strategy {strategy!r}; use mean, median, most_frequent or constant")
    if not np.isfinite(fill_value):
        raise DataError(f"fill_value must be a finite number, got {fill_value!r}")
    x = np.asarray(train_features, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"imputation works on (examples, features) tables; got features of shape {x.shape}")
    missing = np.isnan(x)
    empty = np.flatnonzero(missing.all(axis=0)) if len(x) else np.arange(x.shape[1])
    fills = [
        fill_value if strategy == "constant" or j in empty else _statistic(x[~missing[:, j], j], strategy)
        for j in range(x.shape[1])
    ]
    indicators = [int(j) for j in np.flatnonzero(missing.any(axis=0))] if indicator else []
    layer = MissingValueImputation(fills, indicator_columns=indicators, name="missing_value_imputation")
    layer.build((None, x.shape[1]))
    notes = []
    if len(empty) and strategy != "constant":
        names = [_column_name(j, feature_names) for j in empty]
        notes.append(f"no training value in {', '.join(names)}: filled with fill_value {fill_value:g}")
        if report is not None:
            report.add(f"columns with no training value, filled with {fill_value:g}", len(empty), names)
    layer.notes = tuple(notes)
    return layer


def impute_report(
    features: np.ndarray,
    imputer: MissingValueImputation,
    report: DataReport,
    feature_names: Sequence[str] = (),
    *,
    row_names: Sequence[str] | None = None,
) -> None:
    """Count, per column, the values `imputer` fills in `features`.

    Each column with missing values gets the entry `"values filled: column
    'C' with V"`. Call it once per split; counts of equal entries add up.

    Args:
        features: the rows the imputer will be applied to.
        imputer: the fitted layer.
        report: where the counts go.
        feature_names: the name of each column, for the report.
        row_names: how to name each row in the report; defaults to `"row i"`.

    Raises:
        DataError: if `features` do not have the imputer's columns.
    """
    missing = _missing_mask(features)
    if missing.shape[1] != len(imputer.fill_values):
        raise DataError(
            f"the features have {missing.shape[1]} columns but the imputer was fitted on "
            f"{len(imputer.fill_values)}; impute the columns it was fitted on"
        )
    for j in np.flatnonzero(missing.any(axis=0)):
        rows = np.flatnonzero(missing[:, j])
        report.add(
            f"values filled: {_column_name(j, feature_names)} with {imputer.fill_values[j]:g}",
            len(rows),
            [_row_name(i, row_names) for i in rows[:_MAX_SHOWN]],
        )


def _missing_mask(features: np.ndarray) -> np.ndarray:
    """(rows, columns) bool mask of NaN; integer arrays have none."""
    x = np.asarray(features)
    x = x.reshape(len(x), -1)
    return np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, dtype=bool)


def _statistic(values: np.ndarray, strategy: Strategy) -> float:
    if strategy == "mean":
        return float(values.mean())
    if strategy == "median":
        return float(np.median(values))
    distinct, counts = np.unique(values, return_counts=True)
    return float(distinct[np.argmax(counts)])


def _column_name(j: int, feature_names: Sequence[str]) -> str:
    return f"column {feature_names[j]!r}" if j < len(feature_names) else f"column {j}"


def _row_name(i: int, row_names: Sequence[str] | None) -> str:
    return row_names[i] if row_names is not None else f"row {i}"
