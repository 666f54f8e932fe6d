"""`tfdl doctor` on a `.tflite` file: which ops need more than the builtins, and whether LiteRT here runs it.

Select TF (Flex) ops run only on a runtime with the Flex delegate linked in,
which the pip runtimes (ai-edge-litert, tf.lite) lack; other custom ops need
a runtime with them registered. Each is named with the layer its tensors
come from. The file is then run once per signature on zeros with the
runtime the edge runner would use, which is the check that settles it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tfdl.doctor.findings import DoctorReport, Finding


def op_findings(flatbuffer: bytes) -> list[Finding]:
    """Flex ops (with their layers) and other custom ops in a `.tflite` flatbuffer.

    Args:
        flatbuffer: the file's bytes.

    Returns:
        One finding per Flex op and layer, and per other custom op.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    from tfdl.export.op_attribution import flex_attributions
    from tfdl.export.tflite import FLEX_RUNTIME_NOTE

    findings = [
        Finding("flex_ops", a.layer, f"{a.op} is a Select TF (Flex) op" + (f" (node {a.node})" if a.node else "")
                + f": {FLEX_RUNTIME_NOTE}", a.fix or "convert without allow_tf_ops, changing the layer")
        for a in flex_attributions(flatbuffer)
    ]
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes = {model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())}
    for code in sorted(c.decode() for c in codes if c and not c.startswith(b"Flex")):
        findings.append(Finding("custom_ops", code, f"custom op {code} runs only where it is registered with the "
                                "interpreter", "register its kernel with your LiteRT build, or change the layer "
                                "that produces it to builtins"))
    return findings


def _zeros(detail: dict) -> np.ndarray:
    shape = [max(int(size), 1) for size in detail.get("shape_signature", detail["shape"])]
    dtype = np.dtype(detail["dtype"])
    return np.full(shape, b"", dtype=object) if dtype.kind in "SOU" else np.zeros(shape, dtype)


def _runtime_name() -> str:
    # The order load_interpreter tries them in.
    for module in ("ai_edge_litert", "tflite_runtime"):
        if importlib.util.find_spec(module) is not None:
            return module
    return "tf.lite"


def runtime_findings(path: Path | str) -> list[Finding]:
    """Load the file with the edge runner's LiteRT runtime and invoke each signature once on zeros.

    Args:
        path: the `.tflite` file.

    Returns:
        A finding when the runtime cannot load the file, the file has no
        signatures, or a signature fails to run.
    """
    from tfdl.export.litert import load_interpreter

    runtime = _runtime_name()
    try:
        interpreter = load_interpreter(path)
    except (ValueError, RuntimeError) as error:
        # Flex ops that need a kernel at allocation fail here, before any call.
        return [Finding("runtime", None, f"{runtime} cannot load it: {str(error).strip().splitlines()[0]}",
                        "keep the model on TFLite builtins (see the op findings), or run it on a runtime "
                        "built with what it needs")]
    keys = list(interpreter.get_signature_list())
    if not keys:
        return [Finding("runtime", None, "the file has no signatures, so inputs can only be fed by index",
                        "convert from a SavedModel (tfdl.export.convert_tflite keeps serving_default)")]
    findings = []
    for key in keys:
        runner = interpreter.get_signature_runner(key)
        try:
            runner(**{name: _zeros(detail) for name, detail in runner.get_input_details().items()})
        except (RuntimeError, ValueError) as error:
            findings.append(Finding("runtime", key, f"{runtime} cannot run signature '{key}': "
                                    f"{str(error).strip().splitlines()[0]}",
                                    "keep the model on builtin ops (see the op findings), or run it on a runtime "
                                    "built with what it needs"))
    return findings


def diagnose_tflite(path: Path | str) -> DoctorReport:
    """Check a `.tflite` file's ops and run it once with the local LiteRT runtime.

    Args:
        path: the `.tflite` file.

    Returns:
        The report.

    Raises:
        FileNotFoundError: there is no file at `path`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .tflite file at {path}")
    report = DoctorReport(str(path), "tflite", checks=["flex_ops", "custom_ops", "runtime"])
    report.findings += op_findings(path.read_bytes()) + runtime_findings(path)
    return report
