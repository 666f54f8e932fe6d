"""Luong (multiplicative) attention of a decoder state over encoder outputs, for seq2seq models."""

from __future__ import annotations

import keras
from keras import ops

from tfdl.layers.bahdanau_attention import attend, check_query_and_values, merge_values_masks, output_masks

SCORES = ("dot", "general")


@keras.saving.register_keras_serializable(package="tfdl")
class LuongAttention(keras.layers.Layer):
    """Multiplicative attention (Luong et al., 2015): `score(s, h) = s^T h` or `s^T W h`.

    For each query `s` (a decoder state) and each encoder output `h`, the
    score is `s^T h` (`score="dot"`, needs `d_q == d_v`) or `s^T W h`
    (`score="general"`, `W` is a learned `(d_q, d_v)` matrix), optionally
    multiplied by a learned scalar; the weights are the softmax of the scores
    over the encoder time axis (masked positions get weight 0) and the context
    is the weighted sum of the encoder outputs.

    Args:
        score: `"dot"` or `"general"`, the score function above. Defaults to
            `"dot"`.
        scale: bool, multiply the scores by a learned scalar (initialized to 1,
            as `keras.layers.Attention(use_scale=True)`), which lets the model
            sharpen or flatten its weights. Defaults to `False`.
        kernel_initializer: initializer of `W` (only for `"general"`).
            Defaults to `"glorot_uniform"`.
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
    >>> context, weights = LuongAttention(score="general")(state, encoded)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 32), (2, 7))
    """

    def __init__(self, score: str = "dot", scale: bool = False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"LuongAttention: score must be one of {SCORES}, got {score!r}.")
        self.score = score
        self.scale = scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, query_shape, values_shape) -> None:
        check_query_and_values("LuongAttention", query_shape, values_shape)
        self._check_dot_dims(query_shape, values_shape)
        self.kernel = None
        self.score_scale = None
        if self.score == "general":
            self.kernel = self.add_weight(
                name="kernel", shape=(query_shape[-1], values_shape[-1]), initializer=self.kernel_initializer
            )
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def _check_dot_dims(self, query_shape, values_shape) -> None:
        d_q, d_v = query_shape[-1], values_shape[-1]
        if self.score == "dot" and None not in (d_q, d_v) and d_q != d_v:
            raise ValueError(
                f"LuongAttention(score='dot') needs query and values with the same last dimension, "
                f"got query shape {tuple(query_shape)} and values shape {tuple(values_shape)}; "
                f"use score='general', which learns a ({d_q}, {d_v}) matrix between them."
            )

    def call(self, query, values, mask=None, query_mask=None, values_mask=None):
        values_mask = merge_values_masks(mask, values_mask)
        check_query_and_values(
            "LuongAttention", query.shape, values.shape, None if values_mask is None else values_mask.shape
        )
        self._check_dot_dims(query.shape, values.shape)
        one_step = len(query.shape) == 2
        queries = ops.expand_dims(query, 1) if one_step else query
        if self.kernel is not None:
            queries = ops.matmul(queries, self.kernel)
        scores = ops.matmul(queries, ops.swapaxes(values, -1, -2))  # (b, T_q, T_v)
        if self.score_scale is not None:
            scores = scores * self.score_scale
        context, weights = attend(scores, values, values_mask, None if one_step else query_mask)
        if one_step:
            return ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def compute_mask(self, query, previous_mask=None):
        return output_masks(query)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "score": self.score,
                "scale": self.scale,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
