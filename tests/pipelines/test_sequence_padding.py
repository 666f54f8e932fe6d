import keras
import numpy as np
import pytest

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.sequence_padding import pad_sequences


def test_post_padding_puts_steps_first_and_marks_them():
    padded, mask = pad_sequences([[1, 2, 3], [4], []])
    np.testing.assert_array_equal(padded, np.array([[1, 2, 3], [4, 0, 0], [0, 0, 0]], dtype=np.float32))
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False], [False, False, False]])
    assert padded.dtype == np.float32 and mask.dtype == bool


def test_pre_padding_and_both_truncations():
    sequences = [[1, 2, 3, 4], [5]]
    padded, mask = pad_sequences(sequences, max_length=2, padding="pre", truncating="pre", pad_value=-1, dtype="int32")
    np.testing.assert_array_equal(padded, [[3, 4], [-1, 5]])
    np.testing.assert_array_equal(mask, [[True, True], [False, True]])
    assert padded.dtype == np.int32
    padded, _ = pad_sequences(sequences, max_length=2, truncating="post")
    np.testing.assert_array_equal(padded, [[1, 2], [5, 0]])


def test_multi_feature_steps_keep_their_feature_shape():
    a = np.arange(6).reshape(3, 2)
    padded, mask = pad_sequences([a, a[:1], np.zeros((0, 2))], pad_value=9.0)
    assert padded.shape == (3, 3, 2)
    np.testing.assert_array_equal(padded[1], [[0, 1], [9, 9], [9, 9]])
    np.testing.assert_array_equal(padded[2], np.full((3, 2), 9.0))
    np.testing.assert_array_equal(mask.sum(axis=1), [3, 1, 0])


def test_inconsistent_feature_shapes_name_the_sequence():
    with pytest.raises(DataError, match=r"sequence 2 has steps of shape \(3,\) but sequence 0 has \(2,\)"):
        pad_sequences([np.zeros((4, 2)), np.zeros((1, 2)), np.zeros((2, 3))])
    with pytest.raises(DataError, match=r"sequence 1 cannot be read as an array of float32"):
        pad_sequences([[1.0, 2.0], [[1.0, 2.0], [3.0]]])
    with pytest.raises(DataError, match=r"sequence 0 is a single value, not a sequence"):
        pad_sequences([3.0])


def test_bad_arguments():
    with pytest.raises(DataError, match="padding must be 'pre' or 'post', got 'middle'"):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(DataError, match="max_length must be >= 1 or None, got 0"):
        pad_sequences([[1]], max_length=0)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_masking_before_an_lstm_gives_the_unpadded_result(padding):
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(n, 3)).astype(np.float32) for n in (5, 2, 4)]
    # Not 0: zero steps before the data leave a fresh LSTM's zero state
    # unchanged, so they would not show whether the mask got through.
    padded, _ = pad_sequences(sequences, padding=padding, pad_value=-1.0)

    inputs = keras.Input(shape=(None, 3))
    outputs = keras.layers.LSTM(4, seed=1)(keras.layers.Masking(mask_value=-1.0)(inputs))
    model = keras.Model(inputs, outputs)

    batched = np.asarray(model(padded))
    for i, sequence in enumerate(sequences):
        alone = np.asarray(model(sequence[None]))
        np.testing.assert_allclose(batched[i], alone[0], rtol=1e-5, atol=1e-6)
    # Without the mask the padding is read as data and changes the result.
    plain = keras.Model(inputs, model.layers[-1](inputs))
    assert not np.allclose(np.asarray(plain(padded))[1], np.asarray(plain(sequences[1][None]))[0], atol=1e-4)


def test_returned_mask_keeps_real_steps_that_equal_the_pad_value():
    rng = np.random.default_rng(1)
    sequence = rng.normal(size=(3, 2)).astype(np.float32)
    sequence[1] = 0.0  # a real step, all zeros
    padded, mask = pad_sequences([sequence, sequence[:1]])
    lstm = keras.layers.LSTM(4, seed=2)
    alone = np.asarray(lstm(sequence[None]))
    np.testing.assert_allclose(np.asarray(lstm(padded, mask=mask))[0], alone[0], rtol=1e-5, atol=1e-6)
    # Masking rebuilds the mask from the values and drops the real zero step.
    masked = np.asarray(lstm(padded, mask=np.asarray(keras.layers.Masking().compute_mask(padded))))
    assert not np.allclose(masked[0], alone[0], atol=1e-4)
