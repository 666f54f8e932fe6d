"""Run atlas examples and keep what they recorded as `result.json` beside their figures.

`run_entry` runs one example under a fixed seed and never lets its failure
pass silently: an exception is kept with its traceback in the result (so a
batch of entries runs to the end) and `EntryResult.ok` is false, as it is
when any check of the lesson does not hold.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tfdl.atlas.entry import Entry
from tfdl.atlas.lesson import Check, FigureRecord, Lesson, Table

RESULT_FILE = "result.json"


@dataclass
class EntryResult:
    """What one run of an entry's example produced."""

    number: int
    mode: str  # "fast" or "full"
    seconds: float
    numbers: dict[str, float] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureRecord] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(check.passed for check in self.checks)

    def failures(self) -> list[str]:
        """What went wrong, one line per failed check, plus the error's traceback."""
        lines = [f"check failed: {c.claim} ({c.detail})" for c in self.checks if not c.passed]
        if self.error is not None:
            lines.append(self.error)
        return lines

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / RESULT_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> "EntryResult":
        data = json.loads((folder / RESULT_FILE).read_text())
        return cls(
            number=data["number"],
            mode=data["mode"],
            seconds=data["seconds"],
            numbers=data["numbers"],
            tables=[Table(t["title"], tuple(t["headers"]), tuple(tuple(r) for r in t["rows"])) for t in data["tables"]],
            figures=[FigureRecord(**f) for f in data["figures"]],
            checks=[Check(**c) for c in data["checks"]],
            error=data["error"],
        )


def entry_folder(root: Path, number: int) -> Path:
    """Where entry `number` writes under `root`: `root/NNN/`."""
    return Path(root) / f"{number:03d}"


def run_entry(entry: Entry, root: Path, full: bool = False, seed: int = 0) -> EntryResult:
    """Run `entry`'s example with its outputs under `entry_folder(root, entry.number)`."""
    import keras
    import matplotlib

    matplotlib.use("Agg")
    folder = entry_folder(root, entry.number)
    lesson = Lesson(folder, full=full, seed=seed)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    error = None
    try:
        entry.example(lesson)
        if not lesson.checks:
            error = f"entry {entry.number} ({entry.name}) recorded no check: an example must show its lesson"
    except Exception:  # kept in the result with its traceback; a batch runs on
        error = traceback.format_exc()
    finally:
        keras.backend.clear_session()
    result = EntryResult(
        number=entry.number,
        mode="full" if full else "fast",
        seconds=round(time.perf_counter() - start, 3),
        numbers=lesson.numbers,
        tables=lesson.tables,
        figures=lesson.figures,
        checks=lesson.checks,
        error=error,
    )
    result.save(folder)
    return result
