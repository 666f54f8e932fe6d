"""Seq2seq with attention learns to reverse digit strings; greedy and beam search decode it."""

import keras
import numpy as np
import pytest

from tfdl.evaluation.plots import plot_attention
from tfdl.losses import MaskedSparseCategoricalCrossentropy
from tfdl.models import build_model
from tfdl.models.seq2seq import beam_search, greedy_decode
from tfdl.pipelines.sequence_tasks import reversal_task


def train_reverser(attention: str, epochs: int):
    keras.utils.set_random_seed(0)
    task = reversal_task(4000, min_length=3, max_length=8, seed=0)
    model = build_model("seq2seq", {
        "source_vocabulary_size": task.vocabulary_size, "target_vocabulary_size": task.vocabulary_size,
        "embed_dim": 32, "units": 96, "attention": attention, "max_output_length": 10,
    })
    model.compile(keras.optimizers.Adam(5e-3), MaskedSparseCategoricalCrossentropy(from_logits=True))
    model.fit([task.source, task.target[:, :-1]], task.target[:, 1:], epochs=epochs, batch_size=64, verbose=0)
    return model


def exact_match(decoded_tokens, task) -> float:
    hits = [task.digits([t for t in out] + [task.end]) == task.digits(src)[::-1]
            for out, src in zip(decoded_tokens, task.source)]
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def reverser():
    return train_reverser("bahdanau", epochs=12)


def test_bahdanau_seq2seq_reverses_unseen_sequences(reverser, tmp_path):
    test = reversal_task(300, seed=42)
    greedy = greedy_decode(reverser, test.source)
    assert exact_match(greedy.tokens, test) >= 0.95
    beam = beam_search(reverser, test.source[:60], beam_width=3)
    assert exact_match(beam.tokens, type(test)(test.source[:60], test.target[:60])) >= 0.95

    # Reversal attends to the mirrored source position: the heatmap's anti-diagonal.
    length = int((test.source[0] > 0).sum())
    weights = greedy.attention[0]
    assert weights.shape == (length, test.source.shape[1])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    peaks = weights[:, :length].argmax(axis=1)
    assert np.mean(peaks == np.arange(length)[::-1]) >= 0.8
    png = plot_attention(weights, test.digits(test.source[0]), test.digits(greedy.tokens[0] + [test.end]), tmp_path / "a.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_seq2seq_round_trips_through_the_keras_format(reverser, tmp_path):
    test = reversal_task(8, seed=7)
    reverser.save(tmp_path / "s2s.keras")
    reloaded = keras.saving.load_model(tmp_path / "s2s.keras", safe_mode=True)
    inputs = [test.source, test.target[:, :-1]]
    np.testing.assert_allclose(np.asarray(reloaded(inputs)), np.asarray(reverser(inputs)), atol=1e-5)
    assert greedy_decode(reloaded, test.source).tokens == greedy_decode(reverser, test.source).tokens


@pytest.mark.parametrize("attention", ["luong_dot", "luong_general"])
def test_luong_variants_learn_too(attention):
    model = train_reverser(attention, epochs=8)
    test = reversal_task(200, seed=43)
    assert exact_match(greedy_decode(model, test.source).tokens, test) >= 0.8


def test_greedy_decode_of_an_immediate_end_token_is_empty():
    model = build_model("seq2seq", {"source_vocabulary_size": 12, "target_vocabulary_size": 12, "embed_dim": 8,
                                    "units": 8, "max_output_length": 5})
    source = np.array([[3, 4, 5, 0], [6, 7, 0, 0]], dtype="int32")
    model([source, np.ones((2, 1), "int32")])
    bias = np.full(12, -50.0, "float32")
    bias[model.config.end_token] = 50.0
    model.output_layer.bias.assign(bias)
    decoded = greedy_decode(model, source)
    assert decoded.tokens == [[], []]
    assert [a.shape for a in decoded.attention] == [(0, 4), (0, 4)]
