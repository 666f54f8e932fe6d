"""Examples held in memory: the shape every in-memory source hands on.

scikit-learn datasets, numpy arrays, pandas frames, CSV files, a folder of
text files and the list of files in an image folder all become an
`ArrayData`; the pipeline splits it by index, fits its transforms on the
training rows and feeds it with tf.data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArrayData:
    """Examples held in memory.

    Attributes:
        features: one row per example: float32 values (tabular data, pixels;
            NaN marks a missing value), or strings (texts, image file paths).
        labels: int32 class index per example.
        class_names: the name of each class index.
        input_name: the name the model's input (and the served signature) uses.
        feature_names: the name of each feature column, for tabular data.
    """

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    input_name: str
    feature_names: tuple[str, ...] = ()

    def __post_init__(self):
        if len(self.features) != len(self.labels):
            raise ValueError(
                f"features hold {len(self.features)} examples but labels "
                f"{len(self.labels)}; they must match"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> "ArrayData":
        """The examples at `indices`, in that order."""
        return ArrayData(self.features[indices], self.labels[indices], self.class_names, self.input_name, self.feature_names)
