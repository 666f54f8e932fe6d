"""LearnedPositionEmbedding: a trainable table of one vector per position (BERT, GPT-2).

The learned alternative to the sinusoidal encoding: the output for a
sequence is the first rows of a `(max_length, d)` table trained with the
model; `start_index` shifts the rows for incremental (cached) decoding.
"""

from __future__ import annotations

import keras
from keras import ops

from tfdl.layers.sinusoidal_position_encoding import check_sequence_fits


@keras.saving.register_keras_serializable(package="tfdl")
class LearnedPositionEmbedding(keras.layers.Layer):
    """A trainable position embedding: rows start_index .. start_index + seq - 1 of a table.

    Holds a trainable weight `embeddings` of shape `(max_length, d)`, where d
    is the input's last axis. For an input of shape `(batch, seq, d)` returns
    `embeddings[start_index : start_index + seq]`, broadcast over the batch.
    The input supplies only the shape; add the output to it yourself. The
    sequence length may vary from call to call (an input of shape
    `(None, d)` works); a length known when the layer is called that exceeds
    `max_length` is an error (a longer one known only at run time fails in
    the slice). A mask on the input passes through unchanged.

    Args:
        max_length: int. Number of rows of the table, the largest
            start_index + seq the layer accepts. Required.
        initializer: initializer of the table (name, config or instance).
            Defaults to `"glorot_uniform"`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor `(batch, seq, d)`.
        start_index: int or scalar int tensor, the position of the first
            element. Defaults to `0`.

    Example:

    >>> import numpy as np
    >>> layer = LearnedPositionEmbedding(max_length=16)
    >>> tuple(layer(np.zeros((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    >>> tuple(layer.embeddings.shape)
    (16, 8)
    """

    def __init__(self, max_length: int, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive int; got {max_length!r}.")
        self.max_length = max_length
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"LearnedPositionEmbedding expects inputs of shape (batch, seq, d) with d known; "
                f"got {tuple(input_shape)}."
            )
        check_sequence_fits(self.name, input_shape[1], 0, self.max_length)
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=self.initializer,
            trainable=True,
        )

    def call(self, inputs, start_index=0):
        check_sequence_fits(self.name, inputs.shape[1], start_index, self.max_length)
        shape = ops.shape(inputs)
        rows = ops.slice(ops.convert_to_tensor(self.embeddings), (start_index, 0), (shape[1], shape[2]))
        return ops.broadcast_to(ops.expand_dims(ops.cast(rows, self.compute_dtype), 0), shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"max_length": self.max_length, "initializer": keras.initializers.serialize(self.initializer)}
        )
        return config
