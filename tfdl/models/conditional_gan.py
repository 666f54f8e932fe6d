"""The conditional GAN (`conditional_gan`, Mirza and Osindero 2014): ask for a digit, get that digit.

Both players see the class label: the generator embeds it next to the
noise, the discriminator lays its embedding over the image as one more
channel (see `build_generator` and `build_discriminator` in
`tfdl.models.gan`). Training is the GAN's own step, with each generated
image given the label of a real image of the same batch, so the generated
classes follow the data's class balance. Generating takes `[noise, labels]`.
"""

from __future__ import annotations

import keras
from pydantic import Field

from tfdl.models.gan import GAN, GANConfig
from tfdl.models.registry import register_model


class ConditionalGANConfig(GANConfig):
    """Configuration of `build_conditional_gan` (the fields of `GANConfig`, and the classes).

    Attributes:
        num_classes: how many classes the labels count; taken from the data
            when left out.
    """

    num_classes: int | None = Field(None, ge=2)


@keras.saving.register_keras_serializable(package="tfdl")
class ConditionalGAN(GAN):
    """A GAN whose generator and discriminator both take the class label.

    Train it on `(images, labels)` batches; `generate(noise, labels)` draws
    one image of class `labels[i]` per noise row.

    Example:
    >>> import numpy as np
    >>> gan = ConditionalGAN({"input_shape": (64,), "latent_dim": 8, "num_classes": 10})
    >>> gan.generate(np.zeros((3, 8), "float32"), np.array([0, 4, 9])).shape
    (3, 8, 8, 1)
    """

    config_class = ConditionalGANConfig

    def __init__(self, config: dict, **kwargs):
        num_classes = config.get("num_classes")
        if num_classes is None:
            raise ValueError("ConditionalGAN needs num_classes (the run fills it from the data)")
        self.num_classes = int(num_classes)
        super().__init__(config, **kwargs)

    def _real_images(self, data):
        real, labels = super()._real_images(data)
        if labels is None:
            raise ValueError("a conditional GAN trains on (images, labels) batches; this batch has no labels")
        return real, keras.ops.reshape(keras.ops.cast(labels, "int32"), (-1,))

    def _generator_inputs(self, noise, labels):
        return [noise, labels]

    def _discriminator_inputs(self, images, labels):
        return [images, labels]


@register_model("conditional_gan", ConditionalGANConfig, task="gan")
def build_conditional_gan(config: ConditionalGANConfig) -> ConditionalGAN:
    """Build the conditional GAN; compile it with the discriminator's optimizer."""
    return ConditionalGAN(config.model_dump(mode="json"), name="conditional_gan")
