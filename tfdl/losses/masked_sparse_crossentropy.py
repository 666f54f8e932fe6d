"""Sparse categorical cross-entropy for padded sequences: pad positions count for nothing.

For sequence models (`y_true` of shape `(batch, T)` with int token ids,
`y_pred` of shape `(batch, T, vocab)`), tokens equal to `pad_token` are
masked out. Two averages, chosen with `average`:

- "token" (default): `call` returns per-token losses `(batch, T)`, zero at
  pads, carrying a Keras mask. Keras's `Loss.__call__` then divides by the
  number of real tokens, so "sum_over_batch_size" is the mean over all real
  tokens in the batch (the usual language-model loss; a long sequence weighs
  more than a short one) and "sum" is their sum. This is what Keras's own
  `SparseCategoricalCrossentropy(ignore_class=...)` does, plus label
  smoothing. `sample_weight`, if given, must broadcast against `(batch, T)`:
  pass `(batch, T)` or `(batch, 1)`.
- "sequence": `call` returns per-example losses `(batch,)`, each the mean over
  that example's real tokens (0 for an all-pad example); every sequence
  weighs the same, and `sample_weight` is `(batch,)`.
"""

from __future__ import annotations

import keras
from keras import ops

# Keras has no public setter for a tensor's mask; this is the one its own
# SparseCategoricalCrossentropy(ignore_class=...) uses, and the test of the
# token average fails if it ever stops working.
from keras.src.backend import set_keras_mask

AVERAGES = ("token", "sequence")


@keras.saving.register_keras_serializable(package="tfdl")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy that ignores `pad_token` positions.

    Per real token: `-sum_v t_v * log p_v`, with `t` the one-hot of the label,
    smoothed as in `keras.losses.CategoricalCrossentropy`:
    `t = one_hot * (1 - s) + s / vocab`. See the module docstring for how
    tokens are averaged.

    Args:
        from_logits: whether `y_pred` holds logits rather than probabilities.
            Default False.
        label_smoothing: in [0, 1). Default 0.0.
        pad_token: the label id that marks padding. Default 0.
        average: "token" (mean over all real tokens of the batch) or
            "sequence" (mean per sequence, then over sequences). Default
            "token".
        reduction: Keras reduction ("sum_over_batch_size", "sum", "none", ...).
        name: name of the loss. Default "masked_sparse_categorical_crossentropy".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Example:
    >>> import numpy as np
    >>> labels = np.array([[3, 1, 0]])  # the last position is padding
    >>> probs = np.full((1, 3, 4), 0.25, "float32")
    >>> round(float(MaskedSparseCategoricalCrossentropy()(labels, probs)), 4)  # log(4)
    1.3863
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        pad_token: int = 0,
        average: str = "token",
        reduction: str | None = "sum_over_batch_size",
        name: str = "masked_sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got label_smoothing={label_smoothing}.")
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}; got average={average!r}.")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.pad_token = int(pad_token)
        self.average = average

    def call(self, y_true, y_pred):
        # Loss.__call__ converts leaf by leaf, so nested Python lists arrive
        # as lists of scalars: make them one tensor each.
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.cast(y_true, "int32")
        is_real = ops.not_equal(labels, self.pad_token)
        vocab = y_pred.shape[-1]
        target = ops.one_hot(labels, vocab, dtype=y_pred.dtype)
        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + self.label_smoothing / vocab
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            # As Keras's categorical cross-entropy: renormalise, then clip
            # away log(0).
            epsilon = keras.config.epsilon()
            probs = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            log_probs = ops.log(ops.clip(probs, epsilon, 1.0 - epsilon))
        real = ops.cast(is_real, y_pred.dtype)
        token_losses = -ops.sum(target * log_probs, axis=-1) * real
        if self.average == "sequence":
            return ops.divide_no_nan(ops.sum(token_losses, axis=-1), ops.sum(real, axis=-1))
        set_keras_mask(token_losses, is_real)
        return token_losses

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "pad_token": self.pad_token,
            "average": self.average,
        }
