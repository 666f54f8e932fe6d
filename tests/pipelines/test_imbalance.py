"""Balanced class weights match scikit-learn; resampling reaches the target class mix."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.imbalance import class_distribution, class_weights, resample, resample_dataset

# 900 examples of class 0 and 100 of class 1; each feature row holds its
# example's id, so a drawn pair can be checked against the source.
LABELS = np.array([0] * 900 + [1] * 100, dtype=np.int32)
FEATURES = np.arange(len(LABELS), dtype=np.float32)[:, None]
DRAWS = 4000
TOLERANCE = 0.03


def _draw(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All (ids, labels) of one epoch, read in one batch."""
    x, y = next(iter(dataset.batch(1_000_000)))
    return x.numpy()[:, 0].astype(int), y.numpy()


def test_class_weights_equal_sklearn_balanced():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1 + [3] * 2)
    weights = class_weights(labels, num_classes=4)
    expected = compute_class_weight("balanced", classes=np.arange(4), y=labels)
    assert list(weights) == [0, 1, 2, 3]
    np.testing.assert_allclose(list(weights.values()), expected, rtol=1e-12)
    assert weights == pytest.approx({0: 12 / 24, 1: 12 / 12, 2: 12 / 4, 3: 12 / 8})


def test_class_weights_reject_a_class_missing_from_training():
    with pytest.raises(DataError, match=r"classes \[1, 3\] have no training examples.*re-split with stratification"):
        class_weights(np.array([0, 0, 2]), num_classes=4)


def test_labels_must_be_class_indices():
    with pytest.raises(DataError, match=r"record 3: label 5 is not a class index in \[0, 3\) \(2 such labels\)"):
        class_weights(np.array([0, 1, 2, 5, -1]), num_classes=3)
    with pytest.raises(DataError, match="labels must be integer class indices; got dtype float64"):
        class_distribution(np.array([0.0, 1.0]), num_classes=2)
    with pytest.raises(DataError, match="non-empty 1-D array"):
        class_distribution(np.array([], dtype=np.int64), num_classes=2)


def test_class_distribution():
    distribution = class_distribution(np.array([0, 0, 0, 1, 1, 2, 0, 0, 0, 1]), num_classes=4)
    np.testing.assert_array_equal(distribution, [0.6, 0.3, 0.1, 0.0])


@pytest.mark.parametrize("method", ["oversample", "rejection"])
def test_resample_90_10_to_uniform(method):
    dataset = resample(FEATURES, LABELS, target="uniform", method=method, seed=7, num_examples=DRAWS)
    assert int(dataset.cardinality()) == DRAWS
    ids, labels = _draw(dataset)
    assert len(labels) == DRAWS
    assert abs(labels.mean() - 0.5) <= TOLERANCE
    # Every drawn pair is a real example with its own label.
    np.testing.assert_array_equal(labels, LABELS[ids])
    if method == "oversample":
        # The 100 rare examples are repeated about 20 times each, all of them.
        assert set(ids[labels == 1]) == set(range(900, 1000))


@pytest.mark.parametrize("method", ["oversample", "rejection"])
def test_resample_is_deterministic_for_a_seed(method):
    def build(seed):
        return resample(FEATURES, LABELS, target=[0.7, 0.3], method=method, seed=seed, num_examples=500)

    first = build(3)
    epoch_1, epoch_2 = _draw(first)[0], _draw(first)[0]
    rebuilt = build(3)
    np.testing.assert_array_equal(_draw(rebuilt)[0], epoch_1)
    np.testing.assert_array_equal(_draw(rebuilt)[0], epoch_2)
    # Each epoch draws afresh, and another seed draws differently.
    assert not np.array_equal(epoch_1, epoch_2)
    assert not np.array_equal(_draw(build(4))[0], epoch_1)


@pytest.mark.parametrize("method", ["oversample", "rejection"])
def test_a_class_with_zero_target_is_never_drawn(method):
    labels = np.array([0, 1, 2] * 20, dtype=np.int32)
    features = np.arange(60, dtype=np.float32)[:, None]
    ids, drawn = _draw(resample(features, labels, target=[0.5, 0.5, 0.0], method=method, seed=1, num_examples=600))
    assert set(drawn) == {0, 1}
    np.testing.assert_array_equal(drawn, labels[ids])


def test_rejection_to_the_data_own_mix_passes_the_shuffled_examples_through():
    ids, labels = _draw(resample(FEATURES, LABELS, target=[0.9, 0.1], method="rejection", seed=2))
    shuffled = tf.data.Dataset.from_tensor_slices((FEATURES, LABELS)).shuffle(len(LABELS), seed=2)
    np.testing.assert_array_equal(ids, _draw(shuffled)[0])
    assert labels.mean() == pytest.approx(0.1)


def test_default_epoch_is_the_number_of_examples():
    dataset = resample(FEATURES, LABELS, target="uniform", seed=0)
    assert int(dataset.cardinality()) == len(LABELS)


@pytest.mark.parametrize(
    "target, message",
    [
        ([1.0], r"target has 1 fractions but the labels go up to class 1"),
        ([1.2, -0.2], r"target \[1.2, -0.2\] has a negative or non-finite fraction"),
        ([0.5, 0.4], r"target \[0.5, 0.4\] sums to 0.9, not 1"),
        ("balanced", r"unknown target 'balanced'"),
    ],
)
def test_resample_rejects_a_bad_target(target, message):
    with pytest.raises(DataError, match=message):
        resample(FEATURES, LABELS, target=target)


def test_resample_rejects_a_target_for_a_class_without_examples():
    labels = np.array([0, 0, 2, 2], dtype=np.int32)
    with pytest.raises(DataError, match=r"the target asks for classes \[1\] .*but they have no examples"):
        resample(np.zeros((4, 1)), labels, target=[0.4, 0.2, 0.4])
    with pytest.raises(DataError, match=r"the target asks for classes \[1\]"):
        resample(np.zeros((4, 1)), labels, target="uniform", method="rejection")


def test_resample_rejects_bad_arguments():
    with pytest.raises(DataError, match="unknown resampling method 'smote'"):
        resample(FEATURES, LABELS, target="uniform", method="smote")
    with pytest.raises(DataError, match="num_examples=0: an epoch needs at least one example"):
        resample(FEATURES, LABELS, target="uniform", num_examples=0)
    with pytest.raises(DataError, match="features hold 3 examples but labels 1000"):
        resample(FEATURES[:3], LABELS, target="uniform")
    with pytest.raises(DataError, match=r"record 1: label -1 is not a class index in \[0, 2\)"):
        resample(FEATURES[:2], np.array([1, -1]), target=[0.5, 0.5])


@pytest.mark.parametrize("method", ["oversample", "rejection"])
def test_resample_dataset_mixes_a_class_sorted_stream_within_each_epoch(method):
    # The shape the training feed hands over: cached (x, y) pairs, here
    # sorted by class, with the labels known from the split.
    source = tf.data.Dataset.from_tensor_slices((FEATURES, LABELS)).cache()
    resampled = resample_dataset(source, LABELS, num_classes=2, target="uniform", method=method, seed=11)
    assert int(resampled.cardinality()) == len(LABELS)
    for _ in range(2):
        ids, labels = _draw(resampled)
        assert len(ids) == len(LABELS)
        assert abs(labels.mean() - 0.5) <= 0.05
        np.testing.assert_array_equal(labels, LABELS[ids])
    again = resample_dataset(source, LABELS, num_classes=2, target="uniform", method=method, seed=11)
    np.testing.assert_array_equal(_draw(again)[0], _draw(resample_dataset(source, LABELS, target=[0.5, 0.5], method=method, seed=11))[0])


@pytest.mark.parametrize("method", ["oversample", "rejection"])
def test_resample_dataset_with_a_label_function(method):
    source = tf.data.Dataset.from_tensor_slices({"id": FEATURES[:, 0], "class": LABELS})
    resampled = resample_dataset(
        source,
        LABELS,
        target=[0.25, 0.75],
        method=method,
        seed=5,
        num_examples=DRAWS,
        label_fn=lambda example: example["class"],
    )
    batch = next(iter(resampled.batch(DRAWS + 1)))
    labels = batch["class"].numpy()
    assert len(labels) == DRAWS
    assert abs(labels.mean() - 0.75) <= TOLERANCE
    np.testing.assert_array_equal(labels, LABELS[batch["id"].numpy().astype(int)])


def test_resample_dataset_checks_its_arguments():
    source = tf.data.Dataset.from_tensor_slices((FEATURES, LABELS))
    with pytest.raises(DataError, match=r"target has 3 fractions but there are 2 classes"):
        resample_dataset(source, LABELS, num_classes=2, target=[0.5, 0.3, 0.2])
    with pytest.raises(DataError, match=r"the target asks for classes \[2\]"):
        resample_dataset(source, LABELS, num_classes=3, target="uniform")
    with pytest.raises(DataError, match="unknown resampling method 'undersample'"):
        resample_dataset(source, LABELS, target="uniform", method="undersample")
