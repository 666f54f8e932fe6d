"""One Transformer encoder block: self-attention and a feed-forward network, each with residual and LayerNorm."""

from __future__ import annotations

import keras
from keras import ops


def padding_attention_mask(padding_mask=None, attention_mask=None):
    """Combine a (batch, T_k) key padding mask and a (batch, T_q, T_k) attention mask with AND.

    The padding mask becomes (batch, 1, T_k), so it broadcasts over queries.
    Returns None when both are None.
    """
    masks = []
    if padding_mask is not None:
        masks.append(ops.expand_dims(ops.cast(padding_mask, "bool"), 1))
    if attention_mask is not None:
        masks.append(ops.cast(attention_mask, "bool"))
    if not masks:
        return None
    return masks[0] if len(masks) == 1 else ops.logical_and(masks[0], masks[1])


def head_size(layer_name: str, model_dim: int, num_heads: int, key_dim: int | None) -> int:
    """`key_dim`, or `model_dim // num_heads` when it is None (which must divide evenly)."""
    if not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"{layer_name}: num_heads must be a positive int, got {num_heads!r}.")
    if key_dim is not None:
        return key_dim
    if model_dim % num_heads:
        raise ValueError(
            f"{layer_name}: the model dimension {model_dim} (last axis of the input) is not divisible by "
            f"num_heads={num_heads}; choose num_heads that divides {model_dim}, or pass key_dim explicitly."
        )
    return model_dim // num_heads


def check_attention_mask(layer_name: str, attention_mask, query_length, key_length) -> None:
    """Raise a ValueError naming the shape unless `attention_mask` is (batch, T_q, T_k)."""
    if attention_mask is None:
        return
    shape = tuple(attention_mask.shape)
    wrong_rank = len(shape) != 3
    wrong_dims = not wrong_rank and any(
        got not in (None, 1, want) and want is not None for got, want in zip(shape[1:], (query_length, key_length))
    )
    if wrong_rank or wrong_dims:
        raise ValueError(
            f"{layer_name}: attention_mask must be (batch, T_q, T_k) = (batch, {query_length}, {key_length}), "
            f"got shape {shape}."
        )


@keras.saving.register_keras_serializable(package="tfdl")
class TransformerEncoderBlock(keras.layers.Layer):
    """A Transformer encoder block (Vaswani et al., 2017).

    Two sublayers, each wrapped in dropout, a residual connection and a
    LayerNormalization: multi-head self-attention
    (`keras.layers.MultiHeadAttention`), then a position-wise feed-forward
    network `Dense(intermediate_dim, activation) -> Dense(d_model)`.
    Post-norm (`norm_first=False`, the original paper): `x = norm(x + f(x))`.
    Pre-norm (`norm_first=True`, GPT-2 style, easier to train deep):
    `x = x + f(norm(x))`. Input and output are `(batch, T, d_model)`.

    Padding: the Keras mask carried by the input (for example from
    `Embedding(mask_zero=True)` or `Masking`) stops every position from
    attending to padded ones, so outputs at real positions do not depend on
    how much padding follows; the mask is passed on to the output.

    Args:
        num_heads: int, number of attention heads. Required.
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
        inputs: `(batch, T, d_model)`.
        mask: `(batch, T)` padding mask, True = real token; Keras fills it
            from the input's mask. (When `attention_mask` is passed as well,
            Keras hands the input's mask over as `inputs_mask` instead; both
            mean the same.)
        attention_mask: optional `(batch, T, T)` boolean or 0/1 mask, 1 = may
            attend; combined with the padding mask with AND.
        training: bool, dropout is applied only when True.

    Example:

    >>> import numpy as np
    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32)
    >>> x = np.random.normal(size=(2, 5, 16)).astype("float32")
    >>> tuple(block(x).shape)
    (2, 5, 16)
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

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"TransformerEncoderBlock: input must be (batch, T, d_model), got shape {tuple(input_shape)}."
            )
        model_dim = input_shape[-1]
        key_dim = head_size("TransformerEncoderBlock", model_dim, self.num_heads, self.key_dim)
        self._self_attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads, key_dim=key_dim, dropout=self.dropout, dtype=self.dtype_policy, name="self_attention"
        )
        self._self_attention.build(input_shape, input_shape)
        self._attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="attention_norm"
        )
        self._attention_norm.build(input_shape)
        self._attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="attention_dropout")
        self._feedforward_hidden = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, dtype=self.dtype_policy, name="feedforward_hidden"
        )
        self._feedforward_hidden.build(input_shape)
        self._feedforward_output = keras.layers.Dense(model_dim, dtype=self.dtype_policy, name="feedforward_output")
        self._feedforward_output.build((*input_shape[:-1], self.intermediate_dim))
        self._feedforward_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="feedforward_norm"
        )
        self._feedforward_norm.build(input_shape)
        self._feedforward_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="feedforward_dropout"
        )

    def call(self, inputs, mask=None, attention_mask=None, training=None, inputs_mask=None):
        length = inputs.shape[1]
        check_attention_mask("TransformerEncoderBlock", attention_mask, length, length)
        padding_mask = mask if mask is not None else inputs_mask
        self_attention_mask = padding_attention_mask(padding_mask, attention_mask)

        # MultiHeadAttention clears the Keras mask of the tensors it is given;
        # a copy keeps the mask on the caller's tensor for other consumers.
        x = self._attention_norm(inputs) if self.norm_first else ops.copy(inputs)
        x = self._self_attention(x, x, attention_mask=self_attention_mask, training=training)
        x = inputs + self._attention_dropout(x, training=training)
        if not self.norm_first:
            x = self._attention_norm(x)

        residual = x
        if self.norm_first:
            x = self._feedforward_norm(x)
        x = self._feedforward_output(self._feedforward_hidden(x))
        x = residual + self._feedforward_dropout(x, training=training)
        if not self.norm_first:
            x = self._feedforward_norm(x)
        return x

    def compute_mask(self, inputs, previous_mask=None):
        # The output has the input's time steps, so the padding mask carries over.
        return previous_mask

    def compute_output_shape(self, input_shape):
        return input_shape

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
