"""`tfdl doctor` on a SavedModel folder: signatures clients can call by name, and ops TFLite can run.

TF Serving clients, `tfdl serve` and the TFLite converter address a
SavedModel through its `serving_default` signature and the names of its
inputs and outputs. A `tf.function` saved as is, or a Keras model exported
without names, gets positional keys (`args_0`, `output_0`) that say nothing
to a client and change when the model does. Ops that TFLite has no builtin
for are found by a builtins-only conversion and attributed to their layers;
a recurrent layer's loop gets the fix that fits the signature (fix the
sequence length, or unroll over the fixed one).

Whether such ops are a problem depends on what the SavedModel is for, which
its `manifest.json` (written by tfdl's export) records under `tflite`:
- a list of modes: the export converts it to TFLite, so they are problems;
- `[]`: the export deliberately writes no TFLite file (`export.tflite: []`,
  e.g. a text model that takes raw strings), so they are reported as
  notes, which do not fail the exit status;
- no manifest, or one without `tflite` (a SavedModel from other tools):
  the intent is unknown and they are problems, as for any SavedModel.
A manifest that is not valid JSON is itself a problem (`tfdl serve`
refuses the version).
"""

from __future__ import annotations

import re
from pathlib import Path

from tfdl.doctor.findings import DoctorReport, Finding, tflite_op_finding

# Why a TFLite finding is only a note for a SavedModel whose export made no TFLite file.
_NO_TFLITE_TARGET = ("a note, not a problem: manifest.json says this export writes no TFLite file, "
                     "export.tflite is []")

SERVING_SIGNATURE = "serving_default"
# Keys TensorFlow or Keras generate when nothing was named.
_GENERATED_INPUT = re.compile(r"^(args_\d+|input_\d+|input_layer(_\d+)?|keras_tensor(_\d+)?)$")
_GENERATED_OUTPUT = re.compile(r"^output_\d+$")


def signature_findings(signatures) -> list[Finding]:
    """Missing `serving_default`, and input or output keys nobody chose.

    Args:
        signatures: a loaded SavedModel's `.signatures` mapping.

    Returns:
        One finding for a missing `serving_default` and one per signature
        with generated input or output keys.
    """
    findings = []
    if SERVING_SIGNATURE not in signatures:
        findings.append(Finding(
            "signature", None, f"no '{SERVING_SIGNATURE}' signature (it has {sorted(signatures) or 'none'}); "
            "TF Serving, tfdl serve and the TFLite converter look for it",
            "export with tfdl.export.export_saved_model, or pass signatures={'serving_default': fn} "
            "to tf.saved_model.save"))
    for key, function in sorted(signatures.items()):
        inputs = sorted(name for name in function.structured_input_signature[1] if _GENERATED_INPUT.match(name))
        outputs = sorted(name for name in function.structured_outputs if _GENERATED_OUTPUT.match(name))
        if inputs:
            findings.append(Finding(
                "signature", key, f"input keys {inputs} are generated, not names a client can rely on",
                "name each input: keras.Input(name=...) or tf.TensorSpec(..., name=...) in the input signature"))
        if outputs:
            findings.append(Finding(
                "signature", key, f"output keys {outputs} are positional, not the model's output names",
                "return a dict {name: tensor} from the serving function (tfdl.export.export_saved_model "
                "names them after the Keras outputs)"))
    return findings


def tflite_targets(path: Path | str) -> tuple[list[str] | None, list[Finding]]:
    """The TFLite modes the export of the SavedModel at `path` was made for, from its `manifest.json`.

    Args:
        path: the SavedModel folder.

    Returns:
        The modes (`[]`: deliberately none; None: not recorded, or no
        manifest) and a finding when the manifest cannot be read.
    """
    from tfdl.export.manifest import ManifestMismatch, read_manifest

    try:
        manifest = read_manifest(path)
    except ManifestMismatch as error:
        return None, [Finding("manifest", None, str(error).split(";")[0],
                              "re-export the version: tfdl serve refuses it as it is")]
    targets = None if manifest is None else manifest.get("tflite")
    return (list(targets) if isinstance(targets, list) else None), []


def tflite_findings(path: Path | str, signature) -> list[Finding]:
    """Convert the SavedModel's `serving_default` with TFLite builtins only; one finding per op that stops it.

    Args:
        path: the SavedModel folder.
        signature: its loaded `serving_default` concrete function.

    Returns:
        The findings, recurrent ops with the fix their signature calls for;
        one finding when the conversion fails without naming an op.
    """
    from tfdl.export.op_attribution import builtin_attributions, fixed_length_inputs, with_recurrent_fix

    try:
        attributions = builtin_attributions(path, signature=SERVING_SIGNATURE)
    except ValueError as error:
        return [Finding("tflite_ops", None, str(error).splitlines()[0],
                        "convert with tfdl.export.convert_tflite to see the whole error")]
    specs = signature.structured_input_signature[1].values()
    fixed = fixed_length_inputs((spec.dtype.name, spec.shape.as_list() if spec.shape.rank is not None else None)
                                for spec in specs)
    return [tflite_op_finding(a) for a in with_recurrent_fix(attributions, fixed)]


def diagnose_saved_model(path: Path | str, *, convert: bool = True) -> DoctorReport:
    """Check a SavedModel's signatures and, with `convert`, its ops against TFLite builtins.

    Args:
        path: the SavedModel folder (holding `saved_model.pb`).
        convert: also try a builtins-only TFLite conversion of `serving_default`.

    Returns:
        The report; TFLite findings are notes when `manifest.json` says the
        export writes no TFLite file (see the module docstring).

    Raises:
        FileNotFoundError: `path` holds no `saved_model.pb`.
    """
    import tensorflow as tf

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{path} is not a SavedModel folder (no saved_model.pb)")
    report = DoctorReport(str(path), "saved_model", checks=["signature"])
    signatures = tf.saved_model.load(str(path)).signatures
    report.findings += signature_findings(signatures)
    targets, unreadable = tflite_targets(path)
    report.findings += unreadable
    if convert and SERVING_SIGNATURE in signatures:
        report.checks.append("tflite_ops")
        found = tflite_findings(path, signatures[SERVING_SIGNATURE])
        report.findings += [f.as_note(_NO_TFLITE_TARGET) for f in found] if targets == [] else found
    return report
