"""SavedModel export with an explicit `serving_default` signature.

The signature has fixed input specs (names and dtypes of the Keras inputs,
batch dimension free) and returns a dict keyed by the Keras output names, so
clients see `{"pixels": ...} -> {"probabilities": ...}` rather than
`output_0`. The result loads in TensorFlow Serving unchanged.
"""

from __future__ import annotations

from pathlib import Path


def input_signature(model) -> list:
    """`tf.TensorSpec`s for the model's inputs, batch dimension free."""
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
    """Write `model` as a SavedModel with a `serving_default` signature."""
    import keras

    directory = Path(directory)
    specs = input_signature(model)
    names = [spec.name for spec in specs]

    takes_dict = isinstance(model.input, dict) or len(specs) > 1

    def serve(*args):
        return named_outputs(model, model(dict(zip(names, args)) if takes_dict else args[0], training=False))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=specs)
    archive.write_out(str(directory), verbose=False)
    return directory
