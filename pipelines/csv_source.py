"""CSV files to `ArrayData`, checked row by row so every problem has an address.

Files are read with Python's `csv` module rather than a vectorized parser so
that a bad row is reported as `data.csv, line 17, column 'age'` with its value
and the type that was expected, or, with `on_bad_data="skip"`, skipped and
counted in the `DataReport`. Missing numeric values become NaN and are left
for the missing-value policy (`tfdl.pipelines.missing`).
"""

from __future__ import annotations

import csv
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError, where
from tfdl.pipelines.labels import encode_labels

ColumnType = Literal["float", "int", "string"]
OnBadData = Literal["error", "skip"]

DEFAULT_NA_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "None", "?")

# Python's int() also takes "1_000" and float() takes "1_0.5"; a CSV value
# with an underscore is more likely a typo than a digit separator.
_INT = re.compile(r"[+-]?[0-9]+")
_NOT_INT = re.compile(r"[^0-9+\-\n]")


def load_csv(
    paths: str | Path | Sequence[str | Path],
    label_column: str,
    *,
    header: bool = True,
    column_names: Sequence[str] | None = None,
    column_types: Mapping[str, ColumnType] | None = None,
    feature_columns: Sequence[str] | None = None,
    delimiter: str = ",",
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    class_names: Sequence[str] | None = None,
    input_name: str = "features",
    on_bad_data: OnBadData = "error",
    report: DataReport | None = None,
) -> ArrayData:
    """Load examples from one or more CSV files.

    Several files (a list, or a glob pattern such as `"data/part-*.csv"`) must
    have the same columns; they are read in sorted order of their paths.
    Blank lines are ignored. Values are stripped of surrounding spaces. A
    column whose type is not declared is inferred from its non-missing
    values: `int` if all are integers, else `float` if all are numbers, else
    `string`. A value in `na_values` is missing: NaN in a numeric column
    (kept for the missing-value policy), None in a string column (a missing
    label is an error). Only the label and feature columns are parsed, so a
    bad value in another column does no harm.

    Args:
        paths: a file, a glob pattern, or a sequence of files or patterns.
        label_column: the column that holds the labels (class indices or
            class names, see `encode_labels`).
        header: whether each file starts with a row of column names.
        column_names: the column names; required when `header` is False,
            and when given with a header they replace the header's names.
        column_types: the type of some columns (`"float"`, `"int"` or
            `"string"`); values that do not parse as it are bad data.
        feature_columns: the feature columns, in this order; defaults to
            every column but the label.
        delimiter: the one-character field separator.
        na_values: the texts that mean "missing".
        class_names: the name of each class index, or None to derive them
            from the labels.
        input_name: the name of the model's input.
        on_bad_data: `"error"` raises on the first row with the wrong number
            of fields or a value that does not parse; `"skip"` skips such
            rows and counts them in `report` with their `file:line`.
        report: where skipped rows are counted; required with `"skip"`.

    Returns:
        The examples: float32 features (NaN where missing), int32 labels, and
        the feature column names as `feature_names`.

    Raises:
        DataError: if no file matches, a file is empty or not UTF-8 text, the
            files' columns differ, a named column does not exist (listing the
            columns), a feature column holds text, a row has the wrong number
            of fields or a value does not parse as its column's type (naming
            file, line, column, value and expected type; unless skipped), no
            rows are left, or a label is bad.
    """
    _check_options(header, column_names, column_types, delimiter, on_bad_data, report)
    table = _read_table(_resolve_paths(paths), header, column_names, delimiter, on_bad_data, report)
    features = _checked_feature_columns(table.columns, label_column, feature_columns, column_types or {})
    na = frozenset(na_values)
    values = {c: table.column(c) for c in (*features, label_column)}
    types = {c: (column_types or {}).get(c) or _infer_type(values[c], na) for c in values}
    _refuse_text_features(features, label_column, types, values, na, table)

    parsed, bad = {}, {}
    for column in values:
        parsed[column], bad[column] = _parse_column(values[column], types[column], na)
    keep = _drop_bad_values(table, bad, types, values, on_bad_data, report)
    if not keep.any():
        raise DataError(f"no rows are left in {', '.join(table.files)} after skipping bad rows; see the data report")

    matrix = np.column_stack([parsed[c][keep] for c in features]).astype(np.float32)
    row_names = [table.place(i) for i in np.flatnonzero(keep)]
    labels, names = encode_labels(
        parsed[label_column][keep], class_names, row_names=row_names, source=f"label column {label_column!r}"
    )
    return ArrayData(matrix, labels, names, input_name, tuple(features))


@dataclass
class _Table:
    """The raw text of every row that has the right number of fields."""

    files: list[str]
    columns: list[str]
    rows: list[list[str]]
    origins: list[tuple[str, int]]  # (file, line) of each row

    def column(self, name: str) -> list[str]:
        j = self.columns.index(name)
        return [row[j] for row in self.rows]

    def file_line(self, i: int) -> str:
        file, line = self.origins[i]
        return f"{file}:{line}"

    def place(self, i: int, column: str | None = None) -> str:
        file, line = self.origins[i]
        return f"{file}, line {line}" + (f", {where(column=column)}" if column is not None else "")


def _check_options(header, column_names, column_types, delimiter, on_bad_data, report) -> None:
    if on_bad_data not in ("error", "skip"):
        raise DataError(f"on_bad_data={on_bad_data!r} is not an option; use 'error' or 'skip'")
    if on_bad_data == "skip" and report is None:
        raise DataError("on_bad_data='skip' needs a report to count the skipped rows in; pass report=DataReport()")
    if not header and column_names is None:
        raise DataError("header=False needs column_names: the files do not name their columns")
    if column_names is not None:
        _check_unique([str(c) for c in column_names], "column_names")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DataError(f"delimiter must be one character, got {delimiter!r}")
    for column, kind in (column_types or {}).items():
        if kind not in ("float", "int", "string"):
            raise DataError(f"column_types[{column!r}] = {kind!r} is not a type; use 'float', 'int' or 'string'")


def _check_unique(names: list[str], what: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{what} repeats the column name(s) {', '.join(map(repr, repeated))}; give each column one name")


def _resolve_paths(paths) -> list[str]:
    patterns = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not patterns:
        raise DataError("no CSV files were given")
    files = set()
    for pattern in map(str, patterns):
        if any(ch in pattern for ch in "*?["):
            matches = [m for m in glob.glob(pattern) if os.path.isfile(m)]
            if not matches:
                raise DataError(f"no files match {pattern!r}; check the pattern and the current directory ({os.getcwd()})")
            files.update(matches)
        elif not os.path.isfile(pattern):
            raise DataError(f"CSV file {pattern!r} does not exist or is not a file")
        else:
            files.add(pattern)
    return sorted(files)


def _read_table(files, header, column_names, delimiter, on_bad_data, report) -> _Table:
    table = _Table(files, [str(c) for c in column_names] if column_names is not None else [], [], [])
    wrong_count = []
    for file in files:
        file_columns = _read_file(file, table, header, delimiter, wrong_count)
        if column_names is None:
            if not table.columns:
                _check_unique(file_columns, f"the header of {file}")
                table.columns = file_columns
            elif file_columns != table.columns:
                raise DataError(
                    f"{file}: the columns {file_columns} differ from {table.columns} in {files[0]}; "
                    "files read together must have the same columns"
                )
        if wrong_count and on_bad_data == "error":
            bad_file, line, n_fields = wrong_count[0]
            raise DataError(
                f"{bad_file}, line {line}: {n_fields} fields but there are {len(table.columns)} columns "
                f"({', '.join(table.columns)}); fix the row, or set on_bad_data='skip' to skip such rows"
            )
    examples = [f"{f}:{line} ({n} fields, expected {len(table.columns)})" for f, line, n in wrong_count]
    if wrong_count:
        report.add("rows skipped: wrong number of fields", len(wrong_count), examples)
    return table


def _read_file(file: str, table: _Table, header: bool, delimiter: str, wrong_count: list) -> list[str]:
    """Append the file's well-formed rows to `table`; return its header's names ([] without a header)."""
    file_columns: list[str] | None = None if header else []
    n_rows = 0
    try:
        # utf-8-sig: spreadsheet programs start CSV files with a byte-order
        # mark that would otherwise stick to the first column's name.
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if file_columns is None:
                    file_columns = [f.strip() for f in fields]
                    continue
                n_rows += 1
                # The first file's header (or column_names) fixes the columns.
                n_columns = len(table.columns) or len(file_columns)
                if len(fields) != n_columns:
                    wrong_count.append((file, reader.line_num, len(fields)))
                    continue
                table.rows.append([f.strip() for f in fields])
                table.origins.append((file, reader.line_num))
    except UnicodeDecodeError as error:
        raise DataError(f"{file} is not UTF-8 text ({error}); save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise DataError(f"{file}, line {reader.line_num}: not valid CSV ({error})") from None
    if not n_rows:
        raise DataError(f"{file} is empty: it has no data rows{' after its header' if file_columns else ''}")
    return file_columns


def _checked_feature_columns(columns, label_column, feature_columns, column_types) -> list[str]:
    listing = ", ".join(repr(c) for c in columns)
    if label_column not in columns:
        raise DataError(f"label_column {label_column!r} is not a column; the columns are {listing}")
    for what, names in (("feature_columns", feature_columns or ()), ("column_types", column_types)):
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise DataError(f"{what} names {', '.join(map(repr, unknown))}, not a column; the columns are {listing}")
    if feature_columns is None:
        features = [c for c in columns if c != label_column]
    else:
        features = list(feature_columns)
        if label_column in features:
            raise DataError(f"the label column {label_column!r} is also in feature_columns; remove it from the features")
    if not features:
        raise DataError(f"there are no feature columns besides the label {label_column!r}; the columns are {listing}")
    return features


def _is_float(text: str) -> bool:
    if "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _infer_type(values: list[str], na: frozenset) -> ColumnType:
    present = [v for v in values if v not in na]
    if _fast_floats(present) is None:
        return "string"
    return "int" if _all_ints(present) else "float"


def _fast_floats(texts: list[str]) -> np.ndarray | None:
    """All texts parsed as floats in one C-level pass, or None if any is not a number."""
    # float() takes "1_000"; refuse underscores as _is_float does.
    if "_" in "".join(texts):
        return None
    try:
        return np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    except ValueError:
        return None


def _all_ints(numbers_as_text: list[str]) -> bool:
    """Whether texts already known to be numbers are all integers (digits and signs only)."""
    return _NOT_INT.search("\n".join(numbers_as_text)) is None


def _refuse_text_features(features, label_column, types, values, na, table: _Table) -> None:
    text = [c for c in features if types[c] == "string"]
    if not text:
        return
    numeric = [
        c for c in table.columns
        if c != label_column and (types.get(c) or _infer_type(table.column(c), na)) != "string"
    ]
    column = text[0]
    first = next((i for i, v in enumerate(values[column]) if v not in na and not _is_float(v)), None)
    example = f" (e.g. {table.place(first)}: {values[column][first]!r})" if first is not None else ""
    raise DataError(
        f"feature column {column!r} holds text{example}; a feature must be numeric. List only numeric "
        f"columns in feature_columns (numeric ones here: {', '.join(map(repr, numeric)) or 'none'}), or declare "
        f"column_types={{{column!r}: 'float'}} to have its bad values reported row by row"
    )


def _parse_column(values: list[str], kind: ColumnType, na: frozenset) -> tuple[np.ndarray, list[int]]:
    """The parsed values and the indices of rows whose value does not parse."""
    if kind == "string":
        return np.array([None if v in na else v for v in values], dtype=object), []
    out = _fast_floats(["nan" if v in na else v for v in values])
    bad = []
    if out is None or (kind == "int" and not _all_ints([v for v in values if v not in na])):
        # Slow path, value by value, only to find which values are bad.
        parse_ok = _INT.fullmatch if kind == "int" else _is_float
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            if v in na:
                out[i] = np.nan
            elif parse_ok(v):
                out[i] = float(v)
            else:
                out[i] = np.nan
                bad.append(i)
    if kind == "int" and not np.isnan(out).any():
        # Keeps labels like 5 printed as 5, not 5.0, in label messages.
        return out.astype(np.int64), bad
    return out, bad


def _drop_bad_values(table: _Table, bad: dict, types: dict, values: dict, on_bad_data, report) -> np.ndarray:
    """A mask of the rows to keep; raises on the first bad value unless skipping."""
    keep = np.ones(len(table.rows), dtype=bool)
    found = sorted((i, column) for column, rows in bad.items() for i in rows)
    if not found:
        return keep

    def describe(i: int, column: str) -> str:
        return f"{values[column][i]!r} is not {'an int' if types[column] == 'int' else 'a float'}"

    if on_bad_data == "error":
        i, column = found[0]
        raise DataError(
            f"{table.place(i, column)}: {describe(i, column)} (the declared type of {column!r}); fix the value, "
            "or set on_bad_data='skip' to skip such rows"
        )
    first_per_row = {}
    for i, column in found:
        first_per_row.setdefault(i, column)
    keep[list(first_per_row)] = False
    examples = [f"{table.file_line(i)} {where(column=c)}: {describe(i, c)}" for i, c in first_per_row.items()]
    report.add("rows skipped: values that do not parse", len(first_per_row), examples)
    return keep
