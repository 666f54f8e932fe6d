"""Bahdanau (additive) attention of a decoder state over encoder outputs, for seq2seq models."""

from __future__ import annotations

import keras
from keras import ops

from tfdl.layers.scaled_dot_product_attention import masked_softmax


def check_query_and_values(layer_name: str, query_shape, values_shape, mask_shape=None) -> None:
    """Raise a ValueError naming the shapes unless query is (batch, d_q) or (batch, T_q, d_q),
    values is (batch, T_v, d_v) and mask, if any, is (batch, T_v)."""
    if len(query_shape) not in (2, 3):
        raise ValueError(
            f"{layer_name}: query must be (batch, d_q) or (batch, T_q, d_q), got shape {tuple(query_shape)}."
        )
    if len(values_shape) != 3:
        raise ValueError(f"{layer_name}: values must be (batch, T_v, d_v), got shape {tuple(values_shape)}.")
    if mask_shape is not None:
        length = values_shape[1]
        if len(mask_shape) != 2 or None not in (mask_shape[1], length) and mask_shape[1] != length:
            raise ValueError(
                f"{layer_name}: the values mask must be (batch, T_v) = (batch, {length}), "
                f"got shape {tuple(mask_shape)}."
            )


def attend(scores, values, values_mask=None, query_mask=None):
    """Masked softmax of (batch, T_q, T_v) `scores` and the weighted sum of `values`.

    Masked values get weight 0; a padded query step (or one with every value
    masked) gets zero weights and a zero context.
    """
    mask = None
    if values_mask is not None:
        mask = ops.expand_dims(ops.cast(values_mask, "bool"), 1)
    if query_mask is not None:
        rows = ops.expand_dims(ops.cast(query_mask, "bool"), -1)
        mask = rows if mask is None else ops.logical_and(mask, rows)
    weights = masked_softmax(scores, mask)
    return ops.matmul(weights, values), weights


def output_masks(query):
    """Masks of (context, weights): a 3-D query's padding mask marks the valid steps of both.

    Keras may hand `compute_mask` the explicit values mask as its previous
    mask, so the query's own mask is read instead.
    """
    query_mask = getattr(query, "_keras_mask", None)
    if len(query.shape) != 3 or query_mask is None:
        return None
    return [query_mask, query_mask]


def merge_values_masks(mask, values_mask):
    """The explicit mask and the one Keras found on `values`, combined with AND."""
    if mask is None or values_mask is None:
        return values_mask if mask is None else mask
    return ops.logical_and(ops.cast(mask, "bool"), ops.cast(values_mask, "bool"))


@keras.saving.register_keras_serializable(package="tfdl")
class BahdanauAttention(keras.layers.Layer):
    """Additive attention (Bahdanau et al., 2015): `score(s, h) = v^T tanh(W1 s + W2 h)`.

    For each query `s` (a decoder state) and each encoder output `h`, the
    score is `v^T tanh(W1 s + W2 h)`; the weights are the softmax of the
    scores over the encoder time axis (masked positions get weight 0) and the
    context is the weighted sum of the encoder outputs. `W1` is `(d_q, units)`,
    `W2` is `(d_v, units)`, `v` is `(units,)`; there are no biases.

    Args:
        units: int, size of the hidden layer inside the score (columns of
            `W1` and `W2`). Required.
        kernel_initializer: initializer of `W1`, `W2` and `v`. Defaults to
            `"glorot_uniform"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(batch, d_q)`, one decoder state, or `(batch, T_q, d_q)`.
        values: `(batch, T_v, d_v)`, the encoder outputs.
        mask: optional `(batch, T_v)` encoder padding mask (True = real step).
            Combined with AND with the mask Keras finds on `values` (for
            example after `Embedding(mask_zero=True)`), which Keras passes as
            `values_mask`. A padding mask carried by a 3-D query (`query_mask`)
            zeroes the weights and context of padded query steps and is passed
            on to the outputs.

    Returns:
        `(context, weights)`: `(batch, d_v)` and `(batch, T_v)` for a 2-D
        query, `(batch, T_q, d_v)` and `(batch, T_q, T_v)` for a 3-D one.

    Example:

    >>> import numpy as np
    >>> state = np.random.normal(size=(2, 16)).astype("float32")
    >>> encoded = np.random.normal(size=(2, 7, 32)).astype("float32")
    >>> context, weights = BahdanauAttention(units=8)(state, encoded)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 32), (2, 7))
    """

    def __init__(self, units: int, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"BahdanauAttention: units must be a positive int, got {units!r}.")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, query_shape, values_shape) -> None:
        check_query_and_values("BahdanauAttention", query_shape, values_shape)
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(query_shape[-1], self.units), initializer=self.kernel_initializer
        )
        self.values_kernel = self.add_weight(
            name="values_kernel", shape=(values_shape[-1], self.units), initializer=self.kernel_initializer
        )
        self.score_vector = self.add_weight(name="score_vector", shape=(self.units,), initializer=self.kernel_initializer)

    def call(self, query, values, mask=None, query_mask=None, values_mask=None):
        values_mask = merge_values_masks(mask, values_mask)
        check_query_and_values(
            "BahdanauAttention", query.shape, values.shape, None if values_mask is None else values_mask.shape
        )
        one_step = len(query.shape) == 2
        queries = ops.expand_dims(query, 1) if one_step else query
        projected_query = ops.expand_dims(ops.matmul(queries, self.query_kernel), 2)  # (b, T_q, 1, u)
        projected_values = ops.expand_dims(ops.matmul(values, self.values_kernel), 1)  # (b, 1, T_v, u)
        scores = ops.sum(ops.tanh(projected_query + projected_values) * self.score_vector, axis=-1)
        context, weights = attend(scores, values, values_mask, None if one_step else query_mask)
        if one_step:
            return ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def compute_mask(self, query, previous_mask=None):
        return output_masks(query)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"units": self.units, "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
        )
        return config
