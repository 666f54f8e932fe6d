"""What the data stage did to the user's data, so nothing is lost silently.

Every row dropped, value filled, file or record skipped is counted here with
a few examples of where; the run report and `metrics.json` show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Examples of where a problem was kept per entry; the count is always exact.
_MAX_EXAMPLES = 5


@dataclass
class ReportEntry:
    """One kind of change: `count` times `what` (e.g. "rows dropped: missing values")."""

    what: str
    count: int
    examples: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shown = f" (e.g. {'; '.join(self.examples)})" if self.examples else ""
        return f"{self.what}: {self.count}{shown}"


@dataclass
class DataReport:
    """The changes made to the data, in the order they happened."""

    entries: list[ReportEntry] = field(default_factory=list)

    def add(self, what: str, count: int, examples=()) -> None:
        """Record `count` occurrences of `what`; zero counts are not recorded."""
        if count <= 0:
            return
        self.entries.append(ReportEntry(what, int(count), [str(e) for e in list(examples)[:_MAX_EXAMPLES]]))

    def extend(self, other: "DataReport") -> None:
        self.entries.extend(other.entries)

    def count(self, what: str) -> int:
        """Total count of entries whose description is `what`."""
        return sum(e.count for e in self.entries if e.what == what)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def lines(self) -> list[str]:
        return [entry.describe() for entry in self.entries]

    def to_dict(self) -> list[dict]:
        return [{"what": e.what, "count": e.count, "examples": e.examples} for e in self.entries]
