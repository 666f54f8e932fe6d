"""A variational autoencoder (`vae`) for small images such as the 8x8 digits.

encoder: x -> (mean, log_var) of q(z|x); `Sampling` draws z = mean +
exp(0.5 log_var) * eps; decoder: z -> Bernoulli probabilities per pixel. The
loss is the negative ELBO (`tfdl.losses.vae_loss`), computed in
`compute_loss`, so the standard Keras `fit` trains it on any backend and
under any tf.distribute strategy. At inference the model reconstructs from
the posterior mean; `sample` decodes draws from the prior N(0, I) and
`interpolate` walks the latent space between two inputs.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from pydantic import Field

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class VAEConfig(StrictModel):
    """Configuration of `build_vae`.

    Attributes:
        input_shape: shape of one example (values in [0, 1]), e.g. (64,) for
            flat digits; taken from the data when left out.
        latent_dim: dimensions of z (2 lets you plot the latent space).
        hidden_units: widths of the encoder's dense layers (mirrored in the decoder).
        beta: weight of the KL term (1 is the ELBO; >1 a beta-VAE).
        seed: seeds the reparameterization noise.
    """

    input_shape: tuple[int, ...] | None = None
    latent_dim: int = Field(8, ge=1)
    hidden_units: tuple[int, ...] = Field((128, 64), min_length=1)
    beta: float = Field(1.0, ge=0.0)
    seed: int | None = 0


@keras.saving.register_keras_serializable(package="tfdl")
class VAE(keras.Model):
    """Encoder, sampling and decoder with the negative-ELBO loss.

    `model(x)` returns `{"reconstruction", "mean", "log_var"}`; fit it with
    `model.fit(x, epochs=...)` (no targets: x is its own target).
    """

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        from tfdl.layers.sampling import Sampling

        self.config = VAEConfig(**config)
        c = self.config
        if c.input_shape is None:
            raise ValueError("VAE needs input_shape (the run fills it from the data)")
        size = int(np.prod(c.input_shape))
        self.encoder = keras.Sequential(
            [keras.layers.Input(c.input_shape), keras.layers.Flatten()]
            + [keras.layers.Dense(u, activation="relu") for u in c.hidden_units]
            + [keras.layers.Dense(2 * c.latent_dim)],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.layers.Input((c.latent_dim,))]
            + [keras.layers.Dense(u, activation="relu") for u in reversed(c.hidden_units)]
            + [keras.layers.Dense(size, activation="sigmoid"), keras.layers.Reshape(c.input_shape)],
            name="decoder",
        )
        self.sampling = Sampling(seed=c.seed, mean_at_inference=True, name="sampling")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def encode(self, x):
        """Posterior mean and log-variance of z for each input."""
        stats = self.encoder(x)
        return ops.split(stats, 2, axis=-1)

    def decode(self, z):
        """Pixel probabilities for latent codes z."""
        return self.decoder(z)

    def call(self, x, training=False):
        mean, log_var = self.encode(x)
        z = self.sampling([mean, log_var], training=training)
        return {"reconstruction": self.decode(z), "mean": mean, "log_var": log_var}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        from tfdl.losses.elbo import vae_loss
        from tfdl.losses.gaussian_kl import gaussian_kl_divergence
        from tfdl.losses.replica_mean import replica_mean

        total = vae_loss(x, y_pred["reconstruction"], y_pred["mean"], y_pred["log_var"], beta=self.config.beta)
        kl = gaussian_kl_divergence(y_pred["mean"], y_pred["log_var"])
        loss = ops.mean(total)
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(ops.mean(total - self.config.beta * kl))
        self.kl_tracker.update_state(ops.mean(kl))
        return replica_mean(total)  # so N replicas' gradients sum to the global batch's

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def reconstruct(self, x) -> np.ndarray:
        """Decode the posterior mean of each input."""
        return np.asarray(self(x, training=False)["reconstruction"])

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """Decode `n` draws from the prior N(0, I)."""
        z = np.random.default_rng(seed).standard_normal((n, self.config.latent_dim)).astype("float32")
        return np.asarray(self.decode(z))

    def interpolate(self, x_a, x_b, steps: int = 10) -> np.ndarray:
        """Decode evenly spaced points on the line between the latent means of x_a and x_b."""
        mean, _ = self.encode(np.stack([x_a, x_b]))
        mean = np.asarray(mean)
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
        return np.asarray(self.decode((1 - t) * mean[0] + t * mean[1]))

    def get_config(self):
        return {**super().get_config(), "config": self.config.model_dump(mode="json")}


@register_model("vae", VAEConfig, task="vae")
def build_vae(config: VAEConfig) -> VAE:
    """Build the VAE; fit it on inputs scaled to [0, 1]."""
    return VAE(config.model_dump(mode="json"), name="vae")


def plot_vae(model: VAE, x: np.ndarray, image_shape: tuple[int, int], directory, seed: int = 0) -> dict:
    """PNG grids: inputs over reconstructions, prior samples, and a latent interpolation."""
    from pathlib import Path

    from tfdl.evaluation.plots import plot_image_grid

    directory = Path(directory)
    n = min(10, len(x))
    originals = np.asarray(x[:n]).reshape(n, *image_shape)
    reconstructions = model.reconstruct(x[:n]).reshape(n, *image_shape)
    return {
        "reconstruction": plot_image_grid(np.concatenate([originals, reconstructions]), directory / "vae_reconstruction.png",
                                          columns=n, title="inputs (top) and reconstructions (bottom)"),
        "samples": plot_image_grid(model.sample(20, seed=seed).reshape(20, *image_shape), directory / "vae_samples.png",
                                   columns=10, title="samples from the prior"),
        "interpolation": plot_image_grid(model.interpolate(x[0], x[1], 10).reshape(10, *image_shape),
                                         directory / "vae_interpolation.png", columns=10, title="latent interpolation"),
    }
