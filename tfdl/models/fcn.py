"""Fully convolutional network (`fcn`): FCN-32s, -16s and -8s for semantic segmentation.

Long et al. 2015: a convolutional backbone (here VGG-style stages of 3x3
convolutions, each ending in a 2x2 max pool) scores every cell of its
coarsest map with a 1x1 convolution; `Conv2DTranspose` layers upsample the
scores, fused by addition with the scores of finer pooling stages (16s: the
stride-16 stage; 8s: also the stride-8 stage), back to the input size. The
output is per-pixel class probabilities, computed in float32.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.models.unet import conv_stack
from tfdl.schema import StrictModel

FUSED_STAGES = {"32s": 0, "16s": 1, "8s": 2}


class FCNConfig(StrictModel):
    """Configuration of `build_fcn`.

    Attributes:
        input_shape: (height, width, channels); taken from the data when left out.
        num_classes: classes per pixel, background included; from the data when left out.
        input_name: name of the model input, the key serving clients use.
        variant: `32s`, `16s` or `8s`: how many finer stages' scores are fused.
        filters: filters per backbone stage; each stage halves the resolution,
            so the coarsest map has stride 2^len(filters).
        convs_per_stage: 3x3 convolutions per stage.
        batch_norm: batch normalization after each convolution.
        batch_norm_momentum: momentum of its moving statistics.
        dropout: dropout before the coarsest scores.
    """

    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "image"
    variant: Literal["32s", "16s", "8s"] = "8s"
    filters: tuple[int, ...] = Field((32, 64, 128, 256, 256), min_length=3)
    convs_per_stage: int = Field(2, ge=1)
    batch_norm: bool = True
    batch_norm_momentum: float = Field(0.9, gt=0.0, lt=1.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _size_divides(self) -> "FCNConfig":
        if self.input_shape is not None:
            stride = 2 ** len(self.filters)
            if self.input_shape[0] % stride or self.input_shape[1] % stride:
                raise ValueError(
                    f"input_shape {list(self.input_shape)}: height and width must be divisible by {stride} "
                    f"(2 to the number of backbone stages, {len(self.filters)}); resize the images or use "
                    "fewer stages"
                )
        if FUSED_STAGES[self.variant] > len(self.filters) - 1:
            raise ValueError(f"variant {self.variant} fuses more stages than the {len(self.filters)} there are")
        return self


@register_model("fcn", FCNConfig, task="segmentation")
def build_fcn(config: FCNConfig):
    """Build the FCN; its output `probabilities` is a per-pixel softmax over the classes."""
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_fcn needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = inputs
    pooled = []
    for stage, filters in enumerate(config.filters):
        x = conv_stack(x, filters, config.convs_per_stage, config.batch_norm, config.batch_norm_momentum,
                       f"stage{stage + 1}")
        x = layers.MaxPooling2D(2, name=f"stage{stage + 1}_pool")(x)
        pooled.append(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="score_dropout")(x)
    k = config.num_classes
    stride = 2 ** len(config.filters)
    scores = layers.Conv2D(k, 1, name=f"score_stride{stride}")(x)
    for finer in range(FUSED_STAGES[config.variant]):
        # Upsample 2x and add the scores of the next finer pooling stage.
        stride //= 2
        scores = layers.Conv2DTranspose(k, 4, strides=2, padding="same", name=f"upscore_to_stride{stride}")(scores)
        skip = layers.Conv2D(k, 1, name=f"score_stride{stride}")(pooled[-2 - finer])
        scores = layers.Add(name=f"fuse_stride{stride}")([scores, skip])
    scores = layers.Conv2DTranspose(k, 2 * stride, strides=stride, padding="same", name="upscore_to_input")(scores)
    outputs = layers.Softmax(dtype="float32", name="probabilities")(scores)
    return keras.Model(inputs, outputs, name="fcn")
