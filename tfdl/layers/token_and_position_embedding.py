"""TokenAndPositionEmbedding: the input layer of a Transformer, token ids -> vectors with positions.

Looks token ids up in a trainable table, optionally scales them by sqrt(d),
adds a sinusoidal or learned position embedding, and emits the padding mask
(`ids != 0`) so attention, pooling and recurrent layers downstream skip the
padding.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from tfdl.layers.learned_position_embedding import LearnedPositionEmbedding
from tfdl.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding

POSITIONS = ("sinusoidal", "learned")


@keras.saving.register_keras_serializable(package="tfdl")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus position embedding, with a padding mask.

    For integer ids of shape `(batch, seq)` computes

        out = token_table[ids] * (sqrt(d) if scale_by_sqrt_dim else 1)
              + position(start_index .. start_index + seq - 1)

    of shape `(batch, seq, d)`, where `position` is a
    `SinusoidalPositionEncoding` (fixed) or a `LearnedPositionEmbedding`
    (trainable), held as a sublayer. With `mask_zero=True`, id 0 is padding:
    `compute_mask` returns `ids != 0` and Keras hands it to the next layer.

    Args:
        vocabulary_size: int. Number of token ids (rows of the token table),
            padding id 0 included. Required.
        embedding_dim: int. d, the size of each vector. Must be even for the
            sinusoidal encoding. Required.
        max_length: int. The largest start_index + seq accepted. Required.
        position: `"sinusoidal"` or `"learned"`. Which position embedding to
            add. Defaults to `"sinusoidal"`.
        mask_zero: bool. Treat id 0 as padding and emit the mask `ids != 0`.
            Defaults to `True`.
        scale_by_sqrt_dim: bool. Multiply token vectors by sqrt(d) before
            adding positions, as the Transformer paper does. Defaults to
            `False`.
        max_wavelength: float. Longest wavelength of the sinusoidal encoding
            (unused for `"learned"`). Defaults to `10000`.
        embeddings_initializer: initializer of the token table and of a
            learned position table. Defaults to `"uniform"` (the Keras
            `Embedding` default).
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: integer token ids `(batch, seq)`, int32 or int64.
        start_index: int or scalar int tensor, the position of the first id
            (for incremental decoding). Defaults to `0`.

    Example:

    >>> import numpy as np
    >>> layer = TokenAndPositionEmbedding(vocabulary_size=100, embedding_dim=8, max_length=16)
    >>> ids = np.array([[5, 7, 9, 0, 0]], "int32")
    >>> tuple(layer(ids).shape)
    (1, 5, 8)
    >>> layer.compute_mask(ids).numpy().tolist()
    [[True, True, True, False, False]]
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int,
        max_length: int,
        position: str = "sinusoidal",
        mask_zero: bool = True,
        scale_by_sqrt_dim: bool = False,
        max_wavelength: float = 10000,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}; got {position!r}.")
        if position == "sinusoidal" and embedding_dim % 2:
            raise ValueError(
                f"embedding_dim must be even for position='sinusoidal' (sine and cosine fill "
                f"alternate channels); got embedding_dim={embedding_dim}."
            )
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.max_length = max_length
        self.position = position
        self.mask_zero = mask_zero
        self.scale_by_sqrt_dim = scale_by_sqrt_dim
        self.max_wavelength = max_wavelength
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

        # Each table gets its own initializer: one unseeded Keras initializer
        # instance returns the same values on every call.
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            embedding_dim,
            embeddings_initializer=self._fresh_initializer(),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        if position == "sinusoidal":
            self.position_embedding = SinusoidalPositionEncoding(
                max_length, max_wavelength=max_wavelength, dtype=self.dtype_policy, name="position_embedding"
            )
        else:
            self.position_embedding = LearnedPositionEmbedding(
                max_length, initializer=self._fresh_initializer(), dtype=self.dtype_policy, name="position_embedding"
            )

    def _fresh_initializer(self):
        return keras.initializers.get(keras.initializers.serialize(self.embeddings_initializer))

    def build(self, input_shape) -> None:
        if len(input_shape) != 2:
            raise ValueError(
                f"TokenAndPositionEmbedding expects token ids of shape (batch, seq); got {tuple(input_shape)}."
            )
        self.token_embedding.build(input_shape)
        self.position_embedding.build((*input_shape, self.embedding_dim))

    def call(self, inputs, start_index=0):
        tokens = self.token_embedding(inputs)
        if self.scale_by_sqrt_dim:
            tokens = tokens * ops.cast(math.sqrt(self.embedding_dim), tokens.dtype)
        return tokens + self.position_embedding(tokens, start_index=start_index)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return mask
        padding = ops.not_equal(inputs, 0)
        return padding if mask is None else ops.logical_and(padding, mask)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embedding_dim)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "max_length": self.max_length,
                "position": self.position,
                "mask_zero": self.mask_zero,
                "scale_by_sqrt_dim": self.scale_by_sqrt_dim,
                "max_wavelength": self.max_wavelength,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
