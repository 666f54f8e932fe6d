"""Recurrent networks: `rnn` (sequence -> class) and `rnn_regressor` (sequence -> values, a forecaster).

    tokens -> Embedding(mask_zero)  \\
                                     -> [Bidirectional](SimpleRNN | LSTM | GRU) x N -> head
    floats -> Masking(mask_value)   /

The mask made at the input (padding id 0, or timesteps whose features all
equal `mask_value`) is carried through every recurrent layer, so a padded
sequence gives the same output as the unpadded one: the last layer returns
its state at each sequence's last real step.

On a GPU, LSTM and GRU layers run on cuDNN when their settings allow it.
The settings here keep that path (tanh activation, sigmoid recurrent
activation, biases, no unrolling, GRU `reset_after`) as long as
`recurrent_dropout` is 0: a non-zero `recurrent_dropout` switches to the
generic (several times slower) kernel. SimpleRNN has no cuDNN kernel at all.
cuDNN takes masks of right-padded sequences only, which is what
TextVectorization and `pad_sequences(padding="post")` make.

XLA: on CPU every cell compiles (masked, stacked and bidirectional, forward
and backward pass; checked with `tf.function(jit_compile=True)` under TF
2.21). On a GPU, a layer that takes the cuDNN path has no XLA kernel; Keras
marks it `layer.supports_jit = False`; the trainer reads that
(`tfdl.training.steps.supports_xla`) and leaves `jit_compile: auto` off,
or refuses `jit_compile: true`, for such a model.

TFLite: the layers run as a while loop over TensorLists, which TFLite
builtins hold only unrolled over a fixed sequence length. So give the input
a fixed length (`input_shape: [T, features]`, or `max_length` for token ids;
a text run fills `max_length` from `data.text.sequence_length`) and the
export stage unrolls the trained layers when it writes TFLite, while
training keeps the loop (see `tfdl.export.recurrent_unroll` for the
measurements). With a length of None (`input_shape: [null, F]`, or
bucketed text) the TFLite conversion fails, naming the layers. A text model
that takes raw strings needs string ops TFLite has no builtin for anyway.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel

Cell = Literal["simple", "lstm", "gru"]
_CELL_LAYERS = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


class RecurrentTrunkConfig(StrictModel):
    """The recurrent trunk shared by `rnn` and `rnn_regressor`.

    Attributes:
        input_name: the model input's name (the key serving clients send).
        vocabulary_size: number of token ids (0 is padding): the input is
            token ids, embedded with `mask_zero`. None: the input is float
            sequences of `input_shape`. Text runs fill it from the data.
        input_shape: (time, features) of a float sequence; time may be null
            for sequences of any length (TFLite needs it fixed). Ignored for
            token input.
        max_length: time steps of token input; None for sequences of any
            length (TFLite needs it fixed). Text runs fill it from
            `data.text.sequence_length`. Ignored for float input.
        embed_dim: width of the token vectors (token input).
        mask_value: float input: a timestep whose features all equal it is
            padding and masked; None adds no Masking layer.
        cell: `simple` (SimpleRNN), `lstm` or `gru`.
        units: units of each stacked recurrent layer, first to last.
        bidirectional: read each sequence both ways and concatenate (each
            direction has `units` units).
        dropout: dropout of each recurrent layer's inputs (cuDNN-compatible).
        recurrent_dropout: dropout of the recurrent state; any value above 0
            turns the cuDNN kernel off (see the module docstring).
    """

    input_name: str = "tokens"
    vocabulary_size: int | None = Field(None, ge=2)
    input_shape: tuple[int | None, ...] | None = None
    max_length: int | None = Field(None, ge=1)
    embed_dim: int = Field(32, ge=1)
    mask_value: float | None = None
    cell: Cell = "lstm"
    units: list[int] = Field(default_factory=lambda: [32], min_length=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    recurrent_dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _known_input(self) -> "RecurrentTrunkConfig":
        # Both may still be missing here: a run fills them from the data, and the builder checks.
        if any(u < 1 for u in self.units):
            raise ValueError(f"units must be positive layer widths, got {self.units}")
        if self.vocabulary_size is None and self.input_shape is not None:
            if len(self.input_shape) != 2 or self.input_shape[1] is None or self.input_shape[1] < 1:
                raise ValueError(
                    f"float sequence input needs input_shape [time, features] with features >= 1, "
                    f"got {list(self.input_shape)}; or set vocabulary_size for token input"
                )
        return self


class RNNConfig(RecurrentTrunkConfig):
    """Configuration of `build_rnn`: the trunk plus a softmax over `num_classes` (filled from the data)."""

    num_classes: int | None = Field(None, ge=2)


class RNNRegressorConfig(RecurrentTrunkConfig):
    """Configuration of `build_rnn_regressor`: the trunk plus a linear head of `outputs` values."""

    input_name: str = "sequence"
    outputs: int = Field(1, ge=1)


def _trunk(config: RecurrentTrunkConfig):
    """The input and the trunk's last state, with the mask carried from input to last layer."""
    import keras
    from keras import layers

    if config.vocabulary_size is None and config.input_shape is None:
        raise ValueError(
            "the recurrent models need vocabulary_size (token input) or input_shape [time, features] "
            "(float sequences); a run fills them from the data"
        )
    if config.vocabulary_size is not None:
        inputs = keras.Input(shape=(config.max_length,), dtype="int32", name=config.input_name)
        x = layers.Embedding(config.vocabulary_size, config.embed_dim, mask_zero=True, name="embedding")(inputs)
    else:
        inputs = keras.Input(shape=tuple(config.input_shape), dtype="float32", name=config.input_name)
        x = inputs if config.mask_value is None else layers.Masking(config.mask_value, name="masking")(inputs)
    recurrent = getattr(layers, _CELL_LAYERS[config.cell])
    for i, units in enumerate(config.units):
        last = i == len(config.units) - 1
        layer = recurrent(
            units, return_sequences=not last, dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout, name=f"{config.cell}_{i + 1}",
        )
        if config.bidirectional:
            layer = layers.Bidirectional(layer, name=f"bidirectional_{i + 1}")
        x = layer(x)
    return inputs, x


@register_model("rnn", RNNConfig, task="classification")
def build_rnn(config: RNNConfig):
    """Build the recurrent classifier.

    Args:
        config: the model's settings; `num_classes` must be set (a run fills it).

    Returns:
        A functional `keras.Model` whose output `probabilities` is a softmax over the classes.

    Raises:
        ValueError: `num_classes` is missing.
    """
    import keras
    from keras import layers

    if config.num_classes is None:
        raise ValueError("build_rnn needs num_classes (the run fills it from the data)")
    inputs, x = _trunk(config)
    outputs = layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="rnn")


@register_model("rnn_regressor", RNNRegressorConfig, task="regression")
def build_rnn_regressor(config: RNNRegressorConfig):
    """Build the sequence-to-one regressor (forecaster).

    Args:
        config: the model's settings.

    Returns:
        A functional `keras.Model` whose output `forecast` holds `outputs`
        values per sequence, with no activation.
    """
    import keras
    from keras import layers

    inputs, x = _trunk(config)
    outputs = layers.Dense(config.outputs, name="forecast")(x)
    return keras.Model(inputs, outputs, name="rnn_regressor")

