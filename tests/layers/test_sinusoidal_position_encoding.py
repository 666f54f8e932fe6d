"""SinusoidalPositionEncoding: exact values, dynamic lengths, start_index, errors, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from tfdl.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding


def numpy_encoding(positions: np.ndarray, d: int, max_wavelength: float = 10000.0) -> np.ndarray:
    """The paper's formula, written the other way round: pairs of (sin, cos) columns."""
    encoding = np.zeros((len(positions), d))
    for i in range(d // 2):
        angle = positions / max_wavelength ** (2 * i / d)
        encoding[:, 2 * i] = np.sin(angle)
        encoding[:, 2 * i + 1] = np.cos(angle)
    return encoding


def test_values_match_the_formula():
    x = np.zeros((2, 50, 16), "float32")
    out = np.asarray(SinusoidalPositionEncoding(max_length=64)(x))
    expected = numpy_encoding(np.arange(50), 16)
    np.testing.assert_allclose(out[0], expected, atol=2e-5)
    np.testing.assert_array_equal(out[0], out[1])
    # Known values: position 0 is (0, 1, 0, 1, ...); position 1 channel 0 is sin(1).
    np.testing.assert_allclose(out[0, 0], np.tile([0.0, 1.0], 8), atol=1e-7)
    np.testing.assert_allclose(out[0, 1, :2], [np.sin(1.0), np.cos(1.0)], atol=1e-6)


def test_max_wavelength_is_used():
    x = np.zeros((1, 10, 6), "float32")
    out = np.asarray(SinusoidalPositionEncoding(max_length=10, max_wavelength=100)(x))
    np.testing.assert_allclose(out[0], numpy_encoding(np.arange(10), 6, 100.0), atol=1e-5)


def test_dynamic_sequence_length():
    inputs = keras.Input(shape=(None, 8))
    model = keras.Model(inputs, SinusoidalPositionEncoding(max_length=32)(inputs))
    for length in (5, 17):
        out = np.asarray(model(np.zeros((3, length, 8), "float32")))
        assert out.shape == (3, length, 8)
        np.testing.assert_allclose(out[2], numpy_encoding(np.arange(length), 8), atol=1e-5)


def test_start_index_equals_slicing_the_full_encoding():
    layer = SinusoidalPositionEncoding(max_length=40)
    full = np.asarray(layer(np.zeros((1, 40, 8), "float32")))
    for start in (0, 7, tf.constant(30)):
        part = np.asarray(layer(np.zeros((1, 10, 8), "float32"), start_index=start))
        begin = int(start)
        np.testing.assert_allclose(part, full[:, begin : begin + 10], atol=1e-6)


def test_start_index_in_a_compiled_decoding_step():
    layer = SinusoidalPositionEncoding(max_length=20)
    full = np.asarray(layer(np.zeros((1, 20, 4), "float32")))
    step = tf.function(lambda x, i: layer(x, start_index=i))
    for i in (0, 3, 19):
        np.testing.assert_allclose(np.asarray(step(np.zeros((1, 1, 4), "float32"), tf.constant(i))), full[:, i : i + 1], atol=1e-6)


def test_odd_dimension_is_rejected():
    with pytest.raises(ValueError, match=r"d .* must be even.*got d=7"):
        SinusoidalPositionEncoding(max_length=8)(np.zeros((1, 4, 7), "float32"))


def test_too_long_sequences_are_rejected():
    layer = SinusoidalPositionEncoding(max_length=8)
    with pytest.raises(ValueError, match="max_length=8"):
        layer(keras.Input(shape=(9, 4)))
    with pytest.raises(ValueError, match=r"start_index 5.*max_length=8"):
        layer(np.zeros((1, 4, 4), "float32"), start_index=5)


def test_mask_passes_through():
    mask = np.array([[True, True, False]])
    out = SinusoidalPositionEncoding(max_length=4).compute_mask(np.zeros((1, 3, 2), "float32"), mask)
    np.testing.assert_array_equal(out, mask)


def test_round_trip_and_tflite(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 12, 8)).astype("float32")
    run_layer_test(
        SinusoidalPositionEncoding(max_length=16, max_wavelength=500),
        x,
        tmp_path,
        expected_shape=(2, 12, 8),
        reference=np.broadcast_to(numpy_encoding(np.arange(12), 8, 500.0), (2, 12, 8)),
        tflite=True,
    )
