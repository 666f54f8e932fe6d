"""The model as served: raw input -> preprocessing -> trained model.

Training reads normalized data from the pipeline; serving gets raw rows. The
inference model puts the pipeline's fitted preprocessing layer in front of a
clean (uncompiled) copy of the trained model, so every artifact takes raw
input and carries no optimizer state. Inputs and outputs keep the trained
model's names: they become the served signature's keys.
"""

from __future__ import annotations


def inference_model(model, preprocessing=None, name: str | None = None, raw_shape=None, raw_dtype=None):
    """Return `raw input -> preprocessing -> model` as one functional model.

    `raw_shape` and `raw_dtype` describe one raw input when preprocessing
    changes it (a string in, token ids out); by default it is shaped like
    the model's input.
    """
    import keras

    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    if preprocessing is None:
        return clean
    (source,) = model.inputs
    raw = keras.Input(
        shape=source.shape[1:] if raw_shape is None else tuple(raw_shape),
        dtype=raw_dtype or source.dtype,
        name=source.name,
    )
    outputs = clean(preprocessing(raw))
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    # The nested model's outputs would be named after the model; an Identity
    # per output gives them back their own names.
    named = [keras.layers.Identity(name=n)(o) for n, o in zip(model.output_names, outputs)]
    return keras.Model(raw, named if len(named) > 1 else named[0], name=name or f"{model.name}_serving")
