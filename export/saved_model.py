"""SavedModel export with an explicit `serving_default` signature.

The signature has fixed input specs (names and dtypes of the Keras inputs,
batch dimension free) and returns a dict keyed by the Keras output names, so
clients see `{"pixels": ...} -> {"probabilities": ...}` rather than
`output_0`. The result loads in TensorFlow Serving unchanged.
"""

from __future__ import annotations

from pathlib import Path


def input_signature(model) -> list:
    """The `tf.TensorSpec` of each of the model's inputs, batch dimension free."""
    import tensorflow as tf

    return [
        tf.TensorSpec(shape=(None, *t.shape[1:]), dtype=t.dtype, name=t.name)
        for t in model.inputs
    ]


def named_outputs(model, outputs) -> dict:
    """A model's outputs as a dict keyed by output name, whatever structure the model returns."""
    if isinstance(outputs, dict):
        return dict(outputs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return dict(zip(model.output_names, outputs))


def export_saved_model(model, directory: Path | str) -> Path:
    """Write `model` as a SavedModel with a `serving_default` signature.

    The plain case of `tfdl.export.serving_model.export_serving_model`
    (which adds classify/regress signatures and warm-up records).
    """
    from tfdl.export.serving_model import export_serving_model

    return export_serving_model(model, directory)
