"""Losses of the one-stage detector (RetinaNet, Lin et al. 2017) on the targets of `encode_targets`.

`AnchorFocalLoss` is the sigmoid focal loss summed over every anchor and
class, `AnchorHuberLoss` the Huber (smooth-L1) loss of the box offsets
summed over positive anchors. Both divide an image's sum by its number of
positive anchors (at least 1), so an image with many objects does not
outweigh one with few, and return one value per image: reduction and
`sample_weight` then act as in every Keras loss, and Keras's `Loss.__call__`
divides by the number of replicas under tf.distribute.

Targets (see `tfdl.models.detection_targets`):
- class targets `(B, A)`: a class id >= 0 on positive anchors, -1
  (background) on negative ones, -2 on ignored ones, which add nothing;
- box targets `(B, A, 5)`: four encoded offsets and a 1.0 flag on positive
  anchors.
"""

from __future__ import annotations

import keras
from keras import ops


def _positives_per_image(positive):
    """Positive anchors per image, at least 1, so an image without objects divides by 1."""
    return ops.maximum(ops.sum(positive, axis=-1), 1.0)


@keras.saving.register_keras_serializable(package="tfdl")
class AnchorFocalLoss(keras.losses.Loss):
    """Sigmoid focal loss over anchors and classes, normalized by each image's positive anchors.

    Per anchor a and class c, with logit `x`, `p = sigmoid(x)`, target
    `y = 1` if anchor a is positive for class c else 0:

        FL = alpha_t * (1 - p_t)**gamma * BCE(y, x)
        p_t = y * p + (1 - y) * (1 - p),   alpha_t = y * alpha + (1 - y) * (1 - alpha)

    The loss of an image is the sum of FL over its non-ignored anchors and
    all classes, divided by `max(1, positive anchors)`. Background anchors
    count with `y = 0` for every class.

    Args:
        alpha: weight of the positive targets in [0, 1]; negatives get
            `1 - alpha`. Defaults to 0.25.
        gamma: focusing parameter >= 0 (0: cross-entropy). Defaults to 2.0.
        reduction: Keras reduction of the per-image losses. Defaults to
            "sum_over_batch_size".
        name: name of the loss. Defaults to "anchor_focal_loss".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Call arguments:
        y_true: class targets `(B, A)`: class id, -1 background, -2 ignored.
        y_pred: class logits `(B, A, C)`.

    Example:

    >>> loss = AnchorFocalLoss(reduction="none")
    >>> [round(v, 4) for v in loss([[0, -1, -2]], [[[0.0, 0.0], [0.0, 0.0], [9.0, 9.0]]]).numpy().tolist()]
    [0.4332]
    """

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "anchor_focal_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"AnchorFocalLoss: alpha must be in [0, 1]; got alpha={alpha}.")
        if gamma < 0:
            raise ValueError(f"AnchorFocalLoss: gamma must be >= 0 (0 gives cross-entropy); got gamma={gamma}.")
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) != len(y_pred.shape) - 1:
            raise ValueError(
                f"AnchorFocalLoss takes class targets (batch, anchors) and logits (batch, anchors, classes); got "
                f"shapes {tuple(y_true.shape)} and {tuple(y_pred.shape)}. Make targets with encode_targets."
            )
        positive = ops.cast(y_true >= 0, y_pred.dtype)
        counted = ops.cast(y_true >= -1, y_pred.dtype)  # not ignored
        classes = ops.cast(ops.maximum(y_true, 0), "int32")
        target = ops.one_hot(classes, ops.shape(y_pred)[-1], dtype=y_pred.dtype) * positive[..., None]
        # The logits form of the cross-entropy: stable where a sigmoid would saturate.
        bce = ops.binary_crossentropy(target, y_pred, from_logits=True)
        probs = ops.sigmoid(y_pred)
        p_true = target * probs + (1.0 - target) * (1.0 - probs)
        weight = target * self.alpha + (1.0 - target) * (1.0 - self.alpha)
        focal = weight * ops.power(1.0 - p_true, self.gamma) * bce
        per_anchor = ops.sum(focal, axis=-1) * counted
        return ops.sum(per_anchor, axis=-1) / _positives_per_image(positive)

    def get_config(self) -> dict:
        return {**super().get_config(), "dtype": self._dtype_policy.name, "alpha": self.alpha, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="tfdl")
class AnchorHuberLoss(keras.losses.Loss):
    """Huber (smooth-L1) loss of box offsets on positive anchors, normalized by each image's positive anchors.

    Per coordinate, with `d = y_pred - y_true`:
    `0.5 * d**2` if `|d| <= delta`, else `delta * (|d| - 0.5 * delta)` (as
    `keras.losses.Huber`; with `delta=1` it is smooth-L1). The loss of an
    image is the sum over its positive anchors and the four offsets, divided
    by `max(1, positive anchors)`; other anchors add nothing, whatever the
    model predicts for them.

    Args:
        delta: where the loss turns from quadratic to linear, > 0. Defaults
            to 1.0 (offsets coded with scale factors (10, 10, 5, 5) are about
            unit-sized).
        reduction: Keras reduction of the per-image losses. Defaults to
            "sum_over_batch_size".
        name: name of the loss. Defaults to "anchor_huber_loss".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Call arguments:
        y_true: box targets `(B, A, 5)`: four offsets and the positive flag.
        y_pred: box offsets `(B, A, 4)`.

    Example:

    >>> loss = AnchorHuberLoss(reduction="none")
    >>> y_true = [[[0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]
    >>> loss(y_true, [[[0.5, 2.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]]]).numpy().tolist()
    [1.625]
    """

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "anchor_huber_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not delta > 0:
            raise ValueError(f"AnchorHuberLoss: delta must be > 0; got delta={delta}.")
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if y_true.shape[-1] != 5 or y_pred.shape[-1] != 4 or len(y_true.shape) != len(y_pred.shape):
            raise ValueError(
                f"AnchorHuberLoss takes box targets (batch, anchors, 5) (offsets and a positive flag) and "
                f"offsets (batch, anchors, 4); got shapes {tuple(y_true.shape)} and {tuple(y_pred.shape)}. "
                "Make targets with encode_targets."
            )
        positive = y_true[..., 4]
        error = ops.abs(y_pred - y_true[..., :4])
        huber = ops.where(error <= self.delta, 0.5 * ops.square(error), self.delta * (error - 0.5 * self.delta))
        per_anchor = ops.sum(huber, axis=-1) * positive
        return ops.sum(per_anchor, axis=-1) / _positives_per_image(positive)

    def get_config(self) -> dict:
        return {**super().get_config(), "dtype": self._dtype_policy.name, "delta": self.delta}
