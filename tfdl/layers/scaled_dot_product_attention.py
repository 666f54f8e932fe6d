"""Scaled dot-product attention, softmax(Q K^T / sqrt(d_k) + mask) V, with padding, causal and explicit masks.

Also home of `masked_softmax`, the one masked softmax the attention layers of
tfdl share: masked positions get weight exactly 0, and a row with nothing to
attend to comes out as zeros instead of NaN.
"""

from __future__ import annotations

import keras
from keras import ops


def _fill_value(dtype) -> float:
    # Finite, so a fully masked row stays finite through the softmax; float16
    # cannot hold -1e9 (it would become -inf, and -inf - -inf is NaN).
    return -65504.0 if str(dtype) == "float16" else -1e9


def masked_softmax(scores, mask=None):
    """Softmax of `scores` over the last axis, with weight 0 where `mask` is False.

    `mask` is boolean (or 0/1) and broadcastable to `scores`. Rows where the
    mask has no True value return all zeros rather than NaN.
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    filled = ops.where(mask, scores, ops.cast(_fill_value(scores.dtype), scores.dtype))
    weights = ops.softmax(filled, axis=-1)
    # A fully masked row is uniform after the softmax; zero it explicitly.
    return weights * ops.cast(mask, weights.dtype)


def causal_mask(query_length, key_length):
    """Boolean (1, T_q, T_k) mask that lets query i attend to keys 0..i only."""
    rows = ops.expand_dims(ops.arange(query_length), 1)
    cols = ops.expand_dims(ops.arange(key_length), 0)
    return ops.expand_dims(ops.greater_equal(rows, cols), 0)


def _check_rank(name: str, tensor, rank: int, meaning: str) -> None:
    if tensor is not None and len(tensor.shape) != rank:
        raise ValueError(
            f"ScaledDotProductAttention: `{name}` must have rank {rank} {meaning}, "
            f"got shape {tuple(tensor.shape)}."
        )


def _mismatch(a, b) -> bool:
    return a is not None and b is not None and a != b


@keras.saving.register_keras_serializable(package="tfdl")
class ScaledDotProductAttention(keras.layers.Layer):
    """Scaled dot-product attention: `softmax(Q K^T / sqrt(d_k) + mask) V`.

    The layer has no weights. Scores are `query @ key^T / sqrt(d_k)`; every
    mask that applies is combined with a logical AND into one boolean
    `(batch, T_q, T_k)` mask (True = may attend): the explicit
    `attention_mask`, the Keras padding masks carried by `query` (rows) and by
    `value`/`key` (columns), and the causal mask. Masked keys get weight
    exactly 0; a query row with no key left to attend to (or a padded query
    position) gets all-zero weights and a zero context, never NaN.

    Args:
        dropout: float in [0, 1), fraction of attention weights dropped during
            training (weights are not renormalized after dropout). Defaults
            to `0.0`.
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`
            used for dropout. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(batch, T_q, d_k)`.
        value: `(batch, T_k, d_v)`.
        key: `(batch, T_k, d_k)`; defaults to `value`.
        attention_mask: `(batch, T_q, T_k)` boolean or 0/1, 1/True = attend
            (a dimension of 1 broadcasts). Defaults to `None`.
        use_causal_mask: bool, query i attends to keys 0..i only. Defaults to
            `False`.
        return_attention_scores: bool, also return the weights. Defaults to
            `False`.
        training: bool, dropout is applied only when True.
        query_mask, value_mask, key_mask: `(batch, T)` padding masks; Keras
            fills them from the masks the inputs carry (for example after an
            `Embedding(mask_zero=True)`), or pass them explicitly.

    Returns:
        The context `(batch, T_q, d_v)`, or `(context, weights)` with weights
        `(batch, T_q, T_k)` when `return_attention_scores=True`. The query's
        padding mask is passed on to the context.

    Example:

    >>> import numpy as np
    >>> q = np.random.normal(size=(2, 3, 8)).astype("float32")
    >>> v = np.random.normal(size=(2, 5, 8)).astype("float32")
    >>> context, weights = ScaledDotProductAttention()(q, v, return_attention_scores=True)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 8), (2, 3, 5))
    """

    def __init__(self, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ScaledDotProductAttention: dropout must be in [0, 1), got {dropout}.")
        self.dropout = dropout
        self.seed = seed
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None

    def call(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
        training: bool | None = None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
    ):
        key = value if key is None else key
        self._validate(query, value, key, attention_mask, query_mask, value_mask, key_mask)

        depth = query.shape[-1] if query.shape[-1] is not None else ops.shape(query)[-1]
        scale = ops.rsqrt(ops.cast(depth, query.dtype))
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) * scale
        mask = self._combined_mask(scores, attention_mask, use_causal_mask, query_mask, value_mask, key_mask)
        weights = masked_softmax(scores, mask)
        attended = weights
        if training and self.dropout > 0:
            attended = keras.random.dropout(weights, self.dropout, seed=self.seed_generator)
        context = ops.matmul(attended, value)
        if return_attention_scores:
            return context, weights
        return context

    def _combined_mask(self, scores, attention_mask, use_causal_mask, query_mask, value_mask, key_mask):
        masks = []
        if attention_mask is not None:
            masks.append(ops.cast(attention_mask, "bool"))
        if query_mask is not None:
            masks.append(ops.expand_dims(ops.cast(query_mask, "bool"), -1))
        for column_mask in (value_mask, key_mask):
            if column_mask is not None:
                masks.append(ops.expand_dims(ops.cast(column_mask, "bool"), -2))
        if use_causal_mask:
            masks.append(causal_mask(ops.shape(scores)[-2], ops.shape(scores)[-1]))
        if not masks:
            return None
        combined = masks[0]
        for mask in masks[1:]:
            combined = ops.logical_and(combined, mask)
        return combined

    def _validate(self, query, value, key, attention_mask, query_mask, value_mask, key_mask) -> None:
        _check_rank("query", query, 3, "(batch, T_q, d_k)")
        _check_rank("value", value, 3, "(batch, T_k, d_v)")
        _check_rank("key", key, 3, "(batch, T_k, d_k)")
        _check_rank("attention_mask", attention_mask, 3, "(batch, T_q, T_k)")
        for name, mask in (("query_mask", query_mask), ("value_mask", value_mask), ("key_mask", key_mask)):
            _check_rank(name, mask, 2, "(batch, T)")
        q, k, v = tuple(query.shape), tuple(key.shape), tuple(value.shape)
        if _mismatch(q[-1], k[-1]):
            raise ValueError(
                f"ScaledDotProductAttention: query and key need the same last dimension d_k, "
                f"got query shape {q} and key shape {k}."
            )
        if _mismatch(k[1], v[1]):
            raise ValueError(
                f"ScaledDotProductAttention: key and value need the same length T_k (axis 1), "
                f"got key shape {k} and value shape {v}."
            )
        if attention_mask is not None:
            m = tuple(attention_mask.shape)
            if any(_mismatch(got, want) and got != 1 for got, want in zip(m[1:], (q[1], k[1]))):
                raise ValueError(
                    f"ScaledDotProductAttention: attention_mask must be (batch, T_q, T_k) = "
                    f"(batch, {q[1]}, {k[1]}), got shape {m}."
                )
        for name, mask, length in (("query_mask", query_mask, q[1]), ("value_mask", value_mask, k[1]), ("key_mask", key_mask, k[1])):
            if mask is not None and _mismatch(tuple(mask.shape)[1], length):
                raise ValueError(
                    f"ScaledDotProductAttention: {name} must be (batch, {length}), got shape {tuple(mask.shape)}."
                )

    def compute_mask(self, query, previous_mask=None):
        # Keras hands over the mask carried by `query`; it marks the context's
        # valid time steps.
        return previous_mask

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"dropout": self.dropout, "seed": self.seed})
        return config
