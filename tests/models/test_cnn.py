import keras
import numpy as np
import pytest

from tfdl.models import CNNConfig, available_models, build_model
from tfdl.pipelines import load_sklearn_dataset
from tfdl.schema import ConfigError


def digits(n=800):
    data = load_sklearn_dataset("digits")
    return data.features[:n] / 16.0, data.labels[:n]


def small_cnn(**overrides):
    params = dict(input_shape=(64,), num_classes=10, image_shape=(8, 8, 1), filters=(8, 16), dense_units=16, dropout=0.1)
    params.update(overrides)
    return build_model("cnn", params)


def test_cnn_is_registered_and_builds_by_name():
    assert "cnn" in available_models()
    model = small_cnn()
    assert model.input.name == "pixels"
    assert model.output_names == ["probabilities"]
    assert model.output_shape == (None, 10)
    probabilities = np.asarray(model(np.zeros((2, 64), "float32")))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_cnn_takes_images_without_reshape():
    model = build_model("cnn", dict(input_shape=(8, 8, 3), num_classes=3, filters=(4,), dense_units=0))
    assert model.output_shape == (None, 3)


def test_cnn_learns_on_small_data():
    keras.utils.set_random_seed(0)
    x, y = digits()
    model = small_cnn()
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:600], y[:600], epochs=10, batch_size=32, verbose=0).history
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    held_out = np.asarray(model(x[600:])).argmax(axis=1)
    assert np.mean(held_out == y[600:]) > 0.85


def test_cnn_round_trips_through_the_keras_format(tmp_path):
    model = small_cnn()
    x, _ = digits(8)
    path = tmp_path / "cnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


def test_cnn_needs_the_data_derived_fields():
    with pytest.raises(ValueError, match="input_shape and num_classes"):
        build_model("cnn", CNNConfig())


def test_unknown_parameter_is_named():
    with pytest.raises(ConfigError, match="model.params.kernel: unknown field"):
        build_model("cnn", {"kernel": 3})
