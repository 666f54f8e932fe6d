"""Deterministic train/validation/test splits that never share an example.

The split works on indices, so the same seed gives the same split for any
array that holds the examples in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfdl.pipelines.errors import DataError


@dataclass(frozen=True)
class SplitIndices:
    """Sorted, disjoint index arrays into the examples, one per split."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_indices(
    labels: np.ndarray,
    validation: float,
    test: float,
    seed: int,
    stratify: bool = True,
) -> SplitIndices:
    """Split example indices into train, validation and test.

    Args:
        labels: one class label per example (used only when stratifying).
        validation: fraction of the examples for validation, in (0, 1).
        test: fraction of the examples for test, in (0, 1).
        seed: the same seed always gives the same split.
        stratify: split each class separately so every split keeps each
            class's share of the examples.

    Raises:
        DataError: if a split would be empty.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(len(labels))]
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for group in groups:
        group = rng.permutation(group)
        n_test = int(round(len(group) * test))
        n_val = int(round(len(group) * validation))
        parts["test"].append(group[:n_test])
        parts["validation"].append(group[n_test : n_test + n_val])
        parts["train"].append(group[n_test + n_val :])
    result = {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
    for name, indices in result.items():
        if len(indices) == 0:
            raise DataError(
                f"the {name} split is empty: {len(labels)} examples with "
                f"validation={validation} and test={test}; use more data or "
                "larger fractions"
            )
    return SplitIndices(**result)
