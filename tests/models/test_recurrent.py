"""The recurrent models: a SimpleRNN against a numpy reference, masking carried through, round trips, config errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.models import build_model, model_config
from tfdl.models.recurrent import RNNConfig, RNNRegressorConfig, build_rnn, build_rnn_regressor
from tfdl.training.steps import supports_xla
from tfdl.schema import ConfigError


def _numpy_simple_rnn(x, mask, kernel, recurrent, bias):
    """h_t = tanh(x_t W + h_{t-1} U + b), with h carried unchanged over masked steps."""
    h = np.zeros((x.shape[0], kernel.shape[1]))
    for t in range(x.shape[1]):
        new = np.tanh(x[:, t] @ kernel + h @ recurrent + bias)
        h = np.where(mask[:, t, None], new, h)
    return h


def test_a_masked_simple_rnn_regressor_matches_a_numpy_reference():
    keras.utils.set_random_seed(0)
    model = build_rnn_regressor(RNNRegressorConfig(input_shape=(None, 3), mask_value=0.0, cell="simple", units=[5]))
    x = np.random.default_rng(1).normal(size=(4, 6, 3)).astype("float32")
    x[1, 4:] = 0.0  # right padding of different lengths
    x[3, 2:] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    kernel, recurrent, bias = (w.numpy() for w in model.get_layer("simple_1").weights)
    dense_kernel, dense_bias = (w.numpy() for w in model.get_layer("forecast").weights)
    expected = _numpy_simple_rnn(x, mask, kernel, recurrent, bias) @ dense_kernel + dense_bias
    np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("cell, bidirectional, units", [
    ("simple", False, [6]), ("lstm", True, [6, 4]), ("gru", True, [6]), ("gru", False, [6, 4]),
])
def test_padding_does_not_change_a_token_models_output(cell, bidirectional, units):
    keras.utils.set_random_seed(0)
    model = build_rnn(RNNConfig(vocabulary_size=20, embed_dim=4, cell=cell, units=units,
                                bidirectional=bidirectional, num_classes=3))
    tokens = np.array([[5, 3, 7, 2]], dtype="int32")
    padded = np.array([[5, 3, 7, 2, 0, 0, 0]], dtype="int32")
    unpadded, with_padding = model(tokens).numpy(), model(padded).numpy()
    np.testing.assert_allclose(with_padding, unpadded, atol=1e-6)
    # The mask is what makes them equal: the same steps read as real tokens (id 1) change the answer.
    assert np.abs(model(padded + (padded == 0)).numpy() - unpadded).max() > 1e-4


def test_padding_does_not_change_a_float_sequence_models_output():
    keras.utils.set_random_seed(0)
    model = build_rnn_regressor(RNNRegressorConfig(input_shape=(None, 2), mask_value=0.0, cell="lstm",
                                                   units=[5, 3], bidirectional=True, outputs=2))
    x = np.random.default_rng(0).uniform(0.5, 1.0, size=(3, 5, 2)).astype("float32")
    padded = np.concatenate([x, np.zeros((3, 4, 2), "float32")], axis=1)
    np.testing.assert_allclose(model(padded).numpy(), model(x).numpy(), atol=1e-6)
    assert model(x).shape == (3, 2)


@pytest.mark.parametrize("name, params, inputs", [
    ("rnn", {"vocabulary_size": 30, "num_classes": 4, "cell": "gru", "bidirectional": True, "units": [8, 4]},
     np.array([[3, 9, 4, 0], [1, 2, 0, 0]], dtype="int32")),
    ("rnn_regressor", {"input_shape": [None, 2], "mask_value": 0.0, "cell": "lstm", "units": [8], "outputs": 3},
     np.random.default_rng(0).uniform(size=(2, 7, 2)).astype("float32")),
])
def test_the_models_survive_a_keras_file_round_trip(tmp_path, name, params, inputs):
    model = build_model(name, params)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(again(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
    assert again.input.name == model.input.name


def test_masked_recurrent_steps_compile_under_xla_on_cpu():
    """Why `jit_compile` may stay on for these models on CPU: the masked, bidirectional step compiles."""
    keras.utils.set_random_seed(0)
    model = build_rnn(RNNConfig(vocabulary_size=20, embed_dim=4, cell="lstm", units=[4], bidirectional=True,
                                num_classes=2))
    assert supports_xla(model)  # no cuDNN kernel on CPU, so no layer refuses XLA
    tokens = tf.constant([[4, 5, 6, 0], [7, 0, 0, 0]], dtype="int32")
    compiled = tf.function(lambda t: model(t), jit_compile=True)
    np.testing.assert_allclose(compiled(tokens).numpy(), model(tokens).numpy(), atol=1e-5)


def test_supports_xla_reads_what_the_layers_say():
    model = build_rnn(RNNConfig(vocabulary_size=10, num_classes=2, units=[4]))
    model.get_layer("lstm_1").supports_jit = False  # what Keras sets on a cuDNN-backed layer on a GPU
    assert not supports_xla(model)


@pytest.mark.parametrize("name, params, message", [
    ("rnn_regressor", {"input_shape": [100]}, r"input_shape \[time, features\]"),
    ("rnn", {"vocabulary_size": 10, "cell": "transformer"}, "cell"),
    ("rnn", {"vocabulary_size": 10, "unit": [4]}, "unit"),
    ("rnn", {"vocabulary_size": 10, "units": [4, 0]}, "positive layer widths"),
    ("rnn", {"vocabulary_size": 10, "recurrent_dropout": 1.0}, "recurrent_dropout"),
])
def test_bad_settings_fail_naming_the_field(name, params, message):
    with pytest.raises(ConfigError, match=message):
        model_config(name, params)


def test_the_builders_say_what_the_run_must_fill():
    with pytest.raises(ValueError, match="vocabulary_size .* or input_shape"):
        build_rnn_regressor(RNNRegressorConfig())
    with pytest.raises(ValueError, match="num_classes"):
        build_rnn(RNNConfig(vocabulary_size=10))
