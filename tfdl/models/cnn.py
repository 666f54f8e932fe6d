"""A small convolutional classifier (`cnn`): conv blocks, pooling, a dense head.

Built for small images such as scikit-learn's 8x8 digits. Flat feature rows
(what a REST client sends) are reshaped into an image inside the model, so
the served signature takes a plain row of numbers.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class CNNConfig(StrictModel):
    """Configuration of `build_cnn`.

    Attributes:
        input_shape: shape of one example as fed; taken from the data when
            left out.
        num_classes: number of classes; taken from the data when left out.
        input_name: name of the model input, the key serving clients use.
        image_shape: (height, width, channels) to reshape flat inputs into;
            None when the input already is an image.
        filters: filters of each conv block; each block but the last ends
            with 2x2 max pooling.
        kernel_size: side of the square conv kernels.
        convs_per_block: conv layers per block.
        batch_norm: batch normalization after each conv.
        batch_norm_momentum: momentum of its moving statistics; 0.9 settles
            within the few hundred steps a small dataset gives (Keras's 0.99
            needs thousands, and evaluates badly before that).
        dense_units: units of the hidden dense layer of the head (0: none).
        dropout: dropout rate before each dense layer of the head.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "pixels"
    image_shape: tuple[int, int, int] | None = None
    filters: tuple[int, ...] = Field((32, 64), min_length=1)
    kernel_size: int = Field(3, ge=1)
    convs_per_block: int = Field(2, ge=1)
    batch_norm: bool = True
    batch_norm_momentum: float = Field(0.9, gt=0.0, lt=1.0)
    dense_units: int = Field(64, ge=0)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _image_shape_fits_input(self) -> "CNNConfig":
        if self.image_shape and self.input_shape:
            if math.prod(self.image_shape) != math.prod(self.input_shape):
                raise ValueError(
                    f"image_shape {list(self.image_shape)} holds "
                    f"{math.prod(self.image_shape)} values but input_shape "
                    f"{list(self.input_shape)} holds {math.prod(self.input_shape)}"
                )
        return self


@register_model("cnn", CNNConfig, task="classification")
def build_cnn(config: CNNConfig):
    """Build the CNN; its output `probabilities` is a softmax over the classes."""
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_cnn needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = layers.Reshape(config.image_shape, name="to_image")(inputs) if config.image_shape else inputs
    for block, filters in enumerate(config.filters):
        for conv in range(config.convs_per_block):
            name = f"block{block + 1}_conv{conv + 1}"
            x = layers.Conv2D(
                filters, config.kernel_size, padding="same", use_bias=not config.batch_norm, name=name
            )(x)
            if config.batch_norm:
                x = layers.BatchNormalization(momentum=config.batch_norm_momentum, name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        if block < len(config.filters) - 1:
            x = layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if config.dense_units:
        x = layers.Dropout(config.dropout, name="head_dropout_hidden")(x)
        x = layers.Dense(config.dense_units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")
