"""Sampling: statistics of the draws, seeding, deterministic inference, gradients, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import build_model, run_layer_test
from tfdl.export import export_saved_model, to_tflite
from tfdl.layers.sampling import Sampling


def _mean_log_var(batch: int, dim: int = 4):
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(1, dim)).astype("float32")
    log_var = rng.uniform(-2.0, 1.0, size=(1, dim)).astype("float32")
    return np.repeat(mean, batch, 0), np.repeat(log_var, batch, 0)


def test_samples_have_the_requested_mean_and_std():
    n = 20000
    mean, log_var = _mean_log_var(n)
    z = keras.ops.convert_to_numpy(Sampling(seed=7)([mean, log_var]))
    std = np.exp(0.5 * log_var[0])
    # Standard errors over n draws: std / sqrt(n) for the mean, about
    # std / sqrt(2n) for the std; 5 of them keeps the test far from flaky
    # while a wrong formula (e.g. exp(log_var)) misses by far more.
    np.testing.assert_array_less(np.abs(z.mean(0) - mean[0]), 5 * std / np.sqrt(n))
    np.testing.assert_array_less(np.abs(z.std(0) - std), 5 * std / np.sqrt(2 * n))


def test_same_seed_same_draws_and_each_call_draws_anew():
    mean, log_var = _mean_log_var(8)
    a, b = Sampling(seed=3), Sampling(seed=3)
    first_a, first_b = np.asarray(a([mean, log_var])), np.asarray(b([mean, log_var]))
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(np.asarray(a([mean, log_var])), np.asarray(b([mean, log_var])))
    assert not np.allclose(np.asarray(a([mean, log_var])), first_a), "the seed generator did not advance"
    assert not np.allclose(np.asarray(Sampling(seed=4)([mean, log_var])), first_a)


def test_mean_at_inference_returns_the_mean_only_when_not_training():
    mean, log_var = _mean_log_var(8)
    layer = Sampling(seed=1, mean_at_inference=True)
    np.testing.assert_array_equal(np.asarray(layer([mean, log_var])), mean)
    np.testing.assert_array_equal(np.asarray(layer([mean, log_var], training=False)), mean)
    assert not np.allclose(np.asarray(layer([mean, log_var], training=True)), mean)
    # The default samples in inference too.
    assert not np.allclose(np.asarray(Sampling(seed=1)([mean, log_var], training=False)), mean)


def test_gradients_flow_to_mean_and_log_var():
    mean, log_var = (tf.Variable(x) for x in _mean_log_var(16))
    layer = Sampling(seed=2)
    with tf.GradientTape() as tape:
        z = layer([mean, log_var])
        loss = tf.reduce_sum(z)
    d_mean, d_log_var = tape.gradient(loss, [mean, log_var])
    np.testing.assert_allclose(d_mean.numpy(), np.ones_like(mean.numpy()))
    # d z / d log_var = 0.5 * exp(0.5 * log_var) * eps = 0.5 * (z - mean).
    np.testing.assert_allclose(d_log_var.numpy(), 0.5 * (z.numpy() - mean.numpy()), rtol=1e-5, atol=1e-6)


def test_mismatched_shapes_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        Sampling()([np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32")])
    with pytest.raises(ValueError, match="same shape"):
        Sampling()([keras.Input((3,)), keras.Input((4,))])


def test_round_trip_and_tflite_with_mean_at_inference(tmp_path):
    mean, log_var = _mean_log_var(4, dim=8)
    run_layer_test(
        Sampling(seed=1, mean_at_inference=True),
        {"mean": mean, "log_var": log_var},
        tmp_path,
        call=lambda layer, t: layer([t["mean"], t["log_var"]]),
        expected_shape=(4, 8),
        reference=mean,
        tflite=True,
    )


def _random_model():
    mean, log_var = _mean_log_var(4, dim=8)
    inputs = {"mean": mean, "log_var": log_var}
    return build_model(Sampling(seed=1), inputs, lambda layer, t: layer([t["mean"], t["log_var"]])), inputs


def test_random_path_exports_to_saved_model_and_draws_there(tmp_path):
    model, inputs = _random_model()
    saved = export_saved_model(model, tmp_path / "saved")
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    feed = {k: tf.constant(v) for k, v in inputs.items()}
    (first,) = signature(**feed).values()
    (second,) = signature(**feed).values()
    assert first.shape == (4, 8)
    assert np.isfinite(first.numpy()).all()
    assert not np.allclose(first.numpy(), second.numpy()), "the exported seed state does not advance"


def test_random_path_does_not_convert_to_tflite(tmp_path):
    # Recorded in the docstring: the builtin TFLite op set has no stateless
    # random normal. If a TensorFlow release adds it, update the docstring.
    model, _ = _random_model()
    saved = export_saved_model(model, tmp_path / "saved")
    with pytest.raises(Exception, match="StatelessRandomNormalV2"):
        to_tflite(saved, tmp_path / "model.tflite")
