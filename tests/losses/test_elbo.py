"""vae_loss equals the negative ELBO in numpy and trains a tiny VAE inside a compiled step."""

import keras
import numpy as np
import pytest
from keras import ops

from tfdl.losses import gaussian_kl_divergence, vae_loss

rng = np.random.default_rng(4)
BATCH, FEATURES, LATENT = 5, 6, 2
X = rng.random((BATCH, 2, 3)).astype("float32")  # a 2x3 "image" in [0, 1]
LOGITS = rng.normal(size=X.shape).astype("float32")
PROBS = (1 / (1 + np.exp(-LOGITS))).astype("float32")
MEAN = rng.normal(size=(BATCH, LATENT)).astype("float32")
LOG_VAR = rng.normal(scale=0.3, size=(BATCH, LATENT)).astype("float32")


def numpy_kl(mean, log_var):
    return -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1)


def numpy_bernoulli_nll(x, p):
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2))


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_bernoulli_is_summed_binary_cross_entropy_plus_beta_kl(beta):
    expected = numpy_bernoulli_nll(X, PROBS) + beta * numpy_kl(MEAN, LOG_VAR)
    from_probs = np.asarray(vae_loss(X, PROBS, MEAN, LOG_VAR, beta=beta))
    from_logits = np.asarray(vae_loss(X, LOGITS, MEAN, LOG_VAR, beta=beta, from_logits=True))
    assert from_probs.shape == (BATCH,)
    np.testing.assert_allclose(from_probs, expected, rtol=1e-4)
    np.testing.assert_allclose(from_logits, expected, rtol=1e-4)


def test_gaussian_is_half_summed_squared_error_plus_beta_kl():
    reconstruction = X + rng.normal(scale=0.1, size=X.shape).astype("float32")
    expected = 0.5 * np.sum((X - reconstruction) ** 2, axis=(1, 2)) + 2.0 * numpy_kl(MEAN, LOG_VAR)
    actual = vae_loss(X, reconstruction, MEAN, LOG_VAR, likelihood="gaussian", beta=2.0)
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_kl_term_is_gaussian_kl_divergence():
    with_kl = vae_loss(X, X, MEAN, LOG_VAR, likelihood="gaussian")
    np.testing.assert_allclose(with_kl, gaussian_kl_divergence(MEAN, LOG_VAR), rtol=1e-6)


@keras.saving.register_keras_serializable(package="tfdl_test")
class TinyVAE(keras.Model):
    """A dense VAE whose `compute_loss` is `vae_loss`: the way a tfdl VAE uses it."""

    def __init__(self, features=FEATURES, latent=LATENT, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.features, self.latent, self.beta = features, latent, beta
        self.encoder = keras.layers.Dense(2 * latent)
        self.decoder = keras.layers.Dense(features)
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, x):
        mean, log_var = ops.split(self.encoder(x), 2, axis=-1)
        z = mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return self.decoder(z), mean, log_var

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits, mean, log_var = y_pred
        return ops.mean(vae_loss(x, logits, mean, log_var, beta=self.beta, from_logits=True))

    def get_config(self):
        return {**super().get_config(), "features": self.features, "latent": self.latent, "beta": self.beta}


def test_trains_a_vae_in_a_compiled_step_and_round_trips(tmp_path):
    data = (rng.random((64, FEATURES)) > 0.5).astype("float32")
    model = TinyVAE(beta=0.5)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=30, batch_size=64, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0] - 0.3

    path = tmp_path / "vae.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(reloaded, TinyVAE) and reloaded.beta == 0.5
    for before, after in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert np.isfinite(reloaded.fit(data, epochs=1, batch_size=64, verbose=0).history["loss"][0])


def test_is_registered_so_it_deserializes_in_safe_mode():
    config = keras.saving.serialize_keras_object(vae_loss)
    assert keras.saving.deserialize_keras_object(config, safe_mode=True) is vae_loss


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"likelihood": "poisson"}, r"likelihood must be one of \('bernoulli', 'gaussian'\)"),
        ({"beta": -1.0}, r"beta must be >= 0"),
    ],
)
def test_bad_arguments_name_the_argument_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vae_loss(X, PROBS, MEAN, LOG_VAR, **kwargs)
