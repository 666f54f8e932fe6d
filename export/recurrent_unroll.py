"""Recurrent layers for TFLite: unrolled over their fixed sequence length, so they convert to builtins.

Keras 3 runs SimpleRNN, LSTM and GRU (and `Bidirectional` around them) as a
while loop over TensorLists. The TFLite converter (TF 2.21) lowers that loop
to builtins only when each TensorList's element shape is static, and the
element is `[batch, units]`: with the free batch dimension every served
model has, it fails (`TensorListReserve ... requires element_shape to be
static`) even when the sequence length is fixed. Measured on SimpleRNN,
LSTM and GRU, masked or not, stacked and bidirectional, float or token
input:

- fixed length, rolled loop: does not convert;
- batch fixed to 1 (or the converter's single-batch TensorList option):
  converts, with a fixed length or none (LSTM checked at 7 steps), but the
  file then fails in LiteRT on any batch but 1;
- fixed length, `unroll=True`: converts with any batch and matches Keras
  to 5e-7 in LiteRT;
- length None with a free batch: does not convert, and Keras cannot unroll it.

tfdl's TFLite files keep a free batch (the export's parity and latency
checks feed whole batches), so the route taken is the unrolled one.

Unrolling is for export only: training an unrolled LSTM over 100 steps
under XLA took 85 s to compile and ran 24x slower per epoch (2 cores), and
on a GPU it would leave cuDNN. `unroll_recurrent` therefore makes an
unrolled copy of a trained model (weights copied) for the export stage to
write, when the export asks for TFLite. The unrolled SavedModel is bigger
(LSTM, 100 steps: `saved_model.pb` 436 KB instead of 61 KB, 1.4 s more to
export) and no slower (0.9 ms per example instead of 1.6 ms on 2 cores).
A layer whose sequence length is None stays rolled: its TFLite conversion
fails, naming the layer, and the fix is to give the model's input a fixed
length.
"""

from __future__ import annotations


def recurrent_sequence_lengths(model) -> dict[str, int | None]:
    """The sequence length each recurrent layer of a functional model reads.

    Args:
        model: a Keras model; layers of nested functional models count too.

    Returns:
        `{layer name: time steps}` for every recurrent layer (RNN subclasses
        and `Bidirectional`), with None where the length is not fixed or not
        known (a layer of a subclassed model, or one called more than once).
    """
    lengths = {}
    for layer in _functional_layers(model):
        if _is_recurrent(layer):
            lengths[layer.name] = _time_steps(layer)
    return lengths


def unroll_recurrent(model):
    """A copy of `model` whose recurrent layers with a fixed sequence length are unrolled.

    Args:
        model: a trained Keras model.

    Returns:
        A functional copy with the same weights and `unroll=True` on each
        recurrent layer whose sequence length is fixed; `model` itself when
        there is none to unroll, or when it is not functional (its layers
        cannot be rebuilt from their configs).
    """
    import keras

    lengths = recurrent_sequence_lengths(model)
    to_unroll = {name for name, steps in lengths.items() if steps is not None}
    if not to_unroll or not _is_functional(model):
        return model

    def clone(layer):
        config = layer.get_config()
        if layer.name in to_unroll:
            config = _with_unroll(config)
        return type(layer).from_config(config)

    unrolled = keras.models.clone_model(model, clone_function=clone, recursive=True)
    unrolled.set_weights(model.get_weights())
    return unrolled


def _is_functional(model) -> bool:
    import keras

    return isinstance(model, keras.Model) and bool(getattr(model, "inputs", None)) and hasattr(model, "operations")


def _functional_layers(model):
    """The layers of `model` and of the functional models nested in it (not inside other layers)."""
    if not _is_functional(model):
        return
    for layer in model.layers:
        yield layer
        yield from _functional_layers(layer)


def _is_recurrent(layer) -> bool:
    import keras

    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def _time_steps(layer) -> int | None:
    import keras

    try:
        inputs = layer.input
    except (AttributeError, ValueError):  # never called in a functional graph
        return None
    # A masked call records the mask beside the sequences: the sequences come first.
    sequences = keras.tree.flatten(inputs)[0]
    return sequences.shape[1] if len(sequences.shape) >= 3 else None


def _with_unroll(config):
    """`config` with every `unroll` setting (the layer's, a wrapped layer's) turned on."""
    if isinstance(config, dict):
        return {key: True if key == "unroll" else _with_unroll(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_with_unroll(value) for value in config]
    return config
