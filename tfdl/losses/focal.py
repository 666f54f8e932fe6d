"""Focal losses (Lin et al. 2017): cross-entropy that down-weights easy examples.

`BinaryFocalLoss` is for independent binary targets (one sigmoid per output),
`CategoricalFocalLoss` for one-hot targets over a softmax, and
`SparseCategoricalFocalLoss` for the same with integer class labels.

Alpha follows the Keras built-ins exactly, and the two built-ins differ:

- binary: `alpha` weighs the positive class and `1 - alpha` the negative one
  (`keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True)`);
  `alpha=None` switches the weighting off (`apply_class_balancing=False`).
- categorical: `alpha` multiplies every class term (a scalar, or one weight
  per class), as in `keras.losses.CategoricalFocalCrossentropy`; `alpha=1.0`
  is no weighting.

With `gamma=0` the binary loss is the class-weighted binary cross-entropy and
the categorical loss is `alpha` times the categorical cross-entropy.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


def _check_gamma(gamma: float) -> float:
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0 (0 gives plain cross-entropy); got gamma={gamma}.")
    return float(gamma)


def _check_label_smoothing(label_smoothing: float) -> float:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1); got label_smoothing={label_smoothing}.")
    return float(label_smoothing)


@keras.saving.register_keras_serializable(package="tfdl")
class BinaryFocalLoss(keras.losses.Loss):
    """Binary focal cross-entropy, averaged over the last axis.

    Per element, with `p_t` the predicted probability of the true label:
    `w_t * (1 - p_t)**gamma * bce`, where `w_t = alpha` for a positive target
    and `1 - alpha` for a negative one. The per-example loss is the mean over
    the last axis; reduction and `sample_weight` act as in every Keras loss.
    Equals `keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True)`
    (or `apply_class_balancing=False` when `alpha=None`).

    Args:
        alpha: weight of the positive class in [0, 1] (the negative class gets
            `1 - alpha`), or `None` for no class weighting. Default 0.25.
        gamma: focusing parameter >= 0; 0 gives cross-entropy. Default 2.0.
        from_logits: whether `y_pred` holds logits rather than probabilities.
            Default False.
        label_smoothing: in [0, 1); targets are squeezed towards 0.5:
            `y * (1 - s) + 0.5 * s`. Default 0.0.
        reduction: Keras reduction ("sum_over_batch_size", "sum", "none", ...).
        name: name of the loss. Default "binary_focal_loss".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Example:
    >>> loss = BinaryFocalLoss(alpha=0.25, gamma=2.0)
    >>> float(loss([[1.0], [0.0]], [[0.9], [0.2]])) > 0
    True
    """

    def __init__(
        self,
        alpha: float | None = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_focal_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] or None (no class weighting); got alpha={alpha}.")
        self.alpha = None if alpha is None else float(alpha)
        self.gamma = _check_gamma(gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)

    def call(self, y_true, y_pred):
        # Loss.__call__ converts leaf by leaf, so nested Python lists arrive
        # as lists of scalars: make them one tensor each.
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        # Labels of shape (batch,) against outputs of shape (batch, 1), as the
        # built-in binary losses accept.
        if len(y_true.shape) == len(y_pred.shape) - 1 and y_pred.shape[-1] == 1:
            y_true = ops.expand_dims(y_true, -1)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        # From logits, the cross-entropy uses the stable logits formula rather
        # than the sigmoid then a clipped log; the two agree except where the
        # clipping would bite.
        bce = ops.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        probs = ops.sigmoid(y_pred) if self.from_logits else y_pred
        p_true = y_true * probs + (1.0 - y_true) * (1.0 - probs)
        focal = ops.power(1.0 - p_true, self.gamma) * bce
        if self.alpha is not None:
            focal = focal * (y_true * self.alpha + (1.0 - y_true) * (1.0 - self.alpha))
        return ops.mean(focal, axis=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="tfdl")
class CategoricalFocalLoss(keras.losses.Loss):
    """Categorical focal cross-entropy over one-hot targets, summed over classes.

    Per example: `sum_c alpha_c * (1 - p_c)**gamma * (-y_c * log p_c)` over the
    last axis, as `keras.losses.CategoricalFocalCrossentropy` computes it
    (probabilities are renormalised to sum to 1 and clipped to
    [epsilon, 1 - epsilon]; logits go through a log-softmax instead).

    Args:
        alpha: a scalar >= 0 multiplying every class term, or a sequence of
            one weight >= 0 per class (e.g. inverse class frequencies).
            Default 0.25; 1.0 is no weighting.
        gamma: focusing parameter >= 0; 0 gives `alpha` times cross-entropy.
            Default 2.0.
        from_logits: whether `y_pred` holds logits rather than probabilities.
            Default False.
        label_smoothing: in [0, 1); targets become `y * (1 - s) + s / classes`.
            Default 0.0.
        reduction: Keras reduction ("sum_over_batch_size", "sum", "none", ...).
        name: name of the loss. Default "categorical_focal_loss".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Example:
    >>> loss = CategoricalFocalLoss(alpha=0.25, gamma=2.0)
    >>> float(loss([[0.0, 1.0, 0.0]], [[0.1, 0.8, 0.1]])) > 0
    True
    """

    def __init__(
        self,
        alpha: float | Sequence[float] = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_focal_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(alpha, (int, float)):
            self.alpha = float(alpha)
            weights = [self.alpha]
        else:
            self.alpha = [float(a) for a in alpha]
            weights = self.alpha
        if not weights or min(weights) < 0:
            raise ValueError(
                f"alpha must be a number >= 0 or a non-empty list of numbers >= 0 (one per class); got alpha={alpha}."
            )
        self.gamma = _check_gamma(gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)

    def call(self, y_true, y_pred):
        # Loss.__call__ converts leaf by leaf, so nested Python lists arrive
        # as lists of scalars: make them one tensor each.
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        return self._focal(ops.cast(y_true, y_pred.dtype), y_pred)

    def _focal(self, one_hot, y_pred):
        num_classes = y_pred.shape[-1]
        if isinstance(self.alpha, list) and num_classes is not None and len(self.alpha) != num_classes:
            raise ValueError(
                f"alpha has {len(self.alpha)} class weights but y_pred has {num_classes} classes; "
                "give one weight per class."
            )
        if self.label_smoothing:
            classes = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
            one_hot = one_hot * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
            probs = ops.exp(log_probs)
        else:
            epsilon = keras.config.epsilon()
            probs = ops.clip(y_pred / ops.sum(y_pred, axis=-1, keepdims=True), epsilon, 1.0 - epsilon)
            log_probs = ops.log(probs)
        alpha = ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype)
        focal = alpha * ops.power(1.0 - probs, self.gamma) * (-one_hot * log_probs)
        return ops.sum(focal, axis=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="tfdl")
class SparseCategoricalFocalLoss(CategoricalFocalLoss):
    """`CategoricalFocalLoss` with integer class labels instead of one-hot targets.

    `y_true` holds class indices of shape `y_pred.shape[:-1]` (a trailing axis
    of size 1 is accepted too); it is one-hot encoded over `y_pred`'s last
    axis, then the loss is exactly `CategoricalFocalLoss`'s.

    Args:
        alpha: a scalar >= 0 or one weight >= 0 per class. Default 0.25.
        gamma: focusing parameter >= 0. Default 2.0.
        from_logits: whether `y_pred` holds logits. Default False.
        label_smoothing: in [0, 1), applied to the one-hot target. Default 0.0.
        reduction: Keras reduction ("sum_over_batch_size", "sum", "none", ...).
        name: name of the loss. Default "sparse_categorical_focal_loss".
        dtype: dtype (or policy) the loss computes in; default floatx.

    Example:
    >>> loss = SparseCategoricalFocalLoss(gamma=2.0)
    >>> float(loss([1], [[0.1, 0.8, 0.1]])) > 0
    True
    """

    def __init__(
        self,
        alpha: float | Sequence[float] = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sparse_categorical_focal_loss",
        dtype=None,
    ):
        super().__init__(
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )

    def call(self, y_true, y_pred):
        # Loss.__call__ converts leaf by leaf, so nested Python lists arrive
        # as lists of scalars: make them one tensor each.
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        one_hot = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype)
        return self._focal(one_hot, y_pred)
