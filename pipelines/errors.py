"""The error bad data raises: it names the file, column or row, and says what to do.

Raised before training starts, so a user never meets a bad row as a
TensorFlow stack trace from deep inside an iterator.
"""

from __future__ import annotations


class DataError(ValueError):
    """Data that cannot be used as it is (a bad file, column, row or split).

    The message names where the problem is (`data.csv, line 17, column
    'age'`) and what would fix it (a missing-value policy, `on_bad_data:
    skip`, a download command).
    """


def where(file: str | None = None, row: int | None = None, column: str | None = None, record: int | None = None) -> str:
    """`data.csv, line 17, column 'age'`: the place of a bad value, for messages."""
    parts = []
    if file is not None:
        parts.append(str(file))
    if row is not None:
        parts.append(f"row {row}")
    if record is not None:
        parts.append(f"record {record}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)
