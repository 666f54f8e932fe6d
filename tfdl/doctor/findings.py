"""What `tfdl doctor` reports: each problem found in a model file, with the layer and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

Severity = Literal["problem", "note"]


@dataclass(frozen=True)
class Finding:
    """One problem in a model file, or a note about one that does not matter for this file.

    Attributes:
        check: which check found it: `unsafe` (needs `safe_mode=False`),
            `unregistered`, `config` (get_config misses a constructor
            argument), `load`, `unbuilt`, `signature`, `tflite_ops`,
            `flex_ops`, `custom_ops`, `runtime` or `manifest` (a SavedModel's
            manifest.json cannot be read).
        layer: the Keras layer (or signature, or op) it concerns; None when
            it concerns the whole file.
        problem: what is wrong.
        fix: what to do about it.
        severity: `problem` (fails `tfdl doctor`'s exit status) or `note`
            (true of the file, but not a problem for what it was made for:
            TFLite ops of a SavedModel whose export made no TFLite file).
    """

    check: str
    layer: str | None
    problem: str
    fix: str
    severity: Severity = "problem"

    def describe(self) -> str:
        where = f" [{self.layer}]" if self.layer else ""
        return f"{self.check}{where}: {self.problem}. Fix: {self.fix}"

    def as_note(self, why: str) -> "Finding":
        """This finding as a note, its problem followed by `why` it is not a problem here."""
        return replace(self, problem=f"{self.problem} ({why})", severity="note")


def tflite_op_finding(attribution) -> Finding:
    """The finding for one op a builtins-only TFLite conversion stops on.

    Args:
        attribution: a `tfdl.export.op_attribution.OpAttribution`.

    Returns:
        A `tflite_ops` finding naming the op, its node and layer, with the known fix.
    """
    node = f" (node {attribution.node})" if attribution.node else ""
    return Finding("tflite_ops", attribution.layer, f"op {attribution.op} is not a TFLite builtin{node}",
                   attribution.fix or "allow Select TF ops (export.tflite_tf_ops: true) and run on a runtime "
                   "with the Flex delegate")


@dataclass
class DoctorReport:
    """Everything `tfdl doctor` checked in one file and what it found.

    Attributes:
        path: the file or folder checked.
        kind: `keras`, `saved_model` or `tflite`.
        checks: the names of the checks that ran, in order.
        findings: what was found: problems, and notes (`Finding.severity`);
            no problems when the file is clean.
        notes: checks that could not run (or ran on part of the model), and why.
    """

    path: str
    kind: str
    checks: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "ok": self.ok, "checks": self.checks,
                "findings": [asdict(f) for f in self.findings], "notes": self.notes}

    def describe(self) -> str:
        head = f"{self.path} ({self.kind}): checked {', '.join(self.checks) or 'nothing'}"
        head += "".join(f"\nnote: {note}" for note in self.notes)
        head += "".join(f"\nnote: {f.describe()}" for f in self.findings if f.severity == "note")
        if self.ok:
            return f"{head}\nno problems found"
        lines = [f"- {finding.describe()}" for finding in self.problems]
        return "\n".join([head, f"{len(lines)} problem(s):", *lines])
