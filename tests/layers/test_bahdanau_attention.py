"""BahdanauAttention against numpy with the layer's own weights, its masks, 2-D and 3-D queries, round trips."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.bahdanau_attention import BahdanauAttention

RNG = np.random.default_rng(1)
STATE = RNG.normal(size=(2, 6)).astype("float32")
STATES = RNG.normal(size=(2, 3, 6)).astype("float32")
ENCODED = RNG.normal(size=(2, 5, 4)).astype("float32")
VALUES_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


def numpy_bahdanau(layer, query, values, mask=None):
    w1, w2, v = (np.asarray(w) for w in (layer.query_kernel, layer.values_kernel, layer.score_vector))
    q = query[:, None] if query.ndim == 2 else query
    scores = np.tanh((q @ w1)[:, :, None, :] + (values @ w2)[:, None, :, :]) @ v  # (b, T_q, T_v)
    if mask is not None:
        scores = np.where(mask[:, None, :], scores, -np.inf)
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    weights = exp / exp.sum(-1, keepdims=True)
    context = weights @ values
    return (context[:, 0], weights[:, 0]) if query.ndim == 2 else (context, weights)


@pytest.mark.parametrize("query", [STATE, STATES], ids=["2d", "3d"])
def test_matches_numpy_reference_with_its_own_weights(query):
    layer = BahdanauAttention(units=7)
    context, weights = layer(query, ENCODED)
    want_context, want_weights = numpy_bahdanau(layer, query, ENCODED)
    assert context.shape == (*query.shape[:-1], 4) and weights.shape == (*query.shape[:-1], 5)
    np.testing.assert_allclose(context, want_context, atol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)


@pytest.mark.parametrize("query", [STATE, STATES], ids=["2d", "3d"])
def test_explicit_mask_gives_masked_steps_zero_weight(query):
    layer = BahdanauAttention(units=7)
    context, weights = layer(query, ENCODED, mask=VALUES_MASK)
    want_context, want_weights = numpy_bahdanau(layer, query, ENCODED, VALUES_MASK)
    np.testing.assert_allclose(context, want_context, atol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    weights = np.asarray(weights).reshape(2, -1, 5)
    assert np.all(weights[0, :, 3:] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_mask_carried_by_the_encoder_outputs_is_honoured():
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    encoded = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    layer = BahdanauAttention(units=7)
    context, weights = layer(STATE, encoded)
    want_context, want_weights = numpy_bahdanau(layer, STATE, np.asarray(encoded), ids != 0)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    np.testing.assert_allclose(context, want_context, atol=1e-5)


def test_padded_query_steps_get_zero_weights_and_pass_their_mask_on():
    query_ids = np.array([[1, 2, 0], [3, 4, 5]])
    query = keras.layers.Embedding(10, 6, mask_zero=True)(query_ids)
    context, weights = BahdanauAttention(units=7)(query, ENCODED)
    np.testing.assert_array_equal(np.asarray(weights)[0, 2], 0.0)
    np.testing.assert_array_equal(np.asarray(context)[0, 2], 0.0)
    np.testing.assert_allclose(np.asarray(weights)[1].sum(-1), 1.0, atol=1e-6)

    symbolic = keras.layers.Masking()(keras.Input((3, 6)))
    context, weights = BahdanauAttention(units=7)(symbolic, keras.Input((5, 4)))
    assert getattr(context, "_keras_mask", None) is not None
    assert getattr(weights, "_keras_mask", None) is not None


def test_fully_masked_values_give_zeros_not_nan():
    context, weights = BahdanauAttention(units=3)(STATE, ENCODED, mask=np.zeros((2, 5), bool))
    np.testing.assert_array_equal(weights, 0.0)
    np.testing.assert_array_equal(context, 0.0)


def test_bad_shapes_raise_errors_that_name_them():
    with pytest.raises(ValueError, match=r"values must be \(batch, T_v, d_v\), got shape \(2, 4\)"):
        BahdanauAttention(units=3)(STATE, ENCODED[:, 0])
    with pytest.raises(ValueError, match=r"mask must be \(batch, T_v\) = \(batch, 5\), got shape \(2, 4\)"):
        BahdanauAttention(units=3)(STATE, ENCODED, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="units must be a positive int, got 0"):
        BahdanauAttention(units=0)


def test_round_trip_with_encoder_mask_and_tflite(tmp_path):
    encoded = ENCODED.copy()
    encoded[0, 3:] = 0.0  # padding the Masking layer will mark
    layer = BahdanauAttention(units=7)

    def call(layer, t):
        context, weights = layer(t["state"], keras.layers.Masking()(t["encoded"]))
        return keras.layers.Concatenate()([context, weights])  # one output for export

    out = run_layer_test(
        layer, {"state": STATE, "encoded": encoded}, tmp_path, call=call, expected_shape=(2, 9), tflite=True
    )
    want_context, want_weights = numpy_bahdanau(layer, STATE, encoded, VALUES_MASK)
    np.testing.assert_allclose(out, np.concatenate([want_context, want_weights], -1), atol=1e-5)
