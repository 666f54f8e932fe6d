"""Focal losses equal the Keras built-ins, a numpy formula, and cross-entropy at gamma=0."""

import keras
import numpy as np
import pytest
from loss_contract import assert_compiled_roundtrip, assert_reduces_like_keras

from tfdl.losses import BinaryFocalLoss, CategoricalFocalLoss, SparseCategoricalFocalLoss

rng = np.random.default_rng(0)
BATCH, OUTPUTS, CLASSES = 8, 5, 4
BINARY_TRUE = rng.integers(0, 2, size=(BATCH, OUTPUTS)).astype("float32")
BINARY_LOGITS = rng.normal(scale=2.0, size=(BATCH, OUTPUTS)).astype("float32")
BINARY_PROBS = (1 / (1 + np.exp(-BINARY_LOGITS))).astype("float32")
LABELS = rng.integers(0, CLASSES, size=(BATCH,))
ONE_HOT = np.eye(CLASSES, dtype="float32")[LABELS]
LOGITS = rng.normal(scale=2.0, size=(BATCH, CLASSES)).astype("float32")
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype("float32")


def numpy_binary_focal(y, p, alpha, gamma, smoothing):
    y = y * (1 - smoothing) + 0.5 * smoothing
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_true = y * p + (1 - y) * (1 - p)
    weight = 1.0 if alpha is None else y * alpha + (1 - y) * (1 - alpha)
    return np.mean(weight * (1 - p_true) ** gamma * bce, axis=-1)


def numpy_categorical_focal(y, p, alpha, gamma, smoothing):
    y = y * (1 - smoothing) + smoothing / y.shape[-1]
    return np.sum(np.asarray(alpha) * (1 - p) ** gamma * -y * np.log(p), axis=-1)


@pytest.mark.parametrize("alpha", [0.25, 0.8, None])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_equals_keras_builtin_and_numpy(alpha, gamma, smoothing, from_logits):
    y_pred = BINARY_LOGITS if from_logits else BINARY_PROBS
    ours = BinaryFocalLoss(alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=smoothing, reduction="none")
    keras_loss = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha,
        gamma=gamma,
        from_logits=from_logits,
        label_smoothing=smoothing,
        reduction="none",
    )
    actual = np.asarray(ours(BINARY_TRUE, y_pred))
    assert actual.shape == (BATCH,)
    np.testing.assert_allclose(actual, np.asarray(keras_loss(BINARY_TRUE, y_pred)), rtol=1e-5, atol=1e-6)
    expected = numpy_binary_focal(BINARY_TRUE, BINARY_PROBS, alpha, gamma, smoothing)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6)


def test_binary_gamma_zero_is_class_weighted_cross_entropy():
    bce = np.asarray(keras.losses.BinaryCrossentropy(reduction="none")(BINARY_TRUE, BINARY_PROBS))
    plain = BinaryFocalLoss(alpha=None, gamma=0.0, reduction="none")(BINARY_TRUE, BINARY_PROBS)
    np.testing.assert_allclose(plain, bce, rtol=1e-5)
    # alpha weighs positives, 1 - alpha negatives, element by element.
    elementwise = -(BINARY_TRUE * np.log(BINARY_PROBS) + (1 - BINARY_TRUE) * np.log(1 - BINARY_PROBS))
    weights = np.where(BINARY_TRUE == 1, 0.9, 0.1)
    weighted = BinaryFocalLoss(alpha=0.9, gamma=0.0, reduction="none")(BINARY_TRUE, BINARY_PROBS)
    np.testing.assert_allclose(weighted, np.mean(weights * elementwise, -1), rtol=1e-4)


def test_focusing_down_weights_easy_examples_more_than_hard_ones():
    y_true = np.array([[1.0], [1.0]], "float32")
    y_pred = np.array([[0.95], [0.3]], "float32")  # easy, hard
    focal = np.asarray(BinaryFocalLoss(alpha=None, gamma=2.0, reduction="none")(y_true, y_pred))
    bce = np.asarray(BinaryFocalLoss(alpha=None, gamma=0.0, reduction="none")(y_true, y_pred))
    ratio = focal / bce
    np.testing.assert_allclose(ratio, [0.05**2, 0.7**2], rtol=1e-4)


def test_binary_accepts_labels_without_the_output_axis():
    y_pred = BINARY_PROBS[:, :1]
    with_axis = BinaryFocalLoss(reduction="none")(BINARY_TRUE[:, :1], y_pred)
    without_axis = BinaryFocalLoss(reduction="none")(BINARY_TRUE[:, 0], y_pred)
    np.testing.assert_allclose(without_axis, with_axis)


@pytest.mark.parametrize("alpha", [0.25, 1.0, [0.1, 0.2, 0.3, 0.4]])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_equals_keras_builtin_and_numpy(alpha, gamma, smoothing, from_logits):
    y_pred = LOGITS if from_logits else PROBS
    kwargs = dict(alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=smoothing, reduction="none")
    actual = np.asarray(CategoricalFocalLoss(**kwargs)(ONE_HOT, y_pred))
    assert actual.shape == (BATCH,)
    expected_keras = keras.losses.CategoricalFocalCrossentropy(**kwargs)(ONE_HOT, y_pred)
    np.testing.assert_allclose(actual, np.asarray(expected_keras), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(actual, numpy_categorical_focal(ONE_HOT, PROBS, alpha, gamma, smoothing), rtol=1e-4, atol=1e-6)
    sparse = SparseCategoricalFocalLoss(**kwargs)
    np.testing.assert_allclose(sparse(LABELS, y_pred), actual, rtol=1e-6)
    np.testing.assert_allclose(sparse(LABELS[:, None], y_pred), actual, rtol=1e-6)


def test_categorical_gamma_zero_is_alpha_times_cross_entropy():
    cce = np.asarray(keras.losses.CategoricalCrossentropy(reduction="none", label_smoothing=0.1)(ONE_HOT, PROBS))
    focal = CategoricalFocalLoss(alpha=0.5, gamma=0.0, label_smoothing=0.1, reduction="none")(ONE_HOT, PROBS)
    np.testing.assert_allclose(focal, 0.5 * cce, rtol=1e-5)


def test_categorical_from_logits_is_stable_where_probabilities_underflow():
    logits = np.array([[200.0, -200.0, 0.0]], "float32")
    one_hot = np.array([[0.0, 1.0, 0.0]], "float32")
    value = float(CategoricalFocalLoss(alpha=1.0, gamma=0.0, from_logits=True)(one_hot, logits))
    np.testing.assert_allclose(value, 400.0, rtol=1e-5)  # -log softmax, not clipped at -log(1e-7)


@pytest.mark.parametrize("loss_class", [BinaryFocalLoss, CategoricalFocalLoss])
def test_reductions_and_sample_weight_match_keras(loss_class):
    if loss_class is BinaryFocalLoss:
        y_true, y_pred = BINARY_TRUE, BINARY_PROBS
        reference = numpy_binary_focal(y_true, y_pred, 0.4, 2.0, 0.0)
    else:
        y_true, y_pred = ONE_HOT, PROBS
        reference = numpy_categorical_focal(y_true, y_pred, 0.4, 2.0, 0.0)
    assert_reduces_like_keras(lambda **kw: loss_class(alpha=0.4, **kw), y_true, y_pred, reference, rtol=1e-4)


def test_sparse_reductions_and_sample_weight():
    reference = numpy_categorical_focal(ONE_HOT, PROBS, 0.25, 2.0, 0.0)
    assert_reduces_like_keras(lambda **kw: SparseCategoricalFocalLoss(**kw), LABELS, PROBS, reference, rtol=1e-4)


def test_binary_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((OUTPUTS,)), keras.layers.Dense(OUTPUTS, activation="sigmoid")])
    loss = BinaryFocalLoss(alpha=0.3, gamma=1.5, label_smoothing=0.1, name="focal")
    assert_compiled_roundtrip(loss, model, BINARY_LOGITS, BINARY_TRUE, tmp_path)


def test_categorical_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((CLASSES,)), keras.layers.Dense(CLASSES)])
    loss = CategoricalFocalLoss(alpha=[0.1, 0.2, 0.3, 0.4], gamma=1.0, from_logits=True, reduction="sum")
    assert_compiled_roundtrip(loss, model, LOGITS, ONE_HOT, tmp_path)


def test_sparse_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((CLASSES,)), keras.layers.Dense(CLASSES, activation="softmax")])
    loss = SparseCategoricalFocalLoss(gamma=2.5, label_smoothing=0.05)
    assert_compiled_roundtrip(loss, model, LOGITS, LABELS, tmp_path)


@pytest.mark.parametrize(
    "make, argument, allowed",
    [
        (lambda: BinaryFocalLoss(gamma=-1.0), "gamma", ">= 0"),
        (lambda: CategoricalFocalLoss(gamma=-0.5), "gamma", ">= 0"),
        (lambda: SparseCategoricalFocalLoss(gamma=-2), "gamma", ">= 0"),
        (lambda: BinaryFocalLoss(label_smoothing=-0.1), "label_smoothing", "[0, 1)"),
        (lambda: BinaryFocalLoss(label_smoothing=1.0), "label_smoothing", "[0, 1)"),
        (lambda: CategoricalFocalLoss(label_smoothing=1.5), "label_smoothing", "[0, 1)"),
        (lambda: BinaryFocalLoss(alpha=1.5), "alpha", "[0, 1]"),
        (lambda: CategoricalFocalLoss(alpha=-0.1), "alpha", ">= 0"),
        (lambda: CategoricalFocalLoss(alpha=[0.5, -1.0]), "alpha", ">= 0"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(make, argument, allowed):
    with pytest.raises(ValueError) as error:
        make()
    assert argument in str(error.value) and allowed in str(error.value)


def test_alpha_list_must_match_the_number_of_classes():
    with pytest.raises(ValueError, match="alpha has 3 class weights but y_pred has 4 classes"):
        CategoricalFocalLoss(alpha=[0.1, 0.2, 0.3])(ONE_HOT, PROBS)
