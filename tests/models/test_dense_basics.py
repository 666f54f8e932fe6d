"""The dense-network lessons: XOR defeats a perceptron and not an MLP; every textbook setting reaches the model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfdl.models import build_model
from tfdl.schema import ConfigError


def test_xor_generator_balances_the_corners_and_labels_them_by_xor():
    from tfdl.pipelines.generated import generate

    data = generate("xor", examples=400, seed=3, params={"noise": 0.0})
    corners, counts = np.unique(data.features, axis=0, return_counts=True)
    np.testing.assert_array_equal(corners, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(counts, [100, 100, 100, 100])
    np.testing.assert_array_equal(data.labels, (data.features[:, 0] != data.features[:, 1]).astype(int))
    noisy = generate("xor", examples=400, seed=3, params={"noise": 0.1})
    np.testing.assert_array_equal(noisy.labels, data.labels)  # same corners, same seed
    assert 0.08 < np.std(noisy.features - data.features) < 0.12


@pytest.mark.parametrize("params, message", [({"noise": -1.0}, "noise"), ({"sigma": 1.0}, "takes noise")])
def test_xor_generator_refuses_bad_parameters(params, message):
    from tfdl.pipelines.generated import generate

    with pytest.raises(ValueError, match=message):
        generate("xor", examples=40, seed=0, params=params)
    with pytest.raises(ValueError, match="at least 4"):
        generate("xor", examples=3, seed=0)


def _train_on_xor(config_file: str, tmp_path):
    """Train a shipped XOR config through the run's data stage and trainer; accuracy on the train and test splits."""
    from tfdl.config import load_config
    from tfdl.models import model_config
    from tfdl.pipelines import build_pipeline
    from tfdl.run import model_params_from_data
    from tfdl.training import make_strategy, train

    config = load_config(config_file, [
        "training.backup=null", "training.early_stopping=null", "training.verbose=0", "training.epochs=12",
    ])
    model_name = config.model.name
    keras.utils.set_random_seed(0)
    pipeline = build_pipeline(config.data, seed=0)
    built = model_config(model_name, model_params_from_data(config, pipeline))
    result = train(lambda: build_model(model_name, built), pipeline.train, pipeline.validation, config.training,
                   make_strategy("default"), tmp_path, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                   log=lambda _: None)
    x, y = pipeline.raw("train")
    fitted = np.mean(result.model.predict(np.asarray(pipeline.preprocessing(x)), verbose=0).argmax(-1) == y)
    tested = np.mean(result.model.predict(pipeline.test, verbose=0).argmax(-1) == pipeline.test_labels)
    return fitted, tested


def test_a_perceptron_cannot_fit_xor_and_a_two_layer_mlp_can(tmp_path):
    perceptron = _train_on_xor("configs/xor_perceptron.yaml", tmp_path / "perceptron")
    mlp = _train_on_xor("configs/xor_mlp.yaml", tmp_path / "mlp")
    assert max(perceptron) <= 0.75  # one line gets at most 3 of the 4 corners
    assert mlp == (1.0, 1.0)


def test_every_textbook_setting_reaches_the_built_mlp():
    model = build_model("mlp", {
        "input_shape": [64], "num_classes": 10, "hidden_units": [32, 16], "activation": "tanh",
        "kernel_initializer": "he_normal", "l1": 1e-5, "l2": 1e-3, "batch_norm": True, "dropout": 0.25,
    })
    for i in (1, 2):
        dense = model.get_layer(f"dense{i}")
        assert isinstance(dense.kernel_initializer, keras.initializers.HeNormal)
        assert dense.kernel_regularizer.get_config() == pytest.approx({"l1": 1e-5, "l2": 1e-3})
        assert dense.use_bias is False  # batch norm's offset replaces the bias
        assert isinstance(model.get_layer(f"dense{i}_bn"), keras.layers.BatchNormalization)
        assert model.get_layer(f"dense{i}_tanh").activation is keras.activations.tanh
        assert model.get_layer(f"dense{i}_dropout").rate == 0.25
    assert model.get_layer("probabilities").kernel_regularizer.get_config() == pytest.approx({"l1": 1e-5, "l2": 1e-3})
    # The penalty enters the loss: 1e-3 * sum(w^2) + 1e-5 * sum(|w|) over every kernel.
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    expected = sum(1e-3 * np.sum(np.square(k)) + 1e-5 * np.sum(np.abs(k)) for k in kernels)
    model(np.zeros((1, 64), "float32"))
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)

    plain = build_model("mlp", {"input_shape": [64], "num_classes": 10, "kernel_initializer": "glorot_normal"})
    assert isinstance(plain.get_layer("dense1").kernel_initializer, keras.initializers.GlorotNormal)
    assert plain.get_layer("dense1").kernel_regularizer is None and plain.get_layer("dense1").use_bias
    assert not any(isinstance(layer, (keras.layers.Dropout, keras.layers.BatchNormalization)) for layer in plain.layers)


@pytest.mark.parametrize("optimizer, expected_class, expected", [
    ({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "clipnorm": 1.0},
     keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True, "clipnorm": 1.0}),
    ({"name": "rmsprop", "momentum": 0.5}, keras.optimizers.RMSprop, {"momentum": 0.5}),
    ({"name": "adam", "global_clipnorm": 2.0}, keras.optimizers.Adam, {"global_clipnorm": 2.0}),
    ({"name": "adamw", "weight_decay": 0.01}, keras.optimizers.AdamW, {"weight_decay": 0.01}),
])
def test_every_optimizer_setting_reaches_the_optimizer(optimizer, expected_class, expected):
    from tfdl.config import load_config
    from tfdl.training import make_optimizer

    overrides = [f"training.optimizer.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in optimizer.items()]
    built = make_optimizer(load_config("configs/xor_mlp.yaml", overrides).training.optimizer)
    assert type(built) is expected_class
    config = built.get_config()
    for key, value in expected.items():
        assert config[key] == pytest.approx(value)


def test_bad_settings_name_the_field():
    from tfdl.models import model_config

    with pytest.raises(ConfigError, match="model.params.kernel_initializer.*he_normal"):
        model_config("mlp", {"kernel_initializer": "he_norml"})
    with pytest.raises(ConfigError, match="model.params.activation"):
        model_config("mlp", {"activation": "relux"})
    with pytest.raises(ConfigError, match="model.params.l2"):
        model_config("mlp", {"l2": -0.1})
    with pytest.raises(ValueError, match="2 classes with one unit.*has 3"):
        build_model("perceptron", {"input_shape": [2], "num_classes": 3})


def test_perceptron_decides_by_the_sign_of_its_unit():
    model = build_model("perceptron", {"input_shape": [2], "num_classes": 2})
    w, b = np.array([[2.0], [-1.0]], "float32"), np.array([0.5], "float32")
    model.get_layer("unit").set_weights([w, b])
    x = np.array([[1.0, 0.0], [0.0, 3.0], [-1.0, -1.0]], "float32")
    z = (x @ w + b)[:, 0]
    np.testing.assert_allclose(model(x), np.stack([1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))], axis=1), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(model(x)).argmax(-1), (z > 0).astype(int))


@pytest.mark.parametrize("name, params", [
    ("perceptron", {"input_shape": [2], "num_classes": 2}),
    ("mlp", {"input_shape": [8], "num_classes": 3, "hidden_units": [4], "kernel_initializer": "he_uniform",
             "l2": 0.01, "batch_norm": True, "dropout": 0.1}),
])
def test_dense_models_round_trip_through_keras_files(name, params, tmp_path):
    model = build_model(name, params)
    x = np.random.default_rng(0).normal(size=(5, params["input_shape"][0])).astype("float32")
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(x), model(x), atol=1e-6)
    for layer in model.layers:
        again = reloaded.get_layer(layer.name)
        assert type(again) is type(layer)
        if isinstance(layer, keras.layers.Dense):
            assert type(again.kernel_initializer) is type(layer.kernel_initializer)
            assert (again.kernel_regularizer is None) == (layer.kernel_regularizer is None)
