"""Residual networks (`resnet`): v1 and v2 (pre-activation), basic and bottleneck blocks.

He et al. 2015 (v1: conv-BN-ReLU, the shortcut added before the last ReLU)
and 2016 (v2: BN-ReLU-conv, a clean identity path through the whole
network). The depth names the standard layouts, `stages` any other:

    depth  block        blocks per stage   filters per stage (x base)
    18     basic        2, 2, 2, 2         1, 2, 4, 8
    34     basic        3, 4, 6, 3
    50     bottleneck   3, 4, 6, 3         (bottleneck output: 4x)
    101    bottleneck   3, 4, 23, 3
    152    bottleneck   3, 8, 36, 3
    6n+2   basic        n, n, n            1, 2, 4      (CIFAR-style: 20, 32, 44, 56, 110)

Images of 64 pixels and more get the ImageNet stem (7x7 stride-2 conv and a
3x3 max pool); smaller ones (digits, CIFAR) a 3x3 stride-1 conv, which keeps
their few pixels. The network is built from Keras's own layers, so it saves,
exports and converts to TFLite like any functional model; flat rows (what a
REST client sends) are reshaped into an image inside it, as in `cnn`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel

IMAGENET_LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
BOTTLENECK_EXPANSION = 4


class ResNetConfig(StrictModel):
    """Configuration of `build_resnet`.

    Attributes:
        input_shape: shape of one example as fed; taken from the data when left out.
        num_classes: number of classes; taken from the data when left out.
        input_name: name of the model input, the key serving clients use.
        image_shape: (height, width, channels) to reshape flat inputs into;
            None when the input already is an image.
        version: 1 (post-activation) or 2 (pre-activation).
        depth: 18, 34, 50, 101, 152, or 6n+2 (20, 32, 56, ...) for the
            three-stage CIFAR layout; ignored when `stages` is given.
        stages: blocks per stage, overriding `depth`.
        block: `basic` (two 3x3 convs) or `bottleneck` (1x1, 3x3, 1x1 with 4x
            output channels); `auto` follows the depth's standard layout.
        base_filters: filters of the first stage; each next stage doubles them.
        stem: `imagenet`, `small`, or `auto` (small below 64 pixels).
        batch_norm_momentum: momentum of every batch normalization's moving
            statistics; 0.9 settles within the few hundred steps a small
            dataset gives.
        weight_decay: L2 penalty on every convolution and dense kernel (0: none).
        dropout: dropout rate before the classifier.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "pixels"
    image_shape: tuple[int, int, int] | None = None
    version: Literal[1, 2] = 1
    depth: int = Field(18, ge=8)
    stages: tuple[int, ...] | None = Field(None, min_length=1)
    block: Literal["auto", "basic", "bottleneck"] = "auto"
    base_filters: int = Field(64, ge=1)
    stem: Literal["auto", "imagenet", "small"] = "auto"
    batch_norm_momentum: float = Field(0.9, gt=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _layout_exists(self) -> "ResNetConfig":
        if self.stages is None and self.depth not in IMAGENET_LAYOUTS and (self.depth - 2) % 6:
            raise ValueError(
                f"depth {self.depth} is neither a standard depth ({', '.join(map(str, IMAGENET_LAYOUTS))}) "
                "nor 6n+2 (20, 32, 44, 56, 110); give `stages` for any other layout"
            )
        if self.image_shape and self.input_shape and math.prod(self.image_shape) != math.prod(self.input_shape):
            raise ValueError(
                f"image_shape {list(self.image_shape)} holds {math.prod(self.image_shape)} values but "
                f"input_shape {list(self.input_shape)} holds {math.prod(self.input_shape)}"
            )
        return self

    def layout(self) -> tuple[str, tuple[int, ...]]:
        """The block kind and the blocks per stage this config builds."""
        if self.stages is not None:
            block = self.block if self.block != "auto" else "basic"
            return block, self.stages
        if self.depth in IMAGENET_LAYOUTS:
            block, stages = IMAGENET_LAYOUTS[self.depth]
        else:
            n = (self.depth - 2) // 6
            block, stages = "basic", (n, n, n)
        return (self.block if self.block != "auto" else block), stages


class _Blocks:
    """Makes the convolutions, normalizations and blocks of one network, named in order."""

    def __init__(self, config: ResNetConfig):
        import keras

        self.keras = keras
        self.config = config
        self.regularizer = keras.regularizers.L2(config.weight_decay) if config.weight_decay else None

    def conv(self, x, filters: int, kernel: int, strides: int, name: str):
        return self.keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=False,
            kernel_initializer="he_normal", kernel_regularizer=self.regularizer, name=name,
        )(x)

    def norm(self, x, name: str, relu: bool = True):
        x = self.keras.layers.BatchNormalization(momentum=self.config.batch_norm_momentum, name=f"{name}_bn")(x)
        return self.keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x

    def shortcut(self, x, filters: int, strides: int, name: str, normalize: bool):
        if strides == 1 and x.shape[-1] == filters:
            return x
        projected = self.conv(x, filters, 1, strides, f"{name}_projection")
        return self.norm(projected, f"{name}_projection", relu=False) if normalize else projected

    def v1(self, x, filters: int, strides: int, bottleneck: bool, name: str):
        """conv-BN-ReLU ... conv-BN, + shortcut, ReLU."""
        out_filters = filters * BOTTLENECK_EXPANSION if bottleneck else filters
        shortcut = self.shortcut(x, out_filters, strides, name, normalize=True)
        if bottleneck:
            y = self.norm(self.conv(x, filters, 1, 1, f"{name}_1"), f"{name}_1")
            y = self.norm(self.conv(y, filters, 3, strides, f"{name}_2"), f"{name}_2")
            y = self.norm(self.conv(y, out_filters, 1, 1, f"{name}_3"), f"{name}_3", relu=False)
        else:
            y = self.norm(self.conv(x, filters, 3, strides, f"{name}_1"), f"{name}_1")
            y = self.norm(self.conv(y, filters, 3, 1, f"{name}_2"), f"{name}_2", relu=False)
        y = self.keras.layers.Add(name=f"{name}_add")([shortcut, y])
        return self.keras.layers.ReLU(name=f"{name}_out")(y)

    def v2(self, x, filters: int, strides: int, bottleneck: bool, name: str):
        """BN-ReLU-conv ... + shortcut; the shortcut branches off after the first BN-ReLU."""
        out_filters = filters * BOTTLENECK_EXPANSION if bottleneck else filters
        activated = self.norm(x, f"{name}_pre")
        projects = strides != 1 or x.shape[-1] != out_filters
        shortcut = self.shortcut(activated, out_filters, strides, name, normalize=False) if projects else x
        if bottleneck:
            y = self.conv(activated, filters, 1, 1, f"{name}_1")
            y = self.conv(self.norm(y, f"{name}_1"), filters, 3, strides, f"{name}_2")
            y = self.conv(self.norm(y, f"{name}_2"), out_filters, 1, 1, f"{name}_3")
        else:
            y = self.conv(activated, filters, 3, strides, f"{name}_1")
            y = self.conv(self.norm(y, f"{name}_1"), filters, 3, 1, f"{name}_2")
        return self.keras.layers.Add(name=f"{name}_add")([shortcut, y])


@register_model("resnet", ResNetConfig, task="classification")
def build_resnet(config: ResNetConfig):
    """Build the ResNet; its output `probabilities` is a softmax over the classes."""
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_resnet needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = layers.Reshape(config.image_shape, name="to_image")(inputs) if config.image_shape else inputs
    if len(x.shape) != 4:
        raise ValueError(
            f"resnet needs images (height, width, channels); the input is {tuple(config.input_shape)}: "
            "set model.params.image_shape to reshape flat rows"
        )
    blocks = _Blocks(config)
    stem = config.stem if config.stem != "auto" else ("imagenet" if min(x.shape[1:3]) >= 64 else "small")
    if stem == "imagenet":
        x = blocks.conv(x, config.base_filters, 7, 2, "stem")
        x = blocks.norm(x, "stem") if config.version == 1 else x
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = blocks.conv(x, config.base_filters, 3, 1, "stem")
        x = blocks.norm(x, "stem") if config.version == 1 else x
    kind, stages = config.layout()
    block = blocks.v1 if config.version == 1 else blocks.v2
    for stage, count in enumerate(stages):
        filters = config.base_filters * 2**stage
        for index in range(count):
            strides = 2 if stage > 0 and index == 0 else 1
            x = block(x, filters, strides, kind == "bottleneck", f"stage{stage + 1}_block{index + 1}")
    if config.version == 2:  # the identity path ends un-normalized: close it
        x = blocks.norm(x, "post")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = layers.Dense(
        config.num_classes, activation="softmax", kernel_regularizer=blocks.regularizer,
        dtype="float32", name="probabilities",
    )(x)
    return keras.Model(inputs, outputs, name="resnet")
