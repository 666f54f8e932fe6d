"""The Wasserstein GAN (`wgan`): a critic in place of the discriminator, kept Lipschitz two ways.

The critic scores images (no sigmoid) and learns `critic_loss = mean(fake
scores) - mean(real scores)`; the generator learns `generator_loss =
-mean(fake scores)` (`tfdl.losses.wasserstein`). The critic takes `n_critic`
steps per generator step (each with fresh noise against the same real
batch), so the generator always follows a critic near its optimum. The
critic must stay 1-Lipschitz for its loss to estimate the Wasserstein
distance:

- `lipschitz: clipping` (Arjovsky et al. 2017) clips every critic weight to
  [-clip_value, clip_value] after each critic step; the paper trains it
  with RMSprop at a small learning rate.
- `lipschitz: gradient_penalty` (WGAN-GP, Gulrajani et al. 2017) adds
  `gradient_penalty_weight * gradient_penalty(critic, real, fake)` to the
  critic's loss (`tfdl.losses.gradient_penalty`); the critic then must not
  use batch normalization (layer normalization is the paper's choice), and
  Adam with beta_1 0 (or 0.5) and beta_2 0.9 trains it.

The players are `build_generator` / `build_discriminator` of `tfdl.models.gan`.
"""

from __future__ import annotations

from typing import Literal

import keras
import tensorflow as tf
from keras import ops
from pydantic import Field, model_validator

from tfdl.models.gan import GANArchitecture, _GANBase
from tfdl.models.registry import register_model


class WGANConfig(GANArchitecture):
    """Configuration of `build_wgan` (the fields of `GANArchitecture`, and the critic's training).

    Attributes:
        lipschitz: how the critic is kept 1-Lipschitz: `gradient_penalty`
            (WGAN-GP) or `clipping` (the original WGAN).
        n_critic: critic steps per generator step.
        clip_value: the bound of the critic's weights under `clipping`.
        gradient_penalty_weight: lambda of the penalty under `gradient_penalty`.
    """

    lipschitz: Literal["gradient_penalty", "clipping"] = "gradient_penalty"
    n_critic: int = Field(5, ge=1, le=20)
    clip_value: float = Field(0.01, gt=0.0)
    gradient_penalty_weight: float = Field(10.0, ge=0.0)
    discriminator_dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _no_batch_norm_under_penalty(self):
        if self.lipschitz == "gradient_penalty" and self.discriminator_normalization == "batch":
            raise ValueError(
                "discriminator_normalization: batch mixes the examples of a batch, which the gradient penalty "
                "reads as independent; use layer or none with lipschitz: gradient_penalty"
            )
        return self


@keras.saving.register_keras_serializable(package="tfdl")
class WGAN(_GANBase):
    """Generator and critic trained on the Wasserstein losses, `n_critic` critic steps per generator step.

    Reports `d_loss` (the critic's loss, penalty included), `g_loss`,
    `wasserstein` (mean real score - mean fake score, the distance estimate
    that should shrink as samples improve), `gradient_penalty` (0 under
    clipping) and `loss` (d_loss + g_loss, which the trainer watches for NaN).

    Example:
    >>> import numpy as np
    >>> wgan = WGAN({"input_shape": (64,), "latent_dim": 8, "lipschitz": "clipping"})
    >>> wgan.generate(np.zeros((2, 8), "float32")).shape
    (2, 8, 8, 1)
    """

    config_class = WGANConfig

    def __init__(self, config: dict, **kwargs):
        super().__init__(config, **kwargs)
        self.penalty_seed = keras.random.SeedGenerator(self.config.seed + 1, name="penalty_seed")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "d_loss", "g_loss", "wasserstein", "gradient_penalty")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _critic_terms(self, real, training: bool):
        """The critic's loss (penalty included), the distance estimate and the penalty, on one real batch."""
        from tfdl.losses.gradient_penalty import gradient_penalty
        from tfdl.losses.wasserstein import critic_loss

        fake = self.generator(self._noise(ops.shape(real)[0]), training=training)
        real_scores = self.discriminator(real, training=training)
        fake_scores = self.discriminator(fake, training=training)
        loss = critic_loss(real_scores, fake_scores)
        penalty = ops.zeros(())
        if self.config.lipschitz == "gradient_penalty":
            penalty = gradient_penalty(self.discriminator, real, fake, seed=self.penalty_seed)
            loss = loss + self.config.gradient_penalty_weight * penalty
        return loss, -critic_loss(real_scores, fake_scores), penalty

    def _generator_term(self, batch, training: bool):
        from tfdl.losses.wasserstein import generator_loss

        fake = self.generator(self._noise(batch), training=training)
        return generator_loss(self.discriminator(fake, training=training))

    def _clip_critic(self) -> None:
        bound = self.config.clip_value
        for variable in self.discriminator.trainable_variables:
            variable.assign(ops.clip(variable, -bound, bound))

    def train_step(self, data):
        real, _ = self._real_images(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        c_vars = self.discriminator.trainable_variables
        for _ in range(self.config.n_critic):  # unrolled: n_critic is small and fixed
            with tf.GradientTape() as tape:
                d_loss, distance, penalty = self._critic_terms(real, training=True)
                # A mean over this replica's batch; the replicas' gradients sum.
                objective = d_loss / replicas
            self.optimizer.apply(tape.gradient(objective, c_vars), c_vars)
            if self.config.lipschitz == "clipping":
                self._clip_critic()
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            g_loss = self._generator_term(ops.shape(real)[0], training=True)
            objective = g_loss / replicas
        self.g_optimizer.apply(tape.gradient(objective, g_vars), g_vars)
        return self._track(d_loss, g_loss, distance, penalty)

    def test_step(self, data):
        real, _ = self._real_images(data)
        # The penalty's input gradient needs a tape even here; it is the critic's loss as trained.
        d_loss, distance, penalty = self._critic_terms(real, training=False)
        g_loss = self._generator_term(ops.shape(real)[0], training=False)
        return self._track(d_loss, g_loss, distance, penalty)

    def _track(self, d_loss, g_loss, distance, penalty) -> dict:
        values = {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                  "wasserstein": distance, "gradient_penalty": penalty}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


@register_model("wgan", WGANConfig, task="gan")
def build_wgan(config: WGANConfig) -> WGAN:
    """Build the WGAN (gradient penalty or weight clipping); compile it with the critic's optimizer."""
    return WGAN(config.model_dump(mode="json"), name="wgan")
