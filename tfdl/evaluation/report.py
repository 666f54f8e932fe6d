"""The run report: a Markdown page a person reads after `tfdl run`.

It holds the training summary, the test metrics per class, the learning
curves and confusion matrix (PNG, beside it), the parity of the exported
artifacts with Keras, and how to serve the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfdl.evaluation.tables import markdown_table as _table


@dataclass
class RunSummary:
    """What the report shows; every figure comes from the run itself."""

    name: str
    model: str
    strategy: str
    epochs_run: int
    best_epoch: int
    train_seconds: float
    test_loss: float | None
    test_section: list[str]  # the task's tables (tfdl.tasks.TaskEvaluation.section)
    plots: dict[str, Path]
    parity: dict
    artifacts: dict[str, Path]
    serve_commands: list[str] = field(default_factory=list)
    tflite: list[dict] = field(default_factory=list)
    data_sizes: dict[str, int] = field(default_factory=dict)
    data_report: list[str] = field(default_factory=list)
    export_notes: list[str] = field(default_factory=list)


def _data_section(summary: RunSummary) -> list[str]:
    if not summary.data_sizes:
        return []
    sizes = ", ".join(f"{n} {split}" for split, n in summary.data_sizes.items())
    lines = ["## Data", "", f"Examples: {sizes}.", ""]
    if summary.data_report:
        lines += ["What the data stage changed:", "", *[f"- {line}" for line in summary.data_report], ""]
    else:
        lines += ["Nothing was dropped, filled or skipped.", ""]
    return lines


def _number(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _tflite_section(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## TFLite modes", "", "Each file run by LiteRT on the raw test split, against Keras.", ""]
    lines += _table(
        ["mode", "size KiB", "max abs diff", "argmax agreement", "accuracy", "ms/example (p50)", "bound", "met"],
        [[r["mode"], f"{r['bytes'] / 1024:.1f}", _number(r["max_abs_diff"], ".2e"),
          _number(r["argmax_agreement"], ".4f"), _number(r["accuracy"], ".4f"),
          _number(r["latency_ms_p50"], ".3f"), r["criterion"],
          {True: "yes", False: "NO", None: "not run"}[r["passed"]]] for r in rows],
    )
    notes = [f"- {r['mode']}: {r['note']}" for r in rows if r.get("note")]
    return lines + ([""] + notes if notes else []) + [""]


def _test_section(summary: RunSummary) -> list[str]:
    loss = [] if summary.test_loss is None else [f"Loss {summary.test_loss:.4f}.", ""]
    return ["## Test set", "", *loss, *summary.test_section, ""]


def render_report(summary: RunSummary, relative_to: Path) -> str:
    lines = [
        f"# tfdl run `{summary.name}`",
        "",
        f"Model `{summary.model}`, trained under {summary.strategy}: "
        f"{summary.epochs_run} epochs in {summary.train_seconds:.1f} s, best epoch {summary.best_epoch} "
        "(its weights are the ones evaluated and exported).",
        "",
        *_data_section(summary),
        *_test_section(summary),
    ]
    for title, path in summary.plots.items():
        lines += [f"## {title}", "", f"![{title}]({path.relative_to(relative_to).as_posix()})", ""]
    targets = summary.parity.get("targets", {})
    if targets:
        lines += ["## Export parity with Keras", ""]
        lines += _table(
            ["artifact", "max abs diff", "argmax agreement", f"within {summary.parity.get('atol')}"],
            [[t, f"{r['max_abs_diff']:.2e}", _number(r.get("argmax_agreement"), ".4f"), "yes" if r["passed"] else "NO"]
             for t, r in targets.items()],
        )
        lines += ["", f"On the {summary.parity.get('examples')} raw test examples.", ""]
    lines += _tflite_section(summary.tflite)
    if summary.export_notes:
        lines += ["## Export notes", "", *[f"- {note}" for note in summary.export_notes], ""]
    lines += ["## Artifacts", ""]
    lines += _table(
        ["artifact", "path"],
        [[k, f"`{p.relative_to(relative_to).as_posix()}`"] for k, p in summary.artifacts.items()],
    )
    if summary.serve_commands:
        lines += ["", "## Serve it", "", "```sh", *summary.serve_commands, "```"]
    return "\n".join(lines) + "\n"


def write_report(summary: RunSummary, path: Path) -> Path:
    path.write_text(render_report(summary, relative_to=path.parent))
    return path
