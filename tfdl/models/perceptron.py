"""A single-unit perceptron (`perceptron`): one linear unit, the model XOR defeats.

The unit computes z = w.x + b and decides class 1 where z > 0: one straight
line (a hyperplane) through feature space. To train with gradients and to fit
the classification task (softmax probabilities, argmax decides), the output
is the two-class softmax of (-z/2, z/2), which is (sigmoid(-z), sigmoid(z)):
its argmax is exactly the perceptron's decision, and sparse cross-entropy on
it is the logistic loss. That replaces Rosenblatt's update rule (which a
step function needs) but not the capacity: a linear boundary either way, so
on XOR no setting gets more than 3 of the 4 corners right
(`configs/xor_perceptron.yaml` against `configs/xor_mlp.yaml`).
"""

from __future__ import annotations

from pydantic import Field

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class PerceptronConfig(StrictModel):
    """Configuration of `build_perceptron`.

    Attributes:
        input_shape: shape of one example; taken from the data when left out.
        num_classes: must be 2 (one unit separates two classes); taken from the data.
        input_name: the model input's name, the key serving clients use.
        kernel_initializer: initializer of the unit's weights (a Keras name).
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "features"
    kernel_initializer: str = "glorot_uniform"


@register_model("perceptron", PerceptronConfig, task="classification")
def build_perceptron(config: PerceptronConfig):
    """Build the perceptron.

    Args:
        config: the model's settings; `input_shape` must be set and `num_classes` be 2.

    Returns:
        A functional `keras.Model`: `unit` (Dense(1), the logit z) then
        `probabilities`, shape (batch, 2), the softmax of (-z/2, z/2).

    Raises:
        ValueError: `input_shape` is missing, or the data has other than 2 classes.
    """
    import keras
    from keras import layers

    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_perceptron needs input_shape and num_classes (the run fills them from the data)")
    if config.num_classes != 2:
        raise ValueError(
            f"a perceptron separates 2 classes with one unit, but the data has {config.num_classes}; "
            "use model.name: mlp (hidden_units: []) for multinomial logistic regression"
        )
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = layers.Flatten(name="flatten")(inputs) if len(config.input_shape) > 1 else inputs
    z = layers.Dense(1, kernel_initializer=config.kernel_initializer, name="unit")(x)
    # Built-in layers rather than a Lambda, so the model loads with safe_mode.
    pair = layers.Concatenate(name="logit_pair")(
        [layers.Rescaling(-0.5, name="half_negated")(z), layers.Rescaling(0.5, name="half")(z)]
    )
    outputs = layers.Activation("softmax", name="probabilities")(pair)
    return keras.Model(inputs, outputs, name="perceptron")
