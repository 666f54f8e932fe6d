"""The GPT-style model learns the help-topics corpus far below the unigram perplexity, and generates."""

import keras
import numpy as np
import pytest

from tfdl.losses import MaskedSparseCategoricalCrossentropy
from tfdl.models import build_model
from tfdl.models.gpt import Sampler, generate, perplexity
from tfdl.pipelines.text_corpus import char_vocabulary, encode_chars, load_python_help_corpus, unigram_perplexity, windows


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    splits = load_python_help_corpus()
    vocabulary = char_vocabulary(splits.train)
    size = len(vocabulary) + 2
    train_ids, val_ids = encode_chars(splits.train, vocabulary), encode_chars(splits.validation, vocabulary)
    x, y = windows(train_ids, 64)
    model = build_model("gpt", {"vocabulary_size": size, "max_length": 64, "embed_dim": 64, "num_heads": 4,
                                "num_layers": 2, "intermediate_dim": 128, "dropout": 0.0})
    model.compile(keras.optimizers.Adam(3e-3), MaskedSparseCategoricalCrossentropy(from_logits=True), steps_per_execution=16)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    xv, yv = windows(val_ids, 64)
    return model, vocabulary, unigram_perplexity(train_ids, val_ids, size), perplexity(model, xv[:300], yv[:300])


def test_perplexity_falls_well_below_the_unigram_baseline(trained):
    _, _, unigram, model_perplexity = trained
    assert unigram > 20
    assert model_perplexity < 0.5 * unigram, (model_perplexity, unigram)


def test_generate_greedy_is_deterministic_and_sampling_is_seeded(trained):
    model, vocabulary, _, _ = trained
    prompt = encode_chars("The value", vocabulary)[None]
    greedy = generate(model, prompt, 20)
    assert greedy.shape == (1, prompt.shape[1] + 20)
    np.testing.assert_array_equal(greedy[:, : prompt.shape[1]], prompt)
    np.testing.assert_array_equal(greedy, generate(model, prompt, 20))
    sampler = Sampler(temperature=1.0, top_k=20, top_p=0.9)
    a, b = generate(model, prompt, 20, sampler, seed=1), generate(model, prompt, 20, sampler, seed=1)
    np.testing.assert_array_equal(a, b)
    assert (a > 0).all()


def test_generation_stops_at_the_stop_token(trained):
    model, vocabulary, _, _ = trained
    prompt = encode_chars("The value", vocabulary)[None]
    free = generate(model, prompt, 30)[0, prompt.shape[1]:]
    stop = int(free[3])
    stopped = generate(model, prompt, 30, stop_token=stop)[0, prompt.shape[1]:]
    first = int(np.flatnonzero(free == stop)[0])
    np.testing.assert_array_equal(stopped, free[: first + 1])


def test_generation_runs_past_the_context_window(trained):
    model, vocabulary, _, _ = trained
    prompt = encode_chars("x" * 60, vocabulary)[None]
    assert generate(model, prompt, 10).shape == (1, 70)


def test_sampler_filters():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[1e-9, 0.5, 0.3, 0.15, 0.05]]))
    assert Sampler().pick(logits, rng).tolist() == [1]
    picks = {int(Sampler(temperature=1.0, top_k=2).pick(logits, rng)[0]) for _ in range(200)}
    assert picks == {1, 2}
    picks = {int(Sampler(temperature=1.0, top_p=0.7).pick(logits, rng)[0]) for _ in range(200)}
    assert picks == {1, 2}  # 0.5 < 0.7, so the second token is needed; the third is not
    with pytest.raises(ValueError, match="top_p"):
        Sampler(top_p=0.0)


def test_gpt_round_trips_and_exports(trained, tmp_path):
    from tfdl.export import export_saved_model
    import tensorflow as tf

    model, vocabulary, _, _ = trained
    ids = encode_chars("def f(x): return x", vocabulary)[None]
    model.save(tmp_path / "gpt.keras")
    reloaded = keras.saving.load_model(tmp_path / "gpt.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(ids)), np.asarray(model(ids)), atol=1e-5)
    signature = tf.saved_model.load(str(export_saved_model(model, tmp_path / "sm"))).signatures["serving_default"]
    np.testing.assert_allclose(signature(tokens=tf.constant(ids))["logits"].numpy(), np.asarray(model(ids)), atol=1e-4)
