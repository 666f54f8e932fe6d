"""Dice loss for segmentation masks: 1 - soft Dice overlap, per example.

The API, in one place:

- `y_pred` always has a channel axis last: `(batch, *spatial, channels)`.
  One channel means a binary mask (sigmoid); several mean mutually exclusive
  classes (softmax). `from_logits=True` applies that activation.
- `y_true` is either a mask of the same shape as `y_pred` (binary 0/1, or
  one-hot over the classes), or, with `sparse_labels=True`, integer class
  ids of shape `(batch, *spatial)` (or with a trailing axis of size 1).
- Dice is computed over `axis` (default: the spatial axes, so one score per
  class), then `1 - dice` is averaged over the axes that remain besides the
  batch (the classes: a macro average, background included). Pass
  `axis=(1, ..., rank-1)` for one Dice over everything, classes pooled.

Per class: `dice = (2 * sum(y * p) + smooth) / (sum(y) + sum(p) + smooth)`,
so a perfect prediction scores ~0 and an empty mask predicted empty scores 0.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss, one value per example (see the module docstring for shapes).

    Args:
        smooth: > 0, added to numerator and denominator so that empty masks
            are defined and gradients stay finite. Default 1.0.
        from_logits: whether `y_pred` holds logits (sigmoid for one channel,
            softmax over the last axis for several). Default False.
        sparse_labels: whether `y_true` holds integer class ids rather than a
            mask / one-hot of `y_pred`'s shape. Default False.
        axis: the axes (ints, never the batch axis 0) each Dice score sums
            over; default None means the spatial axes `1 .. rank-2`.
        reduction: Keras reduction ("sum_over_batch_size", "sum", "none", ...).
        name: name of the loss. Default "dice_loss".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Example:
    >>> import numpy as np
    >>> mask = np.zeros((2, 4, 4, 1), "float32"); mask[:, 1:3, 1:3] = 1
    >>> float(DiceLoss()(mask, mask)) < 1e-6
    True
    """

    def __init__(
        self,
        smooth: float = 1.0,
        from_logits: bool = False,
        sparse_labels: bool = False,
        axis: int | Sequence[int] | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not smooth > 0:
            raise ValueError(f"smooth must be > 0 (it keeps empty masks defined); got smooth={smooth}.")
        if axis is not None:
            axis = [int(axis)] if isinstance(axis, int) else [int(a) for a in axis]
            if not axis or 0 in axis:
                raise ValueError(f"axis must be a non-empty list of non-batch axes (>= 1 or negative); got axis={axis}.")
        self.smooth = float(smooth)
        self.from_logits = bool(from_logits)
        self.sparse_labels = bool(sparse_labels)
        self.axis = axis

    def _dice_axes(self, rank: int) -> tuple[int, ...]:
        if self.axis is None:
            if rank < 3:
                raise ValueError(
                    f"DiceLoss expects y_pred of shape (batch, *spatial, channels); got rank {rank}. "
                    "Add a channel axis, or pass axis= explicitly."
                )
            return tuple(range(1, rank - 1))
        axes = tuple(sorted(a % rank for a in self.axis))
        if 0 in axes:
            raise ValueError(f"axis={self.axis} includes the batch axis for y_pred of rank {rank}.")
        return axes

    def call(self, y_true, y_pred):
        # Loss.__call__ converts leaf by leaf, so nested Python lists arrive
        # as lists of scalars: make them one tensor each.
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        channels = y_pred.shape[-1]
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred) if channels == 1 else ops.softmax(y_pred, axis=-1)
        if self.sparse_labels:
            if len(y_true.shape) == len(y_pred.shape):
                y_true = ops.squeeze(y_true, axis=-1)
            if channels == 1:
                y_true = ops.expand_dims(y_true, -1)
            else:
                y_true = ops.one_hot(ops.cast(y_true, "int32"), channels)
        y_true = ops.cast(y_true, y_pred.dtype)

        rank = len(y_pred.shape)
        axes = self._dice_axes(rank)
        intersection = ops.sum(y_true * y_pred, axis=axes)
        total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        loss = 1.0 - dice
        remaining = tuple(range(1, len(loss.shape)))
        return ops.mean(loss, axis=remaining) if remaining else loss

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "smooth": self.smooth,
            "from_logits": self.from_logits,
            "sparse_labels": self.sparse_labels,
            "axis": self.axis,
        }
