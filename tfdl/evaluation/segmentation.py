"""Semantic segmentation metrics: per-class IoU, mean IoU, pixel accuracy, confusion matrix.

Computed in numpy from class-index maps (the argmax of a model's output), so
they can score a whole test set at once, a saved prediction, or another
framework's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class SegmentationMetrics:
    """Evaluation of predicted class maps against true ones, over all pixels.

    `confusion[i, j]` counts pixels of true class i predicted as class j.
    `iou[c]` is TP / (TP + FP + FN) of class c, NaN for a class that appears
    neither in the truth nor in the prediction (its IoU is 0 / 0).

    `mean_iou` averages `iou` over the classes present in the truth or the
    prediction, skipping the NaNs. This is `keras.metrics.MeanIoU`'s
    convention (it divides by the number of classes whose union is not
    empty), so the figure equals what a Keras training log shows; counting an
    absent class as 0 would punish a test set for lacking a class, and
    counting it as 1 would reward nothing.
    """

    class_names: tuple[str, ...]
    confusion: np.ndarray
    iou: np.ndarray
    mean_iou: float
    pixel_accuracy: float

    def to_dict(self) -> dict:
        """JSON-ready figures; a class absent from truth and prediction has IoU None."""
        return {
            "mean_iou": self.mean_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class": {
                name: {
                    "iou": None if np.isnan(self.iou[i]) else float(self.iou[i]),
                    "pixels": int(self.confusion[i].sum()),
                }
                for i, name in enumerate(self.class_names)
            },
            "confusion_matrix": self.confusion.tolist(),
        }


def _class_map(name: str, values: np.ndarray, num_classes: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 3:
        hint = "; take the argmax over the class axis first" if values.ndim == 4 else ""
        raise ValueError(f"{name} has shape {values.shape}; expected [N, H, W] class indices{hint}")
    if values.size == 0:
        raise ValueError(f"{name} is empty (shape {values.shape}); pass at least one pixel")
    if values.dtype.kind not in "iub":
        raise ValueError(
            f"{name} has dtype {values.dtype}; expected integer class indices (take the argmax of the scores)"
        )
    values = values.astype(np.int64)
    if values.min() < 0 or values.max() >= num_classes:
        raise ValueError(
            f"{name} holds class indices in [{values.min()}, {values.max()}], outside [0, {num_classes}) "
            f"for num_classes={num_classes}"
        )
    return values


def segmentation_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> SegmentationMetrics:
    """Score predicted class maps against true ones.

    Args:
        y_true: true class index per pixel, integer array [N, H, W].
        y_pred: predicted class index per pixel, integer array [N, H, W].
        num_classes: number of classes; indices must lie in [0, num_classes).
        class_names: a name per class; defaults to "0", "1", ...

    Returns:
        The metrics; see `SegmentationMetrics` for the mean IoU convention.

    Raises:
        ValueError: if an array is not [N, H, W] integers, is empty, the
            shapes differ, an index is out of range, or `class_names` does
            not have `num_classes` names.

    Example:
        >>> m = segmentation_metrics(np.array([[[0, 1]]]), np.array([[[0, 0]]]), num_classes=2)
        >>> m.iou.tolist(), m.mean_iou, m.pixel_accuracy
        ([0.5, 0.0], 0.25, 0.5)
    """
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes is {num_classes!r}; expected a positive integer")
    num_classes = int(num_classes)
    names = tuple(str(i) for i in range(num_classes)) if class_names is None else tuple(class_names)
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names but num_classes is {num_classes}")
    y_true = _class_map("y_true", y_true, num_classes)
    y_pred = _class_map("y_pred", y_pred, num_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred {y_pred.shape}; they must match")

    confusion = np.bincount(
        (y_true * num_classes + y_pred).ravel(), minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positive
    iou = np.divide(true_positive, union, out=np.full(num_classes, np.nan), where=union > 0)
    return SegmentationMetrics(
        class_names=names,
        confusion=confusion,
        iou=iou,
        mean_iou=float(np.nanmean(iou)),
        pixel_accuracy=float(true_positive.sum() / y_true.size),
    )
