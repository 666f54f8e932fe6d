"""TokenAndPositionEmbedding: reference values, scaling, masks downstream, int dtypes, export."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.learned_position_embedding import LearnedPositionEmbedding
from tfdl.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfdl.layers.token_and_position_embedding import TokenAndPositionEmbedding

IDS = np.array([[3, 9, 4, 1, 0, 0], [7, 2, 0, 0, 0, 0]], dtype="int32")


def numpy_sinusoid(length: int, d: int, max_wavelength: float = 10000.0) -> np.ndarray:
    positions = np.arange(length)[:, None]
    rates = 1.0 / max_wavelength ** (2 * (np.arange(d) // 2) / d)
    angles = positions * rates[None, :]
    return np.where(np.arange(d) % 2 == 0, np.sin(angles), np.cos(angles))


def _tokens(layer) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer.token_embedding.embeddings)


@pytest.mark.parametrize("scale", [False, True])
def test_sinusoidal_output_is_lookup_plus_encoding(scale):
    layer = TokenAndPositionEmbedding(12, 8, max_length=10, scale_by_sqrt_dim=scale)
    out = np.asarray(layer(IDS))
    factor = np.sqrt(8.0) if scale else 1.0
    expected = _tokens(layer)[IDS] * factor + numpy_sinusoid(6, 8)[None]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert isinstance(layer.position_embedding, SinusoidalPositionEncoding)


def test_learned_output_is_lookup_plus_position_table():
    layer = TokenAndPositionEmbedding(12, 5, max_length=10, position="learned")
    out = np.asarray(layer(IDS))
    assert isinstance(layer.position_embedding, LearnedPositionEmbedding)
    positions = keras.ops.convert_to_numpy(layer.position_embedding.embeddings)[:6]
    np.testing.assert_allclose(out, _tokens(layer)[IDS] + positions[None], atol=1e-6)
    assert len(layer.trainable_weights) == 2


def test_start_index_shifts_positions():
    layer = TokenAndPositionEmbedding(12, 8, max_length=10)
    full = np.asarray(layer(IDS))
    step = np.asarray(layer(IDS[:, 3:5], start_index=3))
    np.testing.assert_allclose(step, full[:, 3:5], atol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_dtypes_give_the_same_output(dtype):
    layer = TokenAndPositionEmbedding(12, 8, max_length=10)
    np.testing.assert_array_equal(np.asarray(layer(IDS.astype(dtype))), np.asarray(layer(IDS)))


def test_mask_is_ids_not_zero_and_is_attached_to_the_output():
    layer = TokenAndPositionEmbedding(12, 8, max_length=10)
    out = layer(IDS)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), IDS != 0)
    assert TokenAndPositionEmbedding(12, 8, max_length=10, mask_zero=False).compute_mask(IDS) is None


def _pooled_model(mask_zero: bool, downstream: keras.layers.Layer) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32")
    embedded = TokenAndPositionEmbedding(12, 8, max_length=16, mask_zero=mask_zero)(ids)
    return keras.Model(ids, downstream(embedded))


@pytest.mark.parametrize(
    "downstream", [lambda: keras.layers.GlobalAveragePooling1D(), lambda: keras.layers.LSTM(4, seed=0)]
)
def test_downstream_layers_ignore_padding_whatever_its_length(downstream):
    model = _pooled_model(True, downstream())
    short = np.asarray(model(IDS[:, :4]))
    long = np.asarray(model(np.pad(IDS, ((0, 0), (0, 6)))))
    np.testing.assert_allclose(short[1], long[1], atol=1e-5)
    np.testing.assert_allclose(short[0], long[0], atol=1e-5)
    # Without the mask the padding would count: this is what the mask prevents.
    unmasked = _pooled_model(False, downstream())
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(np.asarray(unmasked(IDS[:, :4])), np.asarray(unmasked(np.pad(IDS, ((0, 0), (0, 6))))), atol=1e-5)


def test_average_pooling_matches_the_mean_over_real_tokens():
    model = _pooled_model(True, keras.layers.GlobalAveragePooling1D())
    layer = model.layers[1]
    embedded = np.asarray(layer(IDS))
    mask = (IDS != 0)[..., None]
    expected = (embedded * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(np.asarray(model(IDS)), expected, atol=1e-6)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"position must be one of.*'rotary'"):
        TokenAndPositionEmbedding(12, 8, max_length=10, position="rotary")
    with pytest.raises(ValueError, match="embedding_dim must be even.*embedding_dim=7"):
        TokenAndPositionEmbedding(12, 7, max_length=10)
    with pytest.raises(ValueError, match="max_length=4"):
        TokenAndPositionEmbedding(12, 8, max_length=4)(IDS)


@pytest.mark.parametrize("position", ["sinusoidal", "learned"])
def test_round_trip_and_tflite(tmp_path, position):
    layer = TokenAndPositionEmbedding(12, 8, max_length=10, position=position, scale_by_sqrt_dim=True)
    out = run_layer_test(layer, IDS, tmp_path, expected_shape=(2, 6, 8), tflite=True)
    np.testing.assert_allclose(out, np.asarray(layer(IDS)), atol=1e-6)
