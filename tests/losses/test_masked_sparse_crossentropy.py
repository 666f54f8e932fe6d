"""MaskedSparseCategoricalCrossentropy equals Keras's cross-entropy on real tokens only."""

import keras
import numpy as np
import pytest
from loss_contract import REDUCTIONS, assert_compiled_roundtrip, assert_reduces_like_keras

from tfdl.losses import MaskedSparseCategoricalCrossentropy

rng = np.random.default_rng(7)
BATCH, STEPS, VOCAB, PAD = 4, 6, 5, 0
LENGTHS = np.array([6, 2, 4, 1])  # unequal, so token and sequence averages differ
LABELS = rng.integers(1, VOCAB, size=(BATCH, STEPS))
LABELS[np.arange(STEPS)[None, :] >= LENGTHS[:, None]] = PAD
REAL = LABELS != PAD
LOGITS = rng.normal(scale=2.0, size=(BATCH, STEPS, VOCAB)).astype("float32")
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype("float32")


def keras_token_losses(labels, y_pred, from_logits=False):
    """Keras's own sparse cross-entropy on the real tokens, flattened."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction="none")
    return np.asarray(loss(labels[REAL], y_pred[REAL]))


@pytest.mark.parametrize("from_logits", [False, True])
def test_token_average_is_the_mean_over_all_real_tokens_in_the_batch(from_logits):
    y_pred = LOGITS if from_logits else PROBS
    reference = keras_token_losses(LABELS, y_pred, from_logits)
    loss = MaskedSparseCategoricalCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(float(loss(LABELS, y_pred)), reference.mean(), rtol=1e-5)
    # ... which is not the mean of per-sequence means for unequal lengths.
    sequence_means = [chunk.mean() for chunk in np.split(reference, np.cumsum(LENGTHS)[:-1])]
    assert abs(reference.mean() - np.mean(sequence_means)) > 1e-2
    summed = MaskedSparseCategoricalCrossentropy(from_logits=from_logits, reduction="sum")
    np.testing.assert_allclose(float(summed(LABELS, y_pred)), reference.sum(), rtol=1e-5)


def test_none_reduction_gives_per_token_losses_and_zero_at_pads():
    per_token = np.asarray(MaskedSparseCategoricalCrossentropy(reduction="none")(LABELS, PROBS))
    assert per_token.shape == (BATCH, STEPS)
    np.testing.assert_allclose(per_token[REAL], keras_token_losses(LABELS, PROBS), rtol=1e-5)
    assert np.all(per_token[~REAL] == 0)


def test_padded_positions_do_not_affect_the_loss():
    scrambled = PROBS.copy()
    scrambled[~REAL] = rng.dirichlet(np.ones(VOCAB), size=(~REAL).sum())
    loss = MaskedSparseCategoricalCrossentropy()
    assert float(loss(LABELS, scrambled)) == pytest.approx(float(loss(LABELS, PROBS)), rel=1e-6)


def test_sequence_average_is_the_mean_of_per_sequence_means():
    per_token = MaskedSparseCategoricalCrossentropy(reduction="none")(LABELS, PROBS)
    per_sequence = np.asarray(per_token).sum(1) / LENGTHS
    loss = MaskedSparseCategoricalCrossentropy(average="sequence", reduction="none")
    np.testing.assert_allclose(loss(LABELS, PROBS), per_sequence, rtol=1e-5)
    token_mean = float(MaskedSparseCategoricalCrossentropy()(LABELS, PROBS))
    sequence_mean = float(MaskedSparseCategoricalCrossentropy(average="sequence")(LABELS, PROBS))
    assert sequence_mean == pytest.approx(per_sequence.mean(), rel=1e-5)
    assert abs(sequence_mean - token_mean) > 1e-2  # the two choices really differ here
    all_pad = np.full((1, STEPS), PAD)
    assert float(loss(all_pad, PROBS[:1])[0]) == 0.0


@pytest.mark.parametrize("smoothing", [0.1, 0.4])
@pytest.mark.parametrize("from_logits", [False, True])
def test_label_smoothing_equals_keras_categorical_crossentropy_on_the_one_hot(smoothing, from_logits):
    y_pred = LOGITS if from_logits else PROBS
    one_hot = np.eye(VOCAB, dtype="float32")[LABELS[REAL]]
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing, reduction="none")
    reference = np.asarray(keras_loss(one_hot, y_pred[REAL]))
    ours = MaskedSparseCategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing, reduction="none")
    np.testing.assert_allclose(np.asarray(ours(LABELS, y_pred))[REAL], reference, rtol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_token_average_reduces_and_weights_exactly_like_keras_ignore_class(reduction):
    ours = MaskedSparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD, reduction=reduction)
    token_weights = rng.random((BATCH, STEPS)).astype("float32")
    sequence_weights = rng.random((BATCH, 1)).astype("float32")
    for weights in (None, token_weights, sequence_weights):
        expected = np.asarray(keras_loss(LABELS, LOGITS, sample_weight=weights))
        np.testing.assert_allclose(np.asarray(ours(LABELS, LOGITS, sample_weight=weights)), expected, rtol=1e-5, atol=1e-7)


def test_sequence_average_reduces_and_weights_like_keras():
    per_token = np.asarray(MaskedSparseCategoricalCrossentropy(reduction="none")(LABELS, PROBS))
    reference = per_token.sum(1) / LENGTHS
    assert_reduces_like_keras(lambda **kw: MaskedSparseCategoricalCrossentropy(average="sequence", **kw), LABELS, PROBS, reference)


def test_another_pad_token_and_labels_with_a_trailing_axis():
    labels = np.where(REAL, LABELS, -1)
    loss = MaskedSparseCategoricalCrossentropy(pad_token=-1)
    expected = keras_token_losses(LABELS, PROBS).mean()
    assert float(loss(labels, PROBS)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(labels[..., None], PROBS)) == pytest.approx(expected, rel=1e-5)


def test_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((STEPS,), dtype="int32"), keras.layers.Embedding(VOCAB, 8), keras.layers.Dense(VOCAB)])
    loss = MaskedSparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1, pad_token=PAD, name="lm_loss")
    reloaded = assert_compiled_roundtrip(loss, model, LABELS, LABELS, tmp_path)
    assert reloaded.loss.pad_token == PAD and reloaded.loss.average == "token"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ({"average": "batch"}, r"average must be one of \('token', 'sequence'\)"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskedSparseCategoricalCrossentropy(**kwargs)
