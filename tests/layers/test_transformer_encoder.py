"""TransformerEncoderBlock against plain Keras layers with its weights, padding invariance, errors, round trips."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.transformer_encoder import TransformerEncoderBlock

RNG = np.random.default_rng(3)
X = RNG.normal(size=(2, 5, 8)).astype("float32")


def reference_block(block, x, attention_mask=None):
    """The same computation written out with fresh Keras layers holding the block's weights."""
    mha = keras.layers.MultiHeadAttention(num_heads=block.num_heads, key_dim=8 // block.num_heads)
    mha(x, x)
    mha.set_weights(block._self_attention.get_weights())
    norm1, norm2 = keras.layers.LayerNormalization(epsilon=1e-5), keras.layers.LayerNormalization(epsilon=1e-5)
    hidden, output = keras.layers.Dense(block.intermediate_dim, activation="relu"), keras.layers.Dense(8)
    for fresh, trained, shape in [
        (norm1, block._attention_norm, x.shape),
        (norm2, block._feedforward_norm, x.shape),
        (hidden, block._feedforward_hidden, x.shape),
        (output, block._feedforward_output, (*x.shape[:-1], block.intermediate_dim)),
    ]:
        fresh.build(shape)
        fresh.set_weights(trained.get_weights())

    def attention(h):
        return mha(h, h, attention_mask=attention_mask)

    def feedforward(h):
        return output(hidden(h))

    if block.norm_first:
        x = x + attention(norm1(x))
        return np.asarray(x + feedforward(norm2(x)))
    x = norm1(x + attention(x))
    return np.asarray(norm2(x + feedforward(x)))


def randomize(block):
    """Non-trivial LayerNorm and bias weights, so a reference that skips them fails."""
    block.set_weights([RNG.normal(size=w.shape).astype("float32") * 0.5 for w in block.get_weights()])


@pytest.mark.parametrize("norm_first", [False, True])
def test_matches_plain_keras_layers_sharing_its_weights(norm_first):
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, norm_first=norm_first)
    block.build(X.shape)
    randomize(block)
    attention_mask = RNG.integers(0, 2, size=(2, 5, 5)).astype(bool)
    attention_mask[:, :, 0] = True
    np.testing.assert_allclose(block(X), reference_block(block, X), atol=1e-5)
    np.testing.assert_allclose(
        block(X, attention_mask=attention_mask), reference_block(block, X, attention_mask), atol=1e-5
    )


def test_pre_and_post_norm_differ_with_the_same_weights():
    post = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    pre = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, norm_first=True)
    post.build(X.shape)
    pre.build(X.shape)
    pre.set_weights(post.get_weights())
    assert np.abs(np.asarray(post(X)) - np.asarray(pre(X))).max() > 1e-2


def masked(x):
    return keras.layers.Masking()(x)


def test_outputs_at_real_positions_do_not_change_when_padding_is_appended():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    short = X.copy()
    short[0, 3:] = 0.0  # sample 0 has 3 real steps, sample 1 has 5
    longer = np.concatenate([short, np.zeros((2, 4, 8), "float32")], axis=1)
    out_short, out_long = np.asarray(block(masked(short))), np.asarray(block(masked(longer)))
    np.testing.assert_allclose(out_long[0, :3], out_short[0, :3], atol=1e-5)
    np.testing.assert_allclose(out_long[1, :5], out_short[1, :5], atol=1e-5)
    # Without the mask the padding is attended to: the check above can fail.
    assert np.abs(np.asarray(block(longer))[1, :5] - out_short[1, :5]).max() > 1e-3


def test_mask_is_passed_on_and_left_on_the_input():
    x = masked(X)
    y = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)(x)
    assert getattr(y, "_keras_mask", None) is not None
    assert getattr(x, "_keras_mask", None) is not None, "the caller's tensor lost its mask"


def test_explicit_attention_mask_combines_with_the_padding_mask():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    short = X.copy()
    short[0, 3:] = 0.0
    attention_mask = np.tril(np.ones((2, 5, 5), bool))
    both = np.asarray(block(masked(short), attention_mask=attention_mask))
    padding = attention_mask & (short != 0).any(-1)[:, None, :]
    np.testing.assert_allclose(both, block(short, attention_mask=padding), atol=1e-6)
    assert np.abs(both - np.asarray(block(masked(short)))).max() > 1e-3


def test_dropout_only_in_training():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dropout=0.5)
    np.testing.assert_allclose(block(X), block(X, training=False))
    assert np.abs(np.asarray(block(X, training=True)) - np.asarray(block(X))).max() > 1e-3


def test_bad_arguments_raise_errors_that_name_them():
    with pytest.raises(ValueError, match="model dimension 8 .* not divisible by num_heads=3"):
        TransformerEncoderBlock(num_heads=3, intermediate_dim=16)(X)
    assert TransformerEncoderBlock(num_heads=3, intermediate_dim=16, key_dim=4)(X).shape == X.shape
    with pytest.raises(ValueError, match=r"attention_mask must be \(batch, T_q, T_k\) = \(batch, 5, 5\), got shape \(2, 5\)"):
        TransformerEncoderBlock(num_heads=2, intermediate_dim=16)(X, attention_mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match=r"input must be \(batch, T, d_model\), got shape \(2, 8\)"):
        TransformerEncoderBlock(num_heads=2, intermediate_dim=16)(X[:, 0])


@pytest.mark.parametrize("norm_first", [False, True])
def test_round_trip_with_padding_mask_and_tflite(tmp_path, norm_first):
    x = X.copy()
    x[0, 3:] = 0.0
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dropout=0.1, norm_first=norm_first)
    run_layer_test(block, x, tmp_path, call=lambda layer, t: layer(masked(t["x"])), expected_shape=(2, 5, 8), tflite=True)
