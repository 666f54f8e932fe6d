"""Datasets that ship with scikit-learn, loaded as arrays with their class names.

They need no download, so a config that uses them runs offline on a fresh
machine (`configs/digits_cnn.yaml` uses `digits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name -> (loader function in sklearn.datasets, the model input's name).
# The input name is what serving clients see as the signature's input key.
_DATASETS = {
    "digits": ("load_digits", "pixels"),
    "iris": ("load_iris", "features"),
    "wine": ("load_wine", "features"),
    "breast_cancer": ("load_breast_cancer", "features"),
}


@dataclass(frozen=True)
class ArrayData:
    """Examples held in memory.

    Attributes:
        features: float32 array, one row per example.
        labels: int32 class index per example.
        class_names: the name of each class index.
        input_name: the name the model's input (and the served signature) uses.
    """

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    input_name: str

    def __post_init__(self):
        if len(self.features) != len(self.labels):
            raise ValueError(
                f"features hold {len(self.features)} examples but labels "
                f"{len(self.labels)}; they must match"
            )


def sklearn_dataset_names() -> list[str]:
    return sorted(_DATASETS)


def load_sklearn_dataset(name: str) -> ArrayData:
    """Load one of scikit-learn's bundled datasets by name."""
    if name not in _DATASETS:
        raise ValueError(
            f"unknown scikit-learn dataset {name!r}; choose one of "
            f"{', '.join(sklearn_dataset_names())}"
        )
    import sklearn.datasets

    loader_name, input_name = _DATASETS[name]
    bunch = getattr(sklearn.datasets, loader_name)()
    class_names = tuple(str(c) for c in bunch.target_names)
    return ArrayData(
        features=np.asarray(bunch.data, dtype=np.float32),
        labels=np.asarray(bunch.target, dtype=np.int32),
        class_names=class_names,
        input_name=input_name,
    )
