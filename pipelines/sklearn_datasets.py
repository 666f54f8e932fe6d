"""Datasets that ship with scikit-learn, loaded as arrays with their class names.

They need no download, so a config that uses them runs offline on a fresh
machine (`configs/digits_cnn.yaml` uses `digits`).
"""

from __future__ import annotations

import numpy as np

from tfdl.pipelines.array_data import ArrayData

# name -> (loader function in sklearn.datasets, the model input's name).
# The input name is what serving clients see as the signature's input key.
_DATASETS = {
    "digits": ("load_digits", "pixels"),
    "iris": ("load_iris", "features"),
    "wine": ("load_wine", "features"),
    "breast_cancer": ("load_breast_cancer", "features"),
}


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
