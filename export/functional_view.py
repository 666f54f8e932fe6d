"""A functional view of a subclassed model, so it exports like any other.

`export_saved_model` (and `inference_model`, parity, TFLite) read the
serving names and specs from `model.inputs` and `model.output_names`.
Subclassed models (`Seq2Seq`, `VAE`, and the layers of one) have neither:
export fails with `AttributeError: 'Seq2Seq' object has no attribute
'inputs'`. `functional_view` wraps such a model in a functional model with
named inputs and named outputs, sharing its weights, so every export path
works unchanged:

    view = functional_view(seq2seq, [keras.Input((None,), dtype="int32", name="source"),
                                     keras.Input((None,), dtype="int32", name="decoder_input")], ["logits"])
    export_saved_model(view, "serving/s2s/1")   # {"source", "decoder_input"} -> {"logits"}

A served VAE is two such views: the model itself (inputs -> reconstruction
from the posterior mean, with `mean` and `log_var`), and its decoder
(latent codes -> reconstruction), which samples when fed draws from N(0, I).
"""

from __future__ import annotations

from typing import Sequence


def functional_view(model, inputs: Sequence, output_names: Sequence[str] | None = None, name: str | None = None):
    """Wrap `model` in a functional model whose inputs and outputs carry serving names.

    The model is called on the one input itself, or on the list of inputs
    in order (as `Seq2Seq` takes `[source, decoder_input]`). Weights are
    shared with `model`, not copied.

    Args:
        model: a built or unbuilt Keras model or layer, usually subclassed.
        inputs: `keras.Input`s, each named (the name clients send) with its dtype.
        output_names: names of the outputs, in the order the model returns
            them; leave None when the model returns a dict (its keys are used).
        name: the view's name; by default `<model name>_view`.

    Returns:
        A functional `keras.Model` with `inputs` in and named outputs.

    Raises:
        ValueError: no inputs were given, or `output_names` does not match
            what the model returns (says how many names are needed).
    """
    import keras

    inputs = list(inputs)
    if not inputs:
        raise ValueError("functional_view needs at least one keras.Input, named as clients will send it")
    outputs = model(inputs[0] if len(inputs) == 1 else inputs)
    if isinstance(outputs, dict):
        if output_names is not None:
            raise ValueError(
                f"{model.name} returns a dict, whose keys {sorted(outputs)} name the outputs; pass output_names=None"
            )
        named = {key: keras.layers.Identity(name=key)(value) for key, value in outputs.items()}
    else:
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        if output_names is None or len(output_names) != len(outputs):
            raise ValueError(
                f"{model.name} returns {len(outputs)} output(s); pass {len(outputs)} output_names, got {output_names}"
            )
        named = [keras.layers.Identity(name=n)(o) for n, o in zip(output_names, outputs)]
        named = named if len(named) > 1 else named[0]
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], named, name=name or f"{model.name}_view")
