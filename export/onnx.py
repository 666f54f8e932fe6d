"""ONNX export of a SavedModel through tf2onnx, for runtimes outside TensorFlow (ONNX Runtime, TensorRT).

Optional: it needs the `onnx` extra (`pip install "tfdl[onnx]"`: tf2onnx and
onnxruntime). The converter runs in its own process: tf2onnx rewrites
TensorFlow graphs globally and keeps state a training process should not
share. Input and output names are the SavedModel signature's, so an ONNX
client sends the same keys a TF Serving client does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_INSTALL = 'install the `onnx` extra: pip install "tfdl[onnx]" (tf2onnx and onnxruntime)'


class ONNXExportError(RuntimeError):
    """tf2onnx is missing, or it could not convert the model (its message is kept)."""


def to_onnx(saved_model_dir: Path | str, path: Path | str, *, signature: str = "serving_default", opset: int | None = None) -> Path:
    """Convert one signature of the SavedModel at `saved_model_dir` to an ONNX file at `path`."""
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        raise ONNXExportError(f"ONNX export needs tf2onnx; {_INSTALL}") from None
    path = Path(path)
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model_dir),
               "--signature_def", signature, "--output", str(path)]
    if opset is not None:
        command += ["--opset", str(opset)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not path.exists():
        tail = "\n".join(line for line in result.stderr.splitlines() if "ERROR" in line or "Error" in line)[-2000:]
        raise ONNXExportError(f"tf2onnx could not convert {saved_model_dir} (signature {signature}):\n{tail or result.stderr[-2000:]}")
    return path


def onnx_outputs(path: Path | str, inputs: dict) -> dict:
    """Run the ONNX model at `path` with ONNX Runtime on `inputs` (keyed by input name)."""
    try:
        import onnxruntime
    except ImportError:
        raise ONNXExportError(f"running ONNX models needs onnxruntime; {_INSTALL}") from None
    import numpy as np

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {k: np.asarray(v) for k, v in inputs.items()})
    return dict(zip(names, values))
