"""The documentation pages of the atlas and of the API reference, written as MyST Markdown for Sphinx.

An entry's page is made from the entry (question, answer, formula, the
example's code, links to the tfdl objects that implement it) and from what
its example recorded when it ran (`EntryResult`): numbers, tables, figures
and the checks of its lesson. Nothing on a page is typed by hand.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Iterable

from tfdl.atlas.entry import Entry
from tfdl.atlas.questions import QUESTIONS
from tfdl.atlas.runner import EntryResult

# The packages whose public names (`__all__`) the API reference documents.
API_PACKAGES: tuple[str, ...] = (
    "tfdl",
    "tfdl.pipelines",
    "tfdl.layers",
    "tfdl.losses",
    "tfdl.schedules",
    "tfdl.models",
    "tfdl.training",
    "tfdl.evaluation",
    "tfdl.detection",
    "tfdl.export",
    "tfdl.serving",
    "tfdl.rl",
    "tfdl.doctor",
    "tfdl.atlas",
)


def page_name(number: int) -> str:
    return f"{number:03d}"


def entry_page(entry: Entry, result: EntryResult) -> str:
    """The Markdown page of one entry, with the outputs of `result` (figures under `NNN/`)."""
    parts = [f"# {entry.number}. {entry.question}", "", entry.answer, ""]
    if entry.formula:
        parts += ["$$", entry.formula, "$$", ""]
    parts += ["## Run it", "", "```console", f"tfdl atlas run {entry.number}          # the fast budget of the test suite"]
    parts += [f"tfdl atlas run {entry.number} --full   # the full budget", "```", ""]
    if entry.configs:
        runs = ", ".join(f"`tfdl run {name}`" for name in entry.configs)
        parts += [f"At full size, with a report and an export: {runs}.", ""]
    parts += ["The example:", "", "```python", entry.source.rstrip(), "```", ""]
    parts += _result_section(entry, result)
    if entry.pytorch:
        parts += ["## Beside PyTorch", "", entry.pytorch, ""]
    if entry.see:
        parts += ["## In tfdl", ""] + [f"- {{py:obj}}`{name}`" for name in entry.see] + [""]
    return "\n".join(parts)


def _result_section(entry: Entry, result: EntryResult) -> list[str]:
    parts = [f"## What it produced ({result.mode} budget, {result.seconds:.1f} s)", ""]
    if result.error is not None:
        # A page never hides a broken example.
        parts += ["The example failed:", "", "```text", result.error.rstrip(), "```", ""]
    for check in result.checks:
        mark = "holds" if check.passed else "DOES NOT HOLD"
        detail = f": {check.detail}" if check.detail else ""
        parts.append(f"- **{mark}**: {check.claim}{detail}")
    parts.append("")
    if result.numbers:
        parts += _markdown_table(("measured", "value"), [(name, f"{value:.4g}") for name, value in result.numbers.items()])
    for table in result.tables:
        parts += [f"**{table.title}**", ""] + _markdown_table(table.headers, table.rows)
    for figure in result.figures:
        parts += [f"![{figure.caption}]({page_name(entry.number)}/{figure.file})", "", f"*{figure.caption}*", ""]
    return parts


def _markdown_table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines + [""]


def atlas_index(entries: list[Entry], results: dict[int, EntryResult]) -> str:
    """The atlas's front page: every question, linked to its entry."""
    by_number = {entry.number: entry for entry in entries}
    lines = [
        "# The atlas",
        "",
        "Each of the hundred questions below is answered in our own words and shown by a small experiment "
        "that tfdl runs: the numbers, tables and figures on each page were produced by that page's example "
        "(`tfdl atlas run N`), and its checks are the lesson the example must show.",
        "",
        "```{toctree}",
        ":hidden:",
        "",
        *[page_name(n) for n in sorted(by_number)],
        "```",
        "",
    ]
    for number, question in enumerate(QUESTIONS, start=1):
        if number in by_number:
            result = results.get(number)
            status = "" if result is None or result.ok else " (its example failed)"
            lines.append(f"{number}. [{question}]({page_name(number)}.md){status}")
        else:
            lines.append(f"{number}. {question} (no entry yet)")
    return "\n".join(lines) + "\n"


def api_pages(packages: Iterable[str] = API_PACKAGES) -> dict[str, str]:
    """`{file name: Markdown}`: one API reference page per package, documenting each name of its `__all__`."""
    pages = {}
    for package in packages:
        module = importlib.import_module(package)
        # autodoc writes reStructuredText, so its directives go in an eval-rst block.
        lines = [f"# `{package}`", "", "```{eval-rst}", f".. automodule:: {package}", "   :no-members:", ""]
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            if inspect.isclass(obj) or callable(obj):
                kind = "autoclass" if inspect.isclass(obj) else "autofunction"
                lines += [f".. {kind}:: {package}.{name}", ""]
            else:
                # A constant: autodoc would show its type's docstring (int's, dict's).
                lines += [f".. py:data:: {package}.{name}", f"   :type: {type(obj).__name__}", ""]
        pages[f"{package}.md"] = "\n".join(lines + ["```", ""])
    index = ["# API reference", "", "```{toctree}", ":maxdepth: 1", "", *[p.removesuffix(".md") for p in pages], "```", ""]
    pages["index.md"] = "\n".join(index)
    return pages
