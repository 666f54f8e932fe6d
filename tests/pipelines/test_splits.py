import numpy as np
import pytest

from tfdl.pipelines import split_indices


def labels(n_per_class=(50, 30, 20)):
    return np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])


def test_splits_are_disjoint_and_cover_every_example():
    y = labels()
    split = split_indices(y, validation=0.2, test=0.1, seed=0)
    together = np.concatenate([split.train, split.validation, split.test])
    assert len(together) == len(y)
    assert len(np.unique(together)) == len(y)


def test_same_seed_same_split_other_seed_other_split():
    y = labels()
    a, b, c = (split_indices(y, 0.2, 0.1, seed=s) for s in (3, 3, 4))
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("train", "validation", "test"))
    assert not np.array_equal(a.test, c.test)


def test_stratified_split_keeps_each_class_share():
    y = labels((100, 60, 40))
    split = split_indices(y, validation=0.2, test=0.25, seed=1, stratify=True)
    for part, fraction in ((split.test, 0.25), (split.validation, 0.2)):
        counts = np.bincount(y[part], minlength=3)
        np.testing.assert_array_equal(counts, np.round(np.array([100, 60, 40]) * fraction))


def test_split_that_would_be_empty_is_an_error():
    with pytest.raises(ValueError, match="split is empty: 3 examples"):
        split_indices(np.zeros(3), validation=0.1, test=0.1, seed=0)
