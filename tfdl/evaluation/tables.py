"""Markdown tables for the run report."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """The lines of a Markdown table.

    >>> markdown_table(["a", "b"], [[1, 2]])
    ['| a | b |', '|---|---|', '| 1 | 2 |']
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
