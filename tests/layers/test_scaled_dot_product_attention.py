"""ScaledDotProductAttention against a numpy softmax(QK^T/sqrt(d))V, its masks, errors and round trips."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.scaled_dot_product_attention import ScaledDotProductAttention

RNG = np.random.default_rng(0)
Q = RNG.normal(size=(2, 4, 8)).astype("float32")
K = RNG.normal(size=(2, 5, 8)).astype("float32")
V = RNG.normal(size=(2, 5, 6)).astype("float32")
QUERY_MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
VALUE_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


def numpy_attention(q, k, v, mask=None):
    """softmax(QK^T/sqrt(d) masked) V, with weights 0 on masked keys and on fully masked rows."""
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    mask = np.ones(scores.shape, dtype=bool) if mask is None else np.broadcast_to(mask, scores.shape)
    scores = np.where(mask, scores, -np.inf)
    row_max = np.max(np.where(mask, scores, -1e30), axis=-1, keepdims=True)
    exp = np.where(mask, np.exp(scores - row_max), 0.0)
    total = exp.sum(-1, keepdims=True)
    weights = np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)
    return weights @ v, weights


def test_matches_numpy_without_masks():
    context, weights = ScaledDotProductAttention()(Q, V, key=K, return_attention_scores=True)
    want_context, want_weights = numpy_attention(Q, K, V)
    np.testing.assert_allclose(context, want_context, atol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)


def test_padding_and_causal_masks_match_numpy():
    q, k, v = Q[:, :, :], K[:, :4], V[:, :4]
    value_mask = VALUE_MASK[:, :4]
    causal = np.tril(np.ones((4, 4), dtype=bool))[None]
    mask = QUERY_MASK[:, :, None] & value_mask[:, None, :] & causal
    context, weights = ScaledDotProductAttention()(
        q, v, key=k, query_mask=QUERY_MASK, value_mask=value_mask, use_causal_mask=True, return_attention_scores=True
    )
    want_context, want_weights = numpy_attention(q, k, v, mask)
    np.testing.assert_allclose(context, want_context, atol=1e-5)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    weights = np.asarray(weights)
    assert np.all(weights[~mask] == 0.0), "masked keys must get weight exactly 0"
    live_rows = mask.any(-1)
    np.testing.assert_allclose(weights.sum(-1)[live_rows], 1.0, atol=1e-6)


def test_explicit_attention_mask_combines_with_padding_mask():
    explicit = RNG.integers(0, 2, size=(2, 4, 5)).astype("float32")
    explicit[:, :, 0] = 1
    context, weights = ScaledDotProductAttention()(
        Q, V, key=K, attention_mask=explicit, value_mask=VALUE_MASK, return_attention_scores=True
    )
    mask = explicit.astype(bool) & VALUE_MASK[:, None, :]
    want_context, want_weights = numpy_attention(Q, K, V, mask)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    np.testing.assert_allclose(context, want_context, atol=1e-5)


def test_keras_masks_carried_by_the_inputs_are_honoured():
    ids_q = np.array([[3, 1, 2, 0], [4, 5, 6, 7]])
    ids_v = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    embed = keras.layers.Embedding(10, 8, mask_zero=True)
    query, value = embed(ids_q), embed(ids_v)
    context, weights = ScaledDotProductAttention()(query, value, return_attention_scores=True)
    q, v = np.asarray(query), np.asarray(value)
    mask = (ids_q != 0)[:, :, None] & (ids_v != 0)[:, None, :]
    want_context, want_weights = numpy_attention(q, v, v, mask)
    np.testing.assert_allclose(weights, want_weights, atol=1e-6)
    np.testing.assert_allclose(context, want_context, atol=1e-5)


def test_query_padding_mask_is_passed_on_to_the_context():
    query = keras.layers.Masking()(keras.Input((4, 8)))
    context = ScaledDotProductAttention()(query, keras.Input((5, 8)))
    assert getattr(context, "_keras_mask", None) is not None


def test_fully_masked_rows_give_zeros_not_nan():
    nothing = np.zeros((2, 5), dtype=bool)
    context, weights = ScaledDotProductAttention()(Q, V, key=K, value_mask=nothing, return_attention_scores=True)
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    np.testing.assert_array_equal(weights, 0.0)
    np.testing.assert_array_equal(context, 0.0)


def test_dropout_only_in_training_and_reproducible_with_seed():
    layer = ScaledDotProductAttention(dropout=0.5, seed=3)
    inference = layer(Q, V, key=K)
    np.testing.assert_allclose(inference, numpy_attention(Q, K, V)[0], atol=1e-5)
    trained = np.asarray(layer(Q, V, key=K, training=True))
    assert not np.allclose(trained, inference)
    again = ScaledDotProductAttention(dropout=0.5, seed=3)
    np.testing.assert_allclose(again(Q, V, key=K, training=True), trained)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"key": np.zeros((2, 5, 7), "float32")}, ["query", "key", "(2, 4, 8)", "(2, 5, 7)"]),
        ({"key": np.zeros((2, 3, 8), "float32")}, ["key", "value", "(2, 3, 8)", "(2, 5, 6)"]),
        ({"attention_mask": np.ones((2, 5), "float32")}, ["attention_mask", "rank 3", "(2, 5)"]),
        ({"attention_mask": np.ones((2, 4, 3), "float32")}, ["attention_mask", "(2, 4, 3)"]),
        ({"value_mask": np.ones((2, 5, 1), bool)}, ["value_mask", "rank 2"]),
    ],
)
def test_bad_shapes_raise_errors_that_name_them(kwargs, words):
    with pytest.raises(ValueError) as error:
        ScaledDotProductAttention()(Q, V, **kwargs)
    for word in words:
        assert word in str(error.value)


def test_bad_dropout_is_refused():
    with pytest.raises(ValueError, match="dropout"):
        ScaledDotProductAttention(dropout=1.5)


def test_round_trip_with_masks_and_tflite(tmp_path):
    q, k, v = Q.copy(), K.copy(), V.copy()
    q[0, 3] = 0.0  # padded query step
    k[0, 3:] = 0.0  # padded key steps, seen through the key's mask
    mask = (q != 0).any(-1)[:, :, None] & (k != 0).any(-1)[:, None, :] & np.tril(np.ones((4, 5), bool))[None]
    want_context, want_weights = numpy_attention(q, k, v, mask)

    def call(layer, t):
        query = keras.layers.Masking()(t["query"])
        key = keras.layers.Masking()(t["key"])
        context, weights = layer(query, t["value"], key=key, use_causal_mask=True, return_attention_scores=True)
        # One output: export_saved_model cannot yet sign a model with several.
        return keras.layers.Concatenate()([context, weights])

    run_layer_test(
        ScaledDotProductAttention(dropout=0.1, seed=1),
        {"query": q, "key": k, "value": v},
        tmp_path,
        call=call,
        expected_shape=(2, 4, 11),
        reference=np.concatenate([want_context, want_weights], axis=-1),
        tflite=True,
    )
