"""DiceLoss equals the soft Dice formula in numpy, for binary masks, one-hot and sparse labels."""

import keras
import numpy as np
import pytest
from loss_contract import assert_compiled_roundtrip, assert_reduces_like_keras

from tfdl.losses import DiceLoss

rng = np.random.default_rng(1)
BATCH, SIZE, CLASSES = 4, 6, 3
MASK = (rng.random((BATCH, SIZE, SIZE, 1)) > 0.6).astype("float32")
MASK_LOGITS = rng.normal(size=MASK.shape).astype("float32")
MASK_PROBS = (1 / (1 + np.exp(-MASK_LOGITS))).astype("float32")
CLASS_IDS = rng.integers(0, CLASSES, size=(BATCH, SIZE, SIZE))
ONE_HOT = np.eye(CLASSES, dtype="float32")[CLASS_IDS]
CLASS_LOGITS = rng.normal(size=ONE_HOT.shape).astype("float32")
CLASS_PROBS = (np.exp(CLASS_LOGITS) / np.exp(CLASS_LOGITS).sum(-1, keepdims=True)).astype("float32")


def numpy_dice_loss(y, p, smooth=1.0, axes=(1, 2)):
    """1 - Dice per (example, class) over `axes`, averaged over the classes."""
    intersection = (y * p).sum(axis=axes)
    dice = (2 * intersection + smooth) / (y.sum(axis=axes) + p.sum(axis=axes) + smooth)
    loss = 1 - dice
    return loss.reshape(loss.shape[0], -1).mean(axis=1)


@pytest.mark.parametrize("smooth", [1.0, 1e-3])
def test_binary_mask_matches_numpy(smooth):
    actual = np.asarray(DiceLoss(smooth=smooth, reduction="none")(MASK, MASK_PROBS))
    assert actual.shape == (BATCH,)
    np.testing.assert_allclose(actual, numpy_dice_loss(MASK, MASK_PROBS, smooth), rtol=1e-5)


def test_binary_from_logits_applies_sigmoid():
    from_logits = DiceLoss(from_logits=True, reduction="none")(MASK, MASK_LOGITS)
    np.testing.assert_allclose(from_logits, numpy_dice_loss(MASK, MASK_PROBS), rtol=1e-5)


def test_multiclass_is_mean_over_classes_of_per_class_dice():
    actual = np.asarray(DiceLoss(reduction="none")(ONE_HOT, CLASS_PROBS))
    np.testing.assert_allclose(actual, numpy_dice_loss(ONE_HOT, CLASS_PROBS), rtol=1e-5)
    per_class = [numpy_dice_loss(ONE_HOT[..., c : c + 1], CLASS_PROBS[..., c : c + 1]) for c in range(CLASSES)]
    np.testing.assert_allclose(actual, np.mean(per_class, axis=0), rtol=1e-5)


def test_sparse_labels_equal_one_hot_labels():
    one_hot = DiceLoss(from_logits=True, reduction="none")(ONE_HOT, CLASS_LOGITS)
    sparse = DiceLoss(from_logits=True, sparse_labels=True, reduction="none")
    np.testing.assert_allclose(sparse(CLASS_IDS, CLASS_LOGITS), one_hot, rtol=1e-6)
    np.testing.assert_allclose(sparse(CLASS_IDS[..., None], CLASS_LOGITS), one_hot, rtol=1e-6)
    np.testing.assert_allclose(one_hot, numpy_dice_loss(ONE_HOT, CLASS_PROBS), rtol=1e-5)
    # One channel: the sparse labels are the 0/1 mask itself.
    binary = DiceLoss(sparse_labels=True, reduction="none")(MASK[..., 0].astype("int32"), MASK_PROBS)
    np.testing.assert_allclose(binary, numpy_dice_loss(MASK, MASK_PROBS), rtol=1e-5)


def test_explicit_axis_pools_the_classes():
    pooled = DiceLoss(axis=(1, 2, 3), reduction="none")(ONE_HOT, CLASS_PROBS)
    np.testing.assert_allclose(pooled, numpy_dice_loss(ONE_HOT, CLASS_PROBS, axes=(1, 2, 3)), rtol=1e-5)
    negative = DiceLoss(axis=[-3, -2, -1], reduction="none")(ONE_HOT, CLASS_PROBS)
    np.testing.assert_allclose(negative, pooled, rtol=1e-6)


def test_perfect_prediction_scores_zero_and_a_disjoint_one_scores_near_one():
    assert np.max(np.asarray(DiceLoss(reduction="none")(MASK, MASK))) < 1e-6
    assert np.max(np.asarray(DiceLoss(reduction="none")(ONE_HOT, ONE_HOT))) < 1e-6
    empty = np.zeros((2, SIZE, SIZE, 1), "float32")
    assert np.max(np.asarray(DiceLoss(reduction="none")(empty, empty))) < 1e-6
    full = np.ones_like(empty)
    disjoint = np.asarray(DiceLoss(smooth=1e-6, reduction="none")(full, empty))
    np.testing.assert_allclose(disjoint, 1.0, atol=1e-6)


def test_reductions_and_sample_weight():
    reference = numpy_dice_loss(ONE_HOT, CLASS_PROBS)
    assert_reduces_like_keras(lambda **kw: DiceLoss(**kw), ONE_HOT, CLASS_PROBS, reference)


def test_gradient_pushes_predictions_towards_the_mask():
    import tensorflow as tf

    y_pred = tf.Variable(np.full(MASK.shape, 0.5, "float32"))
    with tf.GradientTape() as tape:
        loss = DiceLoss()(MASK, y_pred)
    grad = tape.gradient(loss, y_pred).numpy()
    assert np.all(grad[MASK == 1] < 0) and np.all(grad[MASK == 0] > 0)


def test_round_trip(tmp_path):
    inputs = rng.normal(size=(BATCH, SIZE, SIZE, 2)).astype("float32")
    model = keras.Sequential([keras.Input((SIZE, SIZE, 2)), keras.layers.Conv2D(CLASSES, 1)])
    loss = DiceLoss(smooth=0.5, from_logits=True, sparse_labels=True, name="dice")
    assert_compiled_roundtrip(loss, model, inputs, CLASS_IDS, tmp_path)


@pytest.mark.parametrize("smooth", [0.0, -1.0])
def test_smooth_must_be_positive(smooth):
    with pytest.raises(ValueError, match=r"smooth must be > 0"):
        DiceLoss(smooth=smooth)


def test_axis_may_not_include_the_batch_axis():
    with pytest.raises(ValueError, match="axis"):
        DiceLoss(axis=(0, 1))
    with pytest.raises(ValueError, match="batch axis"):
        DiceLoss(axis=-4)(ONE_HOT, CLASS_PROBS)


def test_missing_channel_axis_is_explained():
    with pytest.raises(ValueError, match=r"\(batch, \*spatial, channels\)"):
        DiceLoss()(MASK[:, 0, 0], MASK_PROBS[:, 0, 0])
