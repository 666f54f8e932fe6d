"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ClassificationMetrics:
    """Evaluation of predicted class indices against true ones.

    `confusion[i, j]` counts examples of true class i predicted as class j.
    Precision of a class never predicted, and recall of a class absent from
    the labels, are 0 (as scikit-learn's `zero_division=0`).
    """

    class_names: tuple[str, ...]
    confusion: np.ndarray
    accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    def to_dict(self) -> dict:
        """JSON-ready figures, per class keyed by class name."""
        return {
            "accuracy": self.accuracy,
            "macro_precision": float(self.precision.mean()),
            "macro_recall": float(self.recall.mean()),
            "macro_f1": self.macro_f1,
            "per_class": {
                name: {
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, name in enumerate(self.class_names)
            },
            "confusion_matrix": self.confusion.tolist(),
        }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> ClassificationMetrics:
    """Compute the metrics from class indices (not probabilities)."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred {y_pred.size}")
    n = len(class_names)
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= n):
            raise ValueError(f"{name} holds class indices outside [0, {n}) for {n} class names")
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return ClassificationMetrics(
        class_names=tuple(class_names),
        confusion=confusion,
        accuracy=float(true_positive.sum() / max(y_true.size, 1)),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
    )
