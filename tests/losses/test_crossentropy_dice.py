import keras
import numpy as np
import pytest
from loss_contract import assert_compiled_roundtrip, assert_reduces_like_keras

from tfdl.losses import CrossentropyDiceLoss

rng = np.random.default_rng(3)
BATCH, SIZE, CLASSES = 4, 5, 3
LABELS = rng.integers(0, CLASSES, size=(BATCH, SIZE, SIZE)).astype("int32")
LOGITS = rng.normal(size=(BATCH, SIZE, SIZE, CLASSES)).astype("float32")
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)


def numpy_reference(labels, probs, dice_weight=1.0, smooth=1.0):
    """Per example: mean pixel -log p(true class) + dice_weight * mean over classes of (1 - dice)."""
    picked = np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0]
    crossentropy = -np.log(picked).mean(axis=(1, 2))
    one_hot = np.eye(probs.shape[-1])[labels]
    intersection = (one_hot * probs).sum(axis=(1, 2))
    total = one_hot.sum(axis=(1, 2)) + probs.sum(axis=(1, 2))
    dice = (2 * intersection + smooth) / (total + smooth)
    return crossentropy + dice_weight * (1 - dice).mean(axis=1)


@pytest.mark.parametrize("dice_weight", [0.0, 1.0, 2.5])
def test_matches_a_numpy_reference_under_every_reduction(dice_weight):
    reference = numpy_reference(LABELS, PROBS, dice_weight)
    assert_reduces_like_keras(lambda **kw: CrossentropyDiceLoss(dice_weight=dice_weight, **kw), LABELS, PROBS,
                              reference, rtol=1e-4)


def test_logits_and_a_trailing_label_axis_give_the_same_loss():
    from_probs = CrossentropyDiceLoss()(LABELS, PROBS)
    from_logits = CrossentropyDiceLoss(from_logits=True)(LABELS[..., None], LOGITS)
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-5)


def test_compiled_model_round_trips(tmp_path):
    inputs = rng.normal(size=(BATCH, SIZE, SIZE, 2)).astype("float32")
    model = keras.Sequential([keras.Input((SIZE, SIZE, 2)), keras.layers.Conv2D(CLASSES, 1, activation="softmax")])
    assert_compiled_roundtrip(CrossentropyDiceLoss(dice_weight=0.5), model, inputs, LABELS, tmp_path)


def test_negative_dice_weight_is_refused():
    with pytest.raises(ValueError, match="dice_weight must be >= 0"):
        CrossentropyDiceLoss(dice_weight=-1)
