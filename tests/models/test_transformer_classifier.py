"""The Transformer classifier learns word order, and loses it without positional encoding."""

import keras
import numpy as np
import pytest

from tfdl.models import build_model
from tfdl.pipelines.sequence_tasks import word_order_task


def train_and_score(position: str, seed: int = 0) -> float:
    keras.utils.set_random_seed(seed)
    train = word_order_task(2000, length=10, seed=seed)
    test = word_order_task(500, length=10, seed=seed + 100)
    model = build_model("transformer_classifier", {
        "vocabulary_size": train.vocabulary_size, "max_length": 10, "num_classes": 2,
        "embed_dim": 32, "num_heads": 2, "intermediate_dim": 64, "dropout": 0.0, "position": position,
    })
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=8)
    model.fit(train.tokens, train.labels, epochs=12, batch_size=64, verbose=0)
    return float(np.mean(np.asarray(model(test.tokens)).argmax(1) == test.labels))


def test_word_order_is_learned_with_positions_and_not_without():
    with_positions = train_and_score("sinusoidal")
    without = train_and_score("none")
    assert with_positions >= 0.9, with_positions
    assert without <= 0.6, without


def test_padding_does_not_change_the_prediction(tmp_path):
    model = build_model("transformer_classifier", {"vocabulary_size": 20, "max_length": 16, "num_classes": 2, "dropout": 0.0})
    tokens = word_order_task(4, length=8, seed=3).tokens
    padded = np.pad(tokens, ((0, 0), (0, 8)))
    np.testing.assert_allclose(np.asarray(model(padded)), np.asarray(model(tokens)), atol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(tokens)), np.asarray(model(tokens)), atol=1e-6)


def test_heads_must_divide_the_width():
    from tfdl.schema import ConfigError

    with pytest.raises(ConfigError, match="num_heads"):
        build_model("transformer_classifier", {"vocabulary_size": 20, "max_length": 8, "num_classes": 2,
                                               "embed_dim": 30, "num_heads": 4})
