"""gaussian_kl_divergence equals KL computed from scipy's densities (exactly and by Monte Carlo)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfdl.losses import gaussian_kl_divergence

rng = np.random.default_rng(2)
MEAN = rng.normal(size=(4, 3)).astype("float32")
LOG_VAR = rng.normal(scale=0.5, size=(4, 3)).astype("float32")


def scipy_kl(mean, log_var):
    """KL = cross-entropy(p, q) - entropy(p), each from scipy's distributions."""
    result = []
    for m, v in zip(mean.astype("float64"), np.exp(log_var.astype("float64"))):
        entropy = stats.multivariate_normal(m, np.diag(v)).entropy()
        # Cross-entropy against N(0, I): expectation under p of -log q, per axis.
        cross_entropy = np.sum(0.5 * np.log(2 * np.pi) + 0.5 * (v + m**2))
        result.append(cross_entropy - entropy)
    return np.array(result)


def test_matches_scipy_entropy_and_cross_entropy():
    actual = np.asarray(gaussian_kl_divergence(MEAN, LOG_VAR))
    assert actual.shape == (4,)
    np.testing.assert_allclose(actual, scipy_kl(MEAN, LOG_VAR), rtol=1e-5)


def test_matches_a_monte_carlo_estimate():
    samples = 200_000
    sample_rng = np.random.default_rng(3)
    estimates = []
    for m, lv in zip(MEAN, LOG_VAR):
        std = np.exp(0.5 * lv)
        z = m + std * sample_rng.standard_normal((samples, m.size))
        log_ratio = stats.norm.logpdf(z, m, std).sum(1) - stats.norm.logpdf(z).sum(1)
        estimates.append(log_ratio.mean())
    np.testing.assert_allclose(np.asarray(gaussian_kl_divergence(MEAN, LOG_VAR)), estimates, atol=0.03)


def test_zero_only_at_the_standard_normal_and_sums_over_all_latent_axes():
    np.testing.assert_allclose(gaussian_kl_divergence(np.zeros((2, 5)), np.zeros((2, 5))), 0.0, atol=0)
    assert np.all(np.asarray(gaussian_kl_divergence(MEAN, LOG_VAR)) > 0)
    grid_mean, grid_log_var = MEAN.reshape(2, 2, 3), LOG_VAR.reshape(2, 2, 3)
    expected = scipy_kl(MEAN, LOG_VAR).reshape(2, 2).sum(1)
    np.testing.assert_allclose(gaussian_kl_divergence(grid_mean, grid_log_var), expected, rtol=1e-5)


def test_gradients_are_the_analytic_ones_inside_a_compiled_function():
    mean, log_var = tf.Variable(MEAN), tf.Variable(LOG_VAR)

    @tf.function(jit_compile=True)
    def kl_and_grads():
        with tf.GradientTape() as tape:
            total = keras.ops.sum(gaussian_kl_divergence(mean, log_var))
        return total, tape.gradient(total, [mean, log_var])

    total, (d_mean, d_log_var) = kl_and_grads()
    np.testing.assert_allclose(total, scipy_kl(MEAN, LOG_VAR).sum(), rtol=1e-5)
    np.testing.assert_allclose(d_mean, MEAN, rtol=1e-6)
    np.testing.assert_allclose(d_log_var, 0.5 * (np.exp(LOG_VAR) - 1), rtol=1e-5, atol=1e-7)


def test_is_registered_so_it_deserializes_in_safe_mode():
    config = keras.saving.serialize_keras_object(gaussian_kl_divergence)
    assert keras.saving.deserialize_keras_object(config, safe_mode=True) is gaussian_kl_divergence


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"same shape.*\(4, 3\) and \(4, 2\)"):
        gaussian_kl_divergence(MEAN, LOG_VAR[:, :2])
