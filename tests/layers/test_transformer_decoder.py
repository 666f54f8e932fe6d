"""TransformerDecoderBlock: causality, cross-attention and its masks, decoder-only variant, errors, round trips."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.transformer_decoder import TransformerDecoderBlock
from tfdl.layers.transformer_encoder import TransformerEncoderBlock

RNG = np.random.default_rng(4)
TOKENS = RNG.normal(size=(2, 6, 8)).astype("float32")
ENCODED = RNG.normal(size=(2, 4, 12)).astype("float32")
ENCODER_MASK = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)


def block(norm_first=False, **kwargs):
    return TransformerDecoderBlock(num_heads=2, intermediate_dim=16, norm_first=norm_first, **kwargs)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("with_encoder", [False, True])
def test_changing_a_future_token_leaves_earlier_outputs_alone(norm_first, with_encoder):
    layer = block(norm_first)
    encoder = (ENCODED,) if with_encoder else ()
    changed = TOKENS.copy()
    changed[:, 3] += 1.0
    before, after = np.asarray(layer(TOKENS, *encoder)), np.asarray(layer(changed, *encoder))
    np.testing.assert_allclose(after[:, :3], before[:, :3], atol=1e-6)
    assert np.abs(after[:, 3:] - before[:, 3:]).min(axis=-1).max() > 1e-4


def test_decoder_only_block_is_an_encoder_block_with_a_causal_mask():
    decoder = block()
    decoder(TOKENS)
    decoder.set_weights([RNG.normal(size=w.shape).astype("float32") * 0.5 for w in decoder.get_weights()])
    encoder = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    encoder.build(TOKENS.shape)
    encoder.set_weights(decoder.get_weights())
    causal = np.tril(np.ones((2, 6, 6), bool))
    np.testing.assert_allclose(decoder(TOKENS), encoder(TOKENS, attention_mask=causal), atol=1e-5)


def test_cross_attention_uses_the_encoder():
    layer = block()
    other = ENCODED + RNG.normal(size=ENCODED.shape).astype("float32")
    assert np.abs(np.asarray(layer(TOKENS, ENCODED)) - np.asarray(layer(TOKENS, other))).max() > 1e-3


@pytest.mark.parametrize("norm_first", [False, True])
def test_padded_encoder_steps_are_ignored(norm_first):
    layer = block(norm_first)
    noisy = ENCODED.copy()
    noisy[0, 2:] = RNG.normal(size=(2, 12))  # only where the encoder mask is False
    kept = np.asarray(layer(TOKENS, ENCODED, encoder_sequence_mask=ENCODER_MASK))
    np.testing.assert_allclose(layer(TOKENS, noisy, encoder_sequence_mask=ENCODER_MASK), kept, atol=1e-6)
    assert np.abs(np.asarray(layer(TOKENS, noisy)) - kept).max() > 1e-3  # the mask is what hid them

    padded = ENCODED.copy()
    padded[0, 2:] = 0.0
    longer = np.concatenate([padded, np.zeros((2, 3, 12), "float32")], axis=1)
    masking = keras.layers.Masking()
    np.testing.assert_allclose(layer(TOKENS, masking(longer)), layer(TOKENS, masking(padded)), atol=1e-5)
    np.testing.assert_allclose(layer(TOKENS, masking(padded)), kept, atol=1e-5)


def test_cross_attention_weights_are_zero_on_padded_encoder_steps():
    _, weights = block()(TOKENS, ENCODED, encoder_sequence_mask=ENCODER_MASK, return_attention_scores=True)
    weights = np.asarray(weights)
    assert weights.shape == (2, 2, 6, 4)
    np.testing.assert_array_equal(weights[0, :, :, 2:], 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_padded_decoder_steps_are_ignored():
    layer = block()
    decoder_mask = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)  # left padding
    noisy = TOKENS.copy()
    noisy[0, :2] = RNG.normal(size=(2, 8))
    kept = np.asarray(layer(TOKENS, ENCODED, decoder_sequence_mask=decoder_mask))
    changed = np.asarray(layer(noisy, ENCODED, decoder_sequence_mask=decoder_mask))
    np.testing.assert_allclose(changed[:, 2:], kept[:, 2:], atol=1e-6)
    assert np.abs(np.asarray(layer(noisy, ENCODED))[0, 2:] - kept[0, 2:]).max() > 1e-3


def test_masks_are_passed_on_and_left_on_the_inputs():
    tokens, encoded = keras.layers.Masking()(TOKENS), keras.layers.Masking()(ENCODED)
    out = block()(tokens, encoded)
    assert getattr(out, "_keras_mask", None) is not None
    assert getattr(tokens, "_keras_mask", None) is not None and getattr(encoded, "_keras_mask", None) is not None


def test_decoder_only_block_has_no_cross_attention_weights():
    gpt, seq2seq = block(), block()
    gpt(TOKENS)
    seq2seq(TOKENS, ENCODED)
    assert not any("cross_attention" in w.path for w in gpt.weights)
    assert any("cross_attention" in w.path for w in seq2seq.weights)
    assert len(seq2seq.weights) - len(gpt.weights) == 8 + 2  # cross MultiHeadAttention + its LayerNorm
    with pytest.raises(ValueError, match="no cross-attention"):
        gpt(TOKENS, return_attention_scores=True)
    with pytest.raises(ValueError, match="built decoder-only"):
        gpt(TOKENS, ENCODED)
    with pytest.raises(ValueError, match="needs an encoder_sequence"):
        seq2seq(TOKENS)


def test_bad_shapes_raise_errors_that_name_them():
    with pytest.raises(ValueError, match="model dimension 8 .* not divisible by num_heads=3"):
        TransformerDecoderBlock(num_heads=3, intermediate_dim=16)(TOKENS)
    with pytest.raises(ValueError, match=r"encoder_sequence must be \(batch, T, d\), got shape \(2, 12\)"):
        block()(TOKENS, ENCODED[:, 0])


def test_round_trip_seq2seq_with_masks_and_tflite(tmp_path):
    tokens, encoded = TOKENS.copy(), ENCODED.copy()
    tokens[0, 4:] = 0.0
    encoded[0, 2:] = 0.0

    def call(layer, t):
        masking = keras.layers.Masking()
        output, weights = layer(masking(t["tokens"]), masking(t["encoded"]), return_attention_scores=True)
        # One output for export: (batch, heads, T, S) weights laid out as (batch, T, heads * S) beside it.
        weights = keras.layers.Reshape((6, 8))(keras.layers.Permute((2, 1, 3))(weights))
        return keras.layers.Concatenate()([output, weights])

    layer = block(dropout=0.1)
    out = run_layer_test(layer, {"tokens": tokens, "encoded": encoded}, tmp_path, call=call, expected_shape=(2, 6, 16))
    want_output, want_weights = layer(
        tokens, encoded, decoder_sequence_mask=tokens.any(-1), encoder_sequence_mask=ENCODER_MASK,
        return_attention_scores=True,
    )
    np.testing.assert_allclose(out[..., :8], want_output, atol=1e-5)
    np.testing.assert_allclose(out[..., 8:], np.asarray(want_weights).transpose(0, 2, 1, 3).reshape(2, 6, 8), atol=1e-6)
    np.testing.assert_array_equal(out[0, :, 8:].reshape(6, 2, 4)[:, :, 2:], 0.0)


def test_round_trip_decoder_only_pre_norm_and_tflite(tmp_path):
    layer = block(norm_first=True)
    out = run_layer_test(layer, TOKENS, tmp_path, expected_shape=(2, 6, 8))
    changed = TOKENS.copy()
    changed[:, 5] += 1.0
    np.testing.assert_allclose(layer(changed)[:, :5], out[:, :5], atol=1e-6)
