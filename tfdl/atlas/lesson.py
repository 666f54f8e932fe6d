"""What an atlas example records while it runs: measured numbers, tables, figures and the checks of its lesson.

An example receives a `Lesson`, runs its small experiment, and records what
it measured; nothing on an atlas page is typed by hand. `lesson.full` says
whether to run the full budget (the figures of the documentation site) or
the fast one (the test suite); `lesson.budget(fast, full)` picks between two
values. A check is the lesson in one line ("the perceptron does not fit
XOR"): the test suite fails when one does not hold, and `tfdl atlas run`
exits non-zero.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One claim of the lesson and whether the run showed it."""

    claim: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class FigureRecord:
    file: str  # relative to the entry's output folder
    caption: str


@dataclass
class Lesson:
    """The record of one atlas example's run.

    Attributes:
        out_dir: where figures are written (created on first use).
        full: run the full budget (site figures) instead of the fast one.
        seed: the seed every random draw of the example starts from.
    """

    out_dir: Path
    full: bool = False
    seed: int = 0
    numbers: dict[str, float] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureRecord] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def budget(self, fast: T, full: T) -> T:
        """`full` when running the full budget, else `fast`."""
        return full if self.full else fast

    def number(self, name: str, value: float) -> float:
        """Record a measured figure under `name` and return it."""
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"lesson.number({name!r}, {value!r}): give a real number")
        value = float(value)
        if name in self.numbers:
            raise ValueError(f"lesson.number: {name!r} is recorded twice; give each figure its own name")
        self.numbers[name] = value
        return value

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Record a table; numbers are shown with 4 significant digits."""
        width = len(headers)
        for row in rows:
            if len(row) != width:
                raise ValueError(f"lesson.table({title!r}): row {list(row)} has {len(row)} cells, headers {width}")
        self.tables.append(
            Table(title, tuple(str(h) for h in headers), tuple(tuple(_cell(c) for c in row) for row in rows))
        )

    def figure(self, fig, name: str, caption: str) -> Path:
        """Save a matplotlib figure as `NAME.png` in the output folder, close it, and record it."""
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"lesson.figure: name {name!r} must be letters, digits, '_' or '-' (it names a file)")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{name}.png"
        fig.savefig(path, dpi=self.budget(72, 110), bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.figures.append(FigureRecord(path.name, caption))
        return path

    def check(self, claim: str, passed: bool, detail: str = "") -> bool:
        """Record whether the run showed `claim`; returns `passed`."""
        self.checks.append(Check(claim, bool(passed), detail))
        return bool(passed)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"
