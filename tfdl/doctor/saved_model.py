"""`tfdl doctor` on a SavedModel folder: signatures clients can call by name, and ops TFLite can run.

TF Serving clients, `tfdl serve` and the TFLite converter address a
SavedModel through its `serving_default` signature and the names of its
inputs and outputs. A `tf.function` saved as is, or a Keras model exported
without names, gets positional keys (`args_0`, `output_0`) that say nothing
to a client and change when the model does. Ops that TFLite has no builtin
for are found by a builtins-only conversion and attributed to their layers.
"""

from __future__ import annotations

import re
from pathlib import Path

from tfdl.doctor.findings import DoctorReport, Finding, tflite_op_finding

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


def diagnose_saved_model(path: Path | str, *, convert: bool = True) -> DoctorReport:
    """Check a SavedModel's signatures and, with `convert`, its ops against TFLite builtins.

    Args:
        path: the SavedModel folder (holding `saved_model.pb`).
        convert: also try a builtins-only TFLite conversion of `serving_default`.

    Returns:
        The report.

    Raises:
        FileNotFoundError: `path` holds no `saved_model.pb`.
    """
    import tensorflow as tf

    from tfdl.export.op_attribution import builtin_attributions

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{path} is not a SavedModel folder (no saved_model.pb)")
    report = DoctorReport(str(path), "saved_model", checks=["signature"])
    signatures = tf.saved_model.load(str(path)).signatures
    report.findings += signature_findings(signatures)
    if convert and SERVING_SIGNATURE in signatures:
        report.checks.append("tflite_ops")
        try:
            attributions = builtin_attributions(path, signature=SERVING_SIGNATURE)
        except ValueError as error:
            report.findings.append(Finding("tflite_ops", None, str(error).splitlines()[0],
                                           "convert with tfdl.export.convert_tflite to see the whole error"))
            return report
        report.findings += [tflite_op_finding(a) for a in attributions]
    return report
