"""The GAN family's shared parts, and the unconditional GAN/DCGAN (`dcgan`) for small images.

`build_generator` and `build_discriminator` make the two players as plain
functional models (transposed convolutions up from noise, strided
convolutions down to one score), optionally conditioned on a class label;
`tfdl.models.conditional_gan` and `tfdl.models.wgan` reuse them.

`GAN` holds both players and trains them in its own `train_step`: one
discriminator step on a real and a generated batch, then one generator step
(the non-saturating loss of Goodfellow et al. 2014, DCGAN architecture of
Radford et al. 2015). The trainer compiles a model with one optimizer;
`GAN.compile` takes it for the discriminator and makes the generator's own
from its config, so `tfdl run` and its backups drive a GAN like any model.

Pixel units: the generator ends in tanh, rescaled to `pixel_range`, the
range of the values the model is fed (raw digits pixels 0..16 under
`data.normalization: none`); the discriminator maps that range back to
[-1, 1]. Both rescalings are Keras `Rescaling` layers, so the generator
alone is a complete, safely loadable model whose output is in data units.

The steps use `tf.GradientTape`: two players with two optimizers cannot go
through Keras's backend-neutral `compute_loss` path.
"""

from __future__ import annotations

from typing import Literal

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from pydantic import Field, model_validator

from tfdl.layers.seed_state import SeedState
from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class GANArchitecture(StrictModel):
    """What every model of the GAN family shares: the two players and their optimizers.

    Attributes:
        input_shape: shape of one fed example (e.g. (64,) for flat digits
            rows); reshaped to `image_shape`. Taken from the data when left out.
        image_shape: (height, width, channels) of the images; height and
            width must divide by 2 ** (len(generator_filters) - 1).
        latent_dim: size of the generator's noise vector.
        pixel_range: (low, high) of the fed pixel values; the generator's tanh
            is rescaled to it. 0..16 is the raw scikit-learn digits range.
        generator_filters: channels of the generator's feature maps, from the
            smallest map up; each step after the first doubles the size.
        generator_batch_norm: batch normalization in the generator.
        discriminator_filters: channels of the discriminator's strided
            convolutions (each halves the size).
        discriminator_normalization: none, layer or batch normalization
            after each discriminator convolution but the first.
        discriminator_dropout: dropout after each discriminator convolution.
        leaky_slope: negative slope of the LeakyReLU activations.
        generator_learning_rate, discriminator_learning_rate: override the
            learning rate of the optimizer the model is compiled with (None:
            keep it). The generator's optimizer is a copy of that optimizer.
        beta_1, beta_2: override Adam's moment decays for both players (None:
            keep the compiled optimizer's); GANs train better with beta_1 0.5
            or 0.
        seed: seeds the noise drawn inside the training step.
    """

    input_shape: tuple[int, ...] | None = None
    image_shape: tuple[int, int, int] = (8, 8, 1)
    latent_dim: int = Field(32, ge=1, le=4096)
    pixel_range: tuple[float, float] = (0.0, 16.0)
    generator_filters: tuple[int, ...] = Field((128, 64), min_length=1, max_length=6)
    generator_batch_norm: bool = True
    discriminator_filters: tuple[int, ...] = Field((64, 128), min_length=1, max_length=6)
    discriminator_normalization: Literal["none", "layer", "batch"] = "none"
    discriminator_dropout: float = Field(0.3, ge=0.0, lt=1.0)
    leaky_slope: float = Field(0.2, ge=0.0, lt=1.0)
    generator_learning_rate: float | None = Field(None, gt=0.0)
    discriminator_learning_rate: float | None = Field(None, gt=0.0)
    beta_1: float | None = Field(None, ge=0.0, lt=1.0)
    beta_2: float | None = Field(None, ge=0.0, lt=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _shapes_fit(self):
        low, high = self.pixel_range
        if not high > low:
            raise ValueError(f"pixel_range must be (low, high) with high > low, got {self.pixel_range}")
        factor = 2 ** (len(self.generator_filters) - 1)
        height, width, _ = self.image_shape
        if height % factor or width % factor:
            raise ValueError(
                f"image_shape {self.image_shape} does not divide by {factor} (2 ** (len(generator_filters) - 1)); "
                "use fewer generator_filters or another image size"
            )
        if self.input_shape is not None and int(np.prod(self.input_shape)) != int(np.prod(self.image_shape)):
            raise ValueError(
                f"input_shape {self.input_shape} holds {int(np.prod(self.input_shape))} values but image_shape "
                f"{self.image_shape} needs {int(np.prod(self.image_shape))}; set image_shape to the data's images"
            )
        return self


class GANConfig(GANArchitecture):
    """Configuration of `build_dcgan` (see `GANArchitecture` for the shared fields).

    Attributes:
        label_smoothing: the discriminator's target for real images is
            1 - label_smoothing (one-sided smoothing, Salimans et al. 2016).
    """

    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)


def _normalization(kind: str, name: str):
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "layer":
        return keras.layers.LayerNormalization(name=name)
    return None


def build_generator(config: GANArchitecture, num_classes: int | None = None) -> keras.Model:
    """The generator: noise (and a class label) -> images in `pixel_range` units.

    Args:
        config: the architecture.
        num_classes: condition on a label among this many classes (the label
            is embedded and concatenated to the noise); None: unconditional.

    Returns:
        A functional model with input `noise` (batch, latent_dim) and, when
        conditional, `labels` (batch,) int32; output (batch, *image_shape).
    """
    height, width, channels = config.image_shape
    factor = 2 ** (len(config.generator_filters) - 1)
    noise = keras.Input((config.latent_dim,), name="noise")
    inputs, x = [noise], noise
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        embedded = keras.layers.Embedding(num_classes, config.latent_dim, name="label_embedding")(labels)
        x = keras.layers.Concatenate(name="noise_and_label")([noise, embedded])
    first = config.generator_filters[0]
    x = keras.layers.Dense((height // factor) * (width // factor) * first, use_bias=not config.generator_batch_norm,
                           name="project")(x)
    x = keras.layers.Reshape((height // factor, width // factor, first), name="to_maps")(x)
    for i, filters in enumerate(config.generator_filters):
        if i > 0:
            x = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same",
                                             use_bias=not config.generator_batch_norm, name=f"up{i}")(x)
        if config.generator_batch_norm:
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.LeakyReLU(config.leaky_slope, name=f"act{i}")(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="tanh", name="to_pixels")(x)
    low, high = config.pixel_range
    # tanh's [-1, 1] -> [low, high]: the generator speaks the data's units.
    images = keras.layers.Rescaling((high - low) / 2.0, offset=(high + low) / 2.0, name="images")(x)
    return keras.Model(inputs if num_classes is not None else noise, images, name="generator")


def build_discriminator(config: GANArchitecture, num_classes: int | None = None) -> keras.Model:
    """The discriminator (or WGAN critic): images (and a class label) -> one unbounded score each.

    Args:
        config: the architecture.
        num_classes: condition on a label: its embedding is laid over the
            image as one more channel; None: unconditional.

    Returns:
        A functional model with input `images` (batch, *image_shape) in
        `pixel_range` units and, when conditional, `labels`; output (batch, 1)
        logits (a critic's score for the WGANs).
    """
    height, width, _ = config.image_shape
    low, high = config.pixel_range
    images = keras.Input(config.image_shape, name="images")
    inputs = [images]
    x = keras.layers.Rescaling(2.0 / (high - low), offset=-(high + low) / (high - low), name="to_unit_range")(images)
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        plane = keras.layers.Embedding(num_classes, height * width, name="label_embedding")(labels)
        plane = keras.layers.Reshape((height, width, 1), name="label_plane")(plane)
        x = keras.layers.Concatenate(name="image_and_label")([x, plane])
    for i, filters in enumerate(config.discriminator_filters):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"down{i}")(x)
        norm = _normalization(config.discriminator_normalization, f"norm{i}") if i > 0 else None
        if norm is not None:
            x = norm(x)
        x = keras.layers.LeakyReLU(config.leaky_slope, name=f"act{i}")(x)
        if config.discriminator_dropout:
            x = keras.layers.Dropout(config.discriminator_dropout, name=f"dropout{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    score = keras.layers.Dense(1, name="score")(x)
    return keras.Model(inputs if num_classes is not None else images, score, name="discriminator")


def _tuned_optimizer(optimizer, learning_rate: float | None, beta_1: float | None, beta_2: float | None):
    """A fresh copy of `optimizer` with the given settings replaced.

    Raises:
        ValueError: betas are set but the optimizer has none.
    """
    settings = optimizer.get_config()
    if learning_rate is not None:
        settings["learning_rate"] = learning_rate
    for key, value in (("beta_1", beta_1), ("beta_2", beta_2)):
        if value is None:
            continue
        if key not in settings:
            raise ValueError(
                f"model.params.{key} is set but the optimizer {type(optimizer).__name__} has no {key}; "
                "use adam or adamw, or leave it out"
            )
        settings[key] = value
    return type(optimizer).from_config(settings)


class _GANBase(SeedState, keras.Model):
    """Two players, two optimizers and the plumbing the trainer needs; subclasses write the steps.

    A subclass sets `self.generator`, `self.discriminator` and the loss
    trackers in `__init__`, and writes `train_step` and `test_step`.
    """

    config_class = GANArchitecture
    num_classes: int | None = None

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.config = self.config_class(**config)
        self.generator = build_generator(self.config, self.num_classes)
        self.discriminator = build_discriminator(self.config, self.num_classes)
        self.seed_generator = keras.random.SeedGenerator(self.config.seed, name="noise_seed")
        self.g_optimizer = None
        self.built = True  # both players are functional models, built with their inputs

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Take `optimizer` for the discriminator and make the generator's own.

        `loss` and `metrics` are ignored: the steps compute both players'
        losses. Both optimizers are built here, so a backup taken before the
        first step already holds their slots.
        """
        given = keras.optimizers.get(optimizer)
        c = self.config
        d_optimizer = _tuned_optimizer(given, c.discriminator_learning_rate, c.beta_1, c.beta_2)
        self.g_optimizer = _tuned_optimizer(given, c.generator_learning_rate, c.beta_1, c.beta_2)
        super().compile(optimizer=d_optimizer, **kwargs)
        self._given_optimizer = keras.optimizers.serialize(given)
        self.optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        return {"optimizer": self._given_optimizer} if self.compiled else None

    def compile_from_config(self, config):
        self.compile(optimizer=keras.optimizers.deserialize(config["optimizer"]))

    @property
    def variables(self):
        # The trainer's backup checkpoints `model.variables` and
        # `model.optimizer.variables`; the generator's optimizer is the
        # model's own, so its slots travel with the model's variables.
        extra = list(self.g_optimizer.variables) if self.g_optimizer is not None else []
        return super().variables + extra

    def call(self, inputs, training=False):
        """Images in `pixel_range` units from noise (and labels, for a conditional model)."""
        return self.generator(inputs, training=training)

    def _real_images(self, data):
        """The real images (reshaped to `image_shape`) and labels of a `(x, y)` batch."""
        x, y = (data[0], data[1]) if isinstance(data, (tuple, list)) else (data, None)
        if isinstance(x, dict):
            x = next(iter(x.values()))
        real = ops.reshape(ops.cast(x, "float32"), (-1, *self.config.image_shape))
        return real, y

    def _noise(self, batch):
        return keras.random.normal((batch, self.config.latent_dim), seed=self.seed_generator)

    def _generator_inputs(self, noise, labels):
        """What the generator takes; a conditional model adds the labels."""
        return noise

    def _discriminator_inputs(self, images, labels):
        """What the discriminator takes; a conditional model adds the labels."""
        return images

    def _fake_scores(self, batch, labels, training: bool):
        """The discriminator's scores of `batch` images generated from fresh noise (for `labels`)."""
        fake = self.generator(self._generator_inputs(self._noise(batch), labels), training=training)
        return self.discriminator(self._discriminator_inputs(fake, labels), training=training), fake

    def generate(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Images in `pixel_range` units for `noise` (batch, latent_dim) (and int labels (batch,)).

        Raises:
            ValueError: `noise` is not (batch, latent_dim), or labels are
                missing, extra, or of another length.
        """
        noise = np.asarray(noise, dtype="float32")
        if noise.ndim != 2 or noise.shape[1] != self.config.latent_dim:
            raise ValueError(f"noise must have shape (batch, {self.config.latent_dim}), got {noise.shape}")
        if (labels is None) != (self.num_classes is None):
            raise ValueError(
                "this GAN is conditional: pass labels, one class per noise row" if labels is None
                else "this GAN is unconditional: it takes no labels"
            )
        if labels is None:
            return np.asarray(self.generator(noise, training=False))
        labels = np.asarray(labels, dtype="int32").reshape(-1)
        if len(labels) != len(noise) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"labels must be {len(noise)} class ids in [0, {self.num_classes - 1}], got {labels.tolist()[:10]}..."
            )
        return np.asarray(self.generator([noise, labels], training=False))

    def sample(self, n: int, seed: int = 0, labels: np.ndarray | None = None) -> np.ndarray:
        """`n` images from noise drawn with numpy's generator seeded by `seed`."""
        noise = np.random.default_rng(seed).standard_normal((n, self.config.latent_dim)).astype("float32")
        return self.generate(noise, labels)

    def get_config(self):
        return {**super().get_config(), "config": self.config.model_dump(mode="json")}


def _binary_crossentropy(target: float, logits):
    """Per-example sigmoid cross-entropy of logits (batch, 1) against one target value."""
    return keras.losses.binary_crossentropy(ops.full_like(logits, target), logits, from_logits=True)


@keras.saving.register_keras_serializable(package="tfdl")
class GAN(_GANBase):
    """An unconditional GAN (DCGAN architecture) with the non-saturating loss.

    Each `train_step`: the discriminator learns to score real images 1
    (1 - label_smoothing) and generated ones 0; then the generator learns to
    make the discriminator score its images 1. It reports `d_loss`, `g_loss`
    and `loss` (their sum, which the trainer watches for NaN).

    Example:
    >>> gan = GAN({"input_shape": (64,), "latent_dim": 8})
    >>> gan.compile(optimizer="adam")
    >>> gan.generate(np.zeros((2, 8), "float32")).shape
    (2, 8, 8, 1)
    """

    config_class = GANConfig

    def __init__(self, config: dict, **kwargs):
        super().__init__(config, **kwargs)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.d_loss_tracker, self.g_loss_tracker]

    def _discriminator_loss(self, real, labels, training: bool):
        """Per-example loss of the discriminator on a real batch and a generated one."""
        real_logits = self.discriminator(self._discriminator_inputs(real, labels), training=training)
        fake_logits, _ = self._fake_scores(ops.shape(real)[0], labels, training)
        return (_binary_crossentropy(1.0 - self.config.label_smoothing, real_logits)
                + _binary_crossentropy(0.0, fake_logits))

    def _generator_loss(self, batch, labels, training: bool):
        """Per-example non-saturating loss of the generator: -log D(G(z))."""
        fake_logits, _ = self._fake_scores(batch, labels, training)
        return _binary_crossentropy(1.0, fake_logits)

    def train_step(self, data):
        from tfdl.losses.replica_mean import replica_mean

        real, labels = self._real_images(data)
        with tf.GradientTape() as tape:
            d_loss = self._discriminator_loss(real, labels, training=True)
            d_objective = replica_mean(d_loss)
        d_vars = self.discriminator.trainable_variables
        self.optimizer.apply(tape.gradient(d_objective, d_vars), d_vars)
        # Fresh noise for the generator, scored by the updated discriminator.
        with tf.GradientTape() as tape:
            g_loss = self._generator_loss(ops.shape(real)[0], labels, training=True)
            g_objective = replica_mean(g_loss)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_objective, g_vars), g_vars)
        return self._track(ops.mean(d_loss), ops.mean(g_loss))

    def test_step(self, data):
        real, labels = self._real_images(data)
        d_loss = self._discriminator_loss(real, labels, training=False)
        g_loss = self._generator_loss(ops.shape(real)[0], labels, training=False)
        return self._track(ops.mean(d_loss), ops.mean(g_loss))

    def _track(self, d_loss, g_loss) -> dict:
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.loss_tracker.update_state(d_loss + g_loss)
        return {m.name: m.result() for m in self.metrics}


@register_model("dcgan", GANConfig, task="gan")
def build_dcgan(config: GANConfig) -> GAN:
    """Build the unconditional GAN (DCGAN); compile it with the discriminator's optimizer."""
    return GAN(config.model_dump(mode="json"), name="dcgan")
