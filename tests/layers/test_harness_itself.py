"""The harness must catch a layer that breaks its contract, or it proves nothing."""

import keras
import numpy as np
import pytest

from harness import run_layer_test


def test_harness_passes_a_correct_builtin_layer(tmp_path):
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    layer = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")
    out = run_layer_test(layer, x, tmp_path, expected_shape=(3, 2), reference=lambda x: np.repeat(x.sum(1, keepdims=True), 2, 1))
    assert out.shape == (3, 2)


@keras.saving.register_keras_serializable(package="tfdl_test")
class ForgetsItsArgument(keras.layers.Layer):
    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return x * self.scale

    def get_config(self):  # drops `scale`: a reload would compute x * 1
        config = super().get_config()
        config.pop("scale", None)
        return config


def test_harness_catches_an_incomplete_get_config(tmp_path):
    x = np.ones((2, 3), dtype="float32")
    with pytest.raises(AssertionError):
        run_layer_test(ForgetsItsArgument(scale=3.0), x, tmp_path, reference=3 * x)


def test_harness_catches_a_wrong_reference(tmp_path):
    x = np.ones((2, 3), dtype="float32")
    with pytest.raises(AssertionError):
        run_layer_test(keras.layers.Identity(), x, tmp_path, reference=2 * x)
