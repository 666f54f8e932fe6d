"""Load a LiteRT (TFLite) interpreter from whichever runtime is installed.

Tries `ai_edge_litert` (maintained), then `tflite_runtime` (old devices),
then `tf.lite`. Imports no TensorFlow unless the first two are missing.
"""

from __future__ import annotations

from pathlib import Path


def load_interpreter(path: Path | str, num_threads: int | None = None):
    """Return an allocated interpreter for the `.tflite` file at `path`."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter
