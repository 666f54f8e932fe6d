"""One Transformer decoder block: causal self-attention, optional cross-attention over an encoder, feed-forward."""

from __future__ import annotations

import keras
from keras import ops

from tfdl.layers.scaled_dot_product_attention import causal_mask
from tfdl.layers.transformer_encoder import head_size, padding_attention_mask


@keras.saving.register_keras_serializable(package="tfdl")
class TransformerDecoderBlock(keras.layers.Layer):
    """A Transformer decoder block (Vaswani et al., 2017), or a GPT block without an encoder.

    Sublayers, each wrapped in dropout, a residual connection and a
    LayerNormalization: causal multi-head self-attention (position i sees
    positions 0..i only), cross-attention from the decoder to the encoder
    outputs, and a position-wise feed-forward network
    `Dense(intermediate_dim, activation) -> Dense(d_model)`. Post-norm
    (`norm_first=False`): `x = norm(x + f(x))`; pre-norm (`norm_first=True`):
    `x = x + f(norm(x))`.

    Whether there is a cross-attention sublayer is decided by the first call:
    called with an `encoder_sequence`, the block builds one; called without,
    it is a decoder-only (GPT-style) block with no cross-attention weights,
    and must always be called that way.

    Args:
        num_heads: int, number of attention heads (self and cross). Required.
        intermediate_dim: int, hidden size of the feed-forward network.
            Required.
        dropout: float, dropout rate on the attention weights and after each
            sublayer (training only). Defaults to `0.0`.
        activation: activation of the feed-forward hidden layer. Defaults to
            `"relu"`.
        layer_norm_epsilon: float, epsilon of the LayerNormalizations.
            Defaults to `1e-5`.
        key_dim: int or None, size of each attention head. Defaults to
            `None`, which means `d_model // num_heads` (d_model must then be
            divisible by num_heads).
        norm_first: bool, pre-norm when True, post-norm when False. Defaults
            to `False`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        decoder_sequence: `(batch, T, d_model)`.
        encoder_sequence: `(batch, S, d_encoder)` or None (decoder-only).
        decoder_sequence_mask: `(batch, T)` padding mask of the decoder, True =
            real token; Keras fills it from the mask `decoder_sequence`
            carries (as `mask` when it is the only tensor), or pass it.
        encoder_sequence_mask: `(batch, S)` padding mask of the encoder,
            filled by Keras from the mask `encoder_sequence` carries, or pass
            it. Padded encoder steps get cross-attention weight 0.
        return_attention_scores: bool, also return the cross-attention
            weights `(batch, num_heads, T, S)`. Defaults to `False`; needs an
            encoder.
        training: bool, dropout is applied only when True.

    Returns:
        `(batch, T, d_model)`, or `(output, cross_attention_weights)`. The
        decoder's padding mask is passed on to the output.

    Example:

    >>> import numpy as np
    >>> block = TransformerDecoderBlock(num_heads=2, intermediate_dim=32)
    >>> tokens = np.random.normal(size=(2, 6, 16)).astype("float32")
    >>> encoded = np.random.normal(size=(2, 9, 16)).astype("float32")
    >>> tuple(block(tokens, encoded).shape)
    (2, 6, 16)
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        activation="relu",
        layer_norm_epsilon: float = 1e-5,
        key_dim: int | None = None,
        norm_first: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.key_dim = key_dim
        self.norm_first = norm_first
        self.supports_masking = True

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None) -> None:
        for name, shape in (("decoder_sequence", decoder_sequence_shape), ("encoder_sequence", encoder_sequence_shape)):
            if shape is not None and len(shape) != 3:
                raise ValueError(f"TransformerDecoderBlock: {name} must be (batch, T, d), got shape {tuple(shape)}.")
        model_dim = decoder_sequence_shape[-1]
        key_dim = head_size("TransformerDecoderBlock", model_dim, self.num_heads, self.key_dim)
        self._self_attention = self._attention("self_attention", key_dim, decoder_sequence_shape, decoder_sequence_shape)
        self._self_attention_norm = self._norm("self_attention_norm", decoder_sequence_shape)
        self._self_attention_dropout = self._dropout("self_attention_dropout")
        self._cross_attention = None
        if encoder_sequence_shape is not None:
            self._cross_attention = self._attention(
                "cross_attention", key_dim, decoder_sequence_shape, encoder_sequence_shape
            )
            self._cross_attention_norm = self._norm("cross_attention_norm", decoder_sequence_shape)
            self._cross_attention_dropout = self._dropout("cross_attention_dropout")
        self._feedforward_hidden = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, dtype=self.dtype_policy, name="feedforward_hidden"
        )
        self._feedforward_hidden.build(decoder_sequence_shape)
        self._feedforward_output = keras.layers.Dense(model_dim, dtype=self.dtype_policy, name="feedforward_output")
        self._feedforward_output.build((*decoder_sequence_shape[:-1], self.intermediate_dim))
        self._feedforward_norm = self._norm("feedforward_norm", decoder_sequence_shape)
        self._feedforward_dropout = self._dropout("feedforward_dropout")

    def _attention(self, name, key_dim, query_shape, value_shape):
        attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads, key_dim=key_dim, dropout=self.dropout, dtype=self.dtype_policy, name=name
        )
        attention.build(query_shape, value_shape)
        return attention

    def _norm(self, name, shape):
        norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        norm.build(shape)
        return norm

    def _dropout(self, name):
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        mask=None,
        decoder_sequence_mask=None,
        encoder_sequence_mask=None,
        return_attention_scores: bool = False,
        training: bool | None = None,
    ):
        self._check_encoder(encoder_sequence, return_attention_scores)
        decoder_padding = decoder_sequence_mask if decoder_sequence_mask is not None else mask
        length = ops.shape(decoder_sequence)[1]
        self_mask = padding_attention_mask(decoder_padding, causal_mask(length, length))

        def self_attention(h):
            return self._self_attention(h, h, attention_mask=self_mask, training=training)

        x = self._residual(decoder_sequence, self_attention, self._self_attention_norm, self._self_attention_dropout, training)

        scores = None
        if self._cross_attention is not None:
            cross_mask = padding_attention_mask(encoder_sequence_mask)
            # MultiHeadAttention clears the Keras mask of the tensors it is
            # given; a copy keeps the mask on the caller's encoder outputs.
            encoded = ops.copy(encoder_sequence)

            def cross_attention(h):
                nonlocal scores
                h, scores = self._cross_attention(
                    h, encoded, attention_mask=cross_mask, return_attention_scores=True, training=training
                )
                return h

            x = self._residual(x, cross_attention, self._cross_attention_norm, self._cross_attention_dropout, training)

        def feedforward(h):
            return self._feedforward_output(self._feedforward_hidden(h))

        x = self._residual(x, feedforward, self._feedforward_norm, self._feedforward_dropout, training)
        if return_attention_scores:
            # The copy drops the (batch, 1, 1, S) mask that MultiHeadAttention's
            # inner Softmax leaves on its weights: it is no time-step mask of
            # the weights, and layers after them would warn about it.
            return x, ops.copy(scores)
        return x

    def _residual(self, x, sublayer, norm, dropout, training):
        """`x + f(norm(x))` (pre-norm) or `norm(x + f(x))` (post-norm), with dropout on f."""
        # The copy keeps MultiHeadAttention from clearing the mask of `x`,
        # which may be the caller's tensor.
        h = norm(x) if self.norm_first else ops.copy(x)
        h = dropout(sublayer(h), training=training)
        return x + h if self.norm_first else norm(x + h)

    def _check_encoder(self, encoder_sequence, return_attention_scores: bool) -> None:
        has_cross = self._cross_attention is not None
        if encoder_sequence is None and has_cross:
            raise ValueError(
                "TransformerDecoderBlock: this block was built with cross-attention, so it needs an "
                "encoder_sequence; got None. Use a new block for decoder-only (GPT-style) use."
            )
        if encoder_sequence is not None and not has_cross:
            raise ValueError(
                "TransformerDecoderBlock: this block was built decoder-only (first called without an "
                f"encoder_sequence), but got encoder_sequence of shape {tuple(encoder_sequence.shape)}. "
                "Use a new block, first called with the encoder outputs."
            )
        if return_attention_scores and not has_cross:
            raise ValueError(
                "TransformerDecoderBlock: return_attention_scores=True returns cross-attention weights, "
                "but this decoder-only block has no cross-attention; call it without return_attention_scores."
            )

    def compute_mask(self, decoder_sequence, previous_mask=None):
        # Keras hands over the decoder's padding mask; the output keeps its time steps.
        return previous_mask

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "key_dim": self.key_dim,
                "norm_first": self.norm_first,
            }
        )
        return config
