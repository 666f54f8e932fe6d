"""A multilayer perceptron (`mlp`): dense layers over a row of features.

The model for tabular data (CSV files, data frames): each hidden layer is
Dense -> (batch norm) -> activation -> (dropout), then a softmax head.
With no hidden layers it is multinomial logistic regression.
"""

from __future__ import annotations

from pydantic import Field

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class MLPConfig(StrictModel):
    """Configuration of `build_mlp`.

    Attributes:
        input_shape: shape of one example; taken from the data when left out.
        num_classes: number of classes; taken from the data when left out.
        input_name: the model input's name, the key serving clients use.
        hidden_units: units of each hidden layer, first to last.
        activation: activation of the hidden layers.
        batch_norm: batch normalization before each hidden activation.
        dropout: dropout rate after each hidden layer.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "features"
    hidden_units: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


@register_model("mlp", MLPConfig, task="classification")
def build_mlp(config: MLPConfig):
    """Build the MLP; its output `probabilities` is a softmax over the classes."""
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_mlp needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = layers.Flatten(name="flatten")(inputs) if len(config.input_shape) > 1 else inputs
    for i, units in enumerate(config.hidden_units, start=1):
        x = layers.Dense(units, use_bias=not config.batch_norm, name=f"dense{i}")(x)
        if config.batch_norm:
            x = layers.BatchNormalization(name=f"dense{i}_bn")(x)
        x = layers.Activation(config.activation, name=f"dense{i}_{config.activation}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dense{i}_dropout")(x)
    outputs = layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mlp")
