"""TFLite conversion of an exported SavedModel (float32 in this release)."""

from __future__ import annotations

from pathlib import Path


def to_tflite(saved_model_dir: Path | str, path: Path | str) -> Path:
    """Convert the SavedModel at `saved_model_dir` to a float32 `.tflite` file.

    Converting the SavedModel (not the Keras object) keeps its signatures, so
    the `.tflite` file has a `serving_default` signature runner with the same
    input and output names.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    path = Path(path)
    path.write_bytes(converter.convert())
    return path
