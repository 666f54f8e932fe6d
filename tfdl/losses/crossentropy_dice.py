"""Cross-entropy plus Dice for segmentation: per-pixel accuracy and per-class overlap in one loss.

Cross-entropy alone is dominated by the background in images where objects
are small; Dice counts each class's overlap equally. Their sum is the usual
remedy (e.g. nnU-Net). Labels are sparse class ids per pixel.
"""

from __future__ import annotations

import keras
from keras import ops

from tfdl.losses.dice import DiceLoss


@keras.saving.register_keras_serializable(package="tfdl")
class CrossentropyDiceLoss(keras.losses.Loss):
    """`mean pixel cross-entropy + dice_weight * DiceLoss`, one value per example.

    Args:
        dice_weight: weight of the Dice term (0 gives plain cross-entropy). Default 1.0.
        smooth: the Dice smoothing term. Default 1.0.
        from_logits: whether `y_pred` holds logits rather than softmax probabilities.
        reduction, name, dtype: as for any Keras loss.

    Shapes: `y_true (batch, height, width)` integer class ids (or with a
    trailing axis of 1); `y_pred (batch, height, width, classes)`.

    Example:
    >>> import numpy as np
    >>> y = np.zeros((1, 2, 2), "int32"); y[0, 0, 0] = 1
    >>> perfect = np.eye(2, dtype="float32")[y]
    >>> round(float(CrossentropyDiceLoss()(y, perfect)), 4)
    0.0
    """

    def __init__(self, dice_weight: float = 1.0, smooth: float = 1.0, from_logits: bool = False,
                 reduction: str | None = "sum_over_batch_size", name: str = "crossentropy_dice_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if dice_weight < 0:
            raise ValueError(f"dice_weight must be >= 0; got dice_weight={dice_weight}.")
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)
        self.from_logits = bool(from_logits)
        self._dice = DiceLoss(smooth=smooth, from_logits=from_logits, sparse_labels=True, reduction="none")

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        pixels = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        crossentropy = ops.mean(pixels, axis=tuple(range(1, len(pixels.shape))))
        return crossentropy + self.dice_weight * self._dice.call(y_true, y_pred)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "dtype": self._dtype_policy.name,
            "dice_weight": self.dice_weight,
            "smooth": self.smooth,
            "from_logits": self.from_logits,
        }
