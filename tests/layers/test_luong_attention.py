"""LuongAttention against numpy for both scores, its masks, the "dot" dimension error, round trips."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.luong_attention import LuongAttention

RNG = np.random.default_rng(2)
ENCODED = RNG.normal(size=(2, 5, 4)).astype("float32")
VALUES_MASK = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


def numpy_luong(layer, query, values, mask=None):
    q = query[:, None] if query.ndim == 2 else query
    if layer.score == "general":
        q = q @ np.asarray(layer.kernel)
    scores = q @ values.transpose(0, 2, 1)
    if layer.scale:
        scores = scores * float(np.asarray(layer.score_scale))
    if mask is not None:
        scores = np.where(mask[:, None, :], scores, -np.inf)
    exp = np.exp(scores - scores.max(-1, keepdims=True))
    weights = exp / exp.sum(-1, keepdims=True)
    context = weights @ values
    return (context[:, 0], weights[:, 0]) if query.ndim == 2 else (context, weights)


CASES = [
    ("dot", (2, 4)),
    ("dot", (2, 3, 4)),
    ("general", (2, 6)),
    ("general", (2, 3, 6)),
]


@pytest.mark.parametrize("score, query_shape", CASES)
@pytest.mark.parametrize("scale", [False, True])
def test_matches_numpy_reference(score, query_shape, scale):
    query = RNG.normal(size=query_shape).astype("float32")
    layer = LuongAttention(score=score, scale=scale)
    layer(query, ENCODED)
    if scale:
        layer.score_scale.assign(0.5)  # a value other than its initial 1 proves it is used
    context, weights = layer(query, ENCODED, mask=VALUES_MASK)
    want_context, want_weights = numpy_luong(layer, query, ENCODED, VALUES_MASK)
    np.testing.assert_allclose(context, want_context, atol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    weights = np.asarray(weights).reshape(2, -1, 5)
    assert np.all(weights[0, :, 2:] == 0.0)


def test_mask_carried_by_the_encoder_outputs_is_honoured():
    ids = np.array([[1, 2, 0, 0, 0], [4, 5, 6, 7, 8]])
    encoded = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    query = RNG.normal(size=(2, 4)).astype("float32")
    layer = LuongAttention()
    context, weights = layer(query, encoded)
    want_context, want_weights = numpy_luong(layer, query, np.asarray(encoded), ids != 0)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    np.testing.assert_allclose(context, want_context, atol=1e-5)


def test_padded_query_steps_get_zero_weights_and_pass_their_mask_on():
    query = keras.layers.Embedding(10, 4, mask_zero=True)(np.array([[1, 0], [2, 3]]))
    context, weights = LuongAttention()(query, ENCODED)
    np.testing.assert_array_equal(np.asarray(weights)[0, 1], 0.0)
    np.testing.assert_array_equal(np.asarray(context)[0, 1], 0.0)
    symbolic = keras.layers.Masking()(keras.Input((2, 4)))
    context, _ = LuongAttention()(symbolic, keras.Input((5, 4)))
    assert getattr(context, "_keras_mask", None) is not None


def test_dot_with_mismatched_dims_tells_the_user_to_use_general():
    with pytest.raises(ValueError, match=r"score='dot'.*\(2, 6\).*\(2, 5, 4\).*use score='general'"):
        LuongAttention(score="dot")(np.zeros((2, 6), "float32"), ENCODED)


def test_bad_arguments_raise_errors_that_name_them():
    with pytest.raises(ValueError, match="score must be one of .* got 'concat'"):
        LuongAttention(score="concat")
    with pytest.raises(ValueError, match=r"mask must be \(batch, T_v\) = \(batch, 5\), got shape \(2, 3\)"):
        LuongAttention()(np.zeros((2, 4), "float32"), ENCODED, mask=np.ones((2, 3), bool))


def test_round_trip_with_encoder_mask_and_tflite(tmp_path):
    encoded = ENCODED.copy()
    encoded[0, 2:] = 0.0  # padding the Masking layer will mark
    states = RNG.normal(size=(2, 3, 6)).astype("float32")
    layer = LuongAttention(score="general", scale=True)

    def call(layer, t):
        context, weights = layer(t["states"], keras.layers.Masking()(t["encoded"]))
        return keras.layers.Concatenate()([context, weights])  # one output for export

    out = run_layer_test(
        layer, {"states": states, "encoded": encoded}, tmp_path, call=call, expected_shape=(2, 3, 9), tflite=True
    )
    want_context, want_weights = numpy_luong(layer, states, encoded, VALUES_MASK)
    np.testing.assert_allclose(out, np.concatenate([want_context, want_weights], -1), atol=1e-5)
