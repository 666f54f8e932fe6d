"""U-Net (`unet`): an encoder-decoder for semantic segmentation with skip connections at every level.

Ronneberger et al. 2015: each encoder level is two 3x3 convolutions then a
2x2 max pool; each decoder level upsamples (a learned `Conv2DTranspose`, or
bilinear resizing + a 1x1 conv), concatenates the encoder features of the
same resolution, and applies two 3x3 convolutions. A 1x1 convolution gives
per-pixel class probabilities, `(height, width, num_classes)`, computed in
float32. Height and width must be divisible by 2^(levels - 1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class UNetConfig(StrictModel):
    """Configuration of `build_unet`.

    Attributes:
        input_shape: (height, width, channels); taken from the data when left out.
        num_classes: classes per pixel, background included; from the data when left out.
        input_name: name of the model input, the key serving clients use.
        filters: filters per level, from the top; one pooling between levels.
        convs_per_level: 3x3 convolutions per level.
        batch_norm: batch normalization after each convolution.
        batch_norm_momentum: momentum of its moving statistics.
        upsampling: `transpose` (learned) or `bilinear`.
        dropout: spatial dropout at the bottleneck.
    """

    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "image"
    filters: tuple[int, ...] = Field((16, 32, 64, 128), min_length=2)
    convs_per_level: int = Field(2, ge=1)
    batch_norm: bool = True
    batch_norm_momentum: float = Field(0.9, gt=0.0, lt=1.0)
    upsampling: Literal["transpose", "bilinear"] = "transpose"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _size_divides(self) -> "UNetConfig":
        if self.input_shape is not None:
            factor = 2 ** (len(self.filters) - 1)
            height, width = self.input_shape[:2]
            if height % factor or width % factor:
                raise ValueError(
                    f"input_shape {list(self.input_shape)}: height and width must be divisible by {factor} "
                    f"(2 to the number of poolings, len(filters) - 1 = {len(self.filters) - 1}); resize the "
                    "images or use fewer levels"
                )
        return self


def conv_stack(x, filters: int, convs: int, batch_norm: bool, momentum: float, name: str):
    """`convs` 3x3 convolutions, each followed by batch normalization (optional) and ReLU."""
    from keras import layers

    for index in range(convs):
        label = f"{name}_conv{index + 1}"
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, kernel_initializer="he_normal",
                          name=label)(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=momentum, name=f"{label}_bn")(x)
        x = layers.ReLU(name=f"{label}_relu")(x)
    return x


@register_model("unet", UNetConfig, task="segmentation")
def build_unet(config: UNetConfig):
    """Build the U-Net; its output `probabilities` is a per-pixel softmax over the classes."""
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_unet needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = inputs
    skips = []
    levels = len(config.filters)
    for level, filters in enumerate(config.filters):
        x = conv_stack(x, filters, config.convs_per_level, config.batch_norm, config.batch_norm_momentum,
                       f"down{level + 1}")
        if level < levels - 1:
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    if config.dropout:
        x = layers.SpatialDropout2D(config.dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(levels - 1)):
        filters = config.filters[level]
        name = f"up{level + 1}"
        if config.upsampling == "transpose":
            x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_transpose")(x)
        else:
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_resize")(x)
            x = layers.Conv2D(filters, 1, name=f"{name}_project")(x)
        x = layers.Concatenate(name=f"{name}_skip")([skips[level], x])
        x = conv_stack(x, filters, config.convs_per_level, config.batch_norm, config.batch_norm_momentum, name)
    outputs = layers.Conv2D(config.num_classes, 1, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="unet")
