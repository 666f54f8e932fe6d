"""A multilayer perceptron (`mlp`): dense layers over a row of features.

The model for tabular data (CSV files, data frames) and the textbook's
training-basics lessons: each hidden layer is Dense -> (batch norm) ->
activation -> (dropout), then a softmax head. With no hidden layers it is
multinomial logistic regression.

Every comparison the textbooks make is one line of `model.params` (or of
`training.optimizer`) away from `configs/digits_mlp.yaml`:

    kernel_initializer: glorot_uniform   # Xavier; he_normal / he_uniform for ReLU, lecun_normal for SELU
    activation: relu                     # sigmoid, tanh, elu, selu, gelu, leaky_relu, ...
    l2: 1.0e-4                           # L2 weight decay in the loss; l1 for sparse weights
    dropout: 0.3                         # after each hidden layer
    batch_norm: true                     # before each hidden activation
    # training.optimizer: {name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true, clipnorm: 1.0}
    # training.optimizer: {name: rmsprop} / {name: adam} / {name: adamw, weight_decay: 1.0e-4}
"""

from __future__ import annotations

from pydantic import Field, field_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class MLPConfig(StrictModel):
    """Configuration of `build_mlp`.

    Attributes:
        input_shape: shape of one example; taken from the data when left out.
        num_classes: number of classes; taken from the data when left out.
        input_name: the model input's name, the key serving clients use.
        hidden_units: units of each hidden layer, first to last.
        activation: activation of the hidden layers (any Keras activation name).
        kernel_initializer: initializer of the hidden layers' kernels (any
            Keras initializer name: glorot_uniform is Xavier, he_normal is He).
            The softmax head keeps glorot_uniform, which suits its linear logits.
        l1, l2: L1 and L2 penalty factors on every kernel, head included
            (0 turns each off).
        batch_norm: batch normalization before each hidden activation (the
            dense layer then has no bias: batch norm's offset replaces it).
        dropout: dropout rate after each hidden layer.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "features"
    hidden_units: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("activation")
    @classmethod
    def _known_activation(cls, name: str) -> str:
        import keras

        try:
            keras.activations.get(name)
        except ValueError:
            raise ValueError(f"unknown Keras activation {name!r}; e.g. relu, tanh, sigmoid, elu, selu, gelu") from None
        return name

    @field_validator("kernel_initializer")
    @classmethod
    def _known_initializer(cls, name: str) -> str:
        import keras

        try:
            keras.initializers.get(name)
        except ValueError:
            raise ValueError(
                f"unknown Keras initializer {name!r}; e.g. glorot_uniform, glorot_normal, he_normal, "
                "he_uniform, lecun_normal"
            ) from None
        return name


def _regularizer(config: MLPConfig):
    import keras

    if not (config.l1 or config.l2):
        return None
    return keras.regularizers.L1L2(l1=config.l1, l2=config.l2)


@register_model("mlp", MLPConfig, task="classification")
def build_mlp(config: MLPConfig):
    """Build the MLP.

    Args:
        config: the model's settings; `input_shape` and `num_classes` must be set.

    Returns:
        A functional `keras.Model` whose output `probabilities` is a softmax over the classes.

    Raises:
        ValueError: `input_shape` or `num_classes` is missing.
    """
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_mlp needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = layers.Flatten(name="flatten")(inputs) if len(config.input_shape) > 1 else inputs
    for i, units in enumerate(config.hidden_units, start=1):
        x = layers.Dense(
            units, use_bias=not config.batch_norm, kernel_initializer=config.kernel_initializer,
            kernel_regularizer=_regularizer(config), name=f"dense{i}",
        )(x)
        if config.batch_norm:
            x = layers.BatchNormalization(name=f"dense{i}_bn")(x)
        x = layers.Activation(config.activation, name=f"dense{i}_{config.activation}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dense{i}_dropout")(x)
    outputs = layers.Dense(
        config.num_classes, activation="softmax", kernel_regularizer=_regularizer(config), name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name="mlp")
