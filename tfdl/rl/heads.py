"""The two output layers the RL networks need beyond Keras's own: a dueling combine and a free log std.

Both are registered Keras layers (no `Lambda`), so a policy saved as `.keras`
loads with `safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class DuelingCombine(keras.layers.Layer):
    """Joins a state value and action advantages into Q-values (Wang et al., 2016).

    Computes `Q(s, a) = V(s) + A(s, a) - mean_a A(s, a)`; subtracting the mean
    makes V and A identifiable. Inputs: `[value (batch, 1), advantages (batch,
    num_actions)]`; output: `(batch, num_actions)`.

    Example:

    >>> import numpy as np
    >>> DuelingCombine()([np.array([[1.0]]), np.array([[1.0, 3.0]])]).numpy().tolist()
    [[0.0, 2.0]]
    """

    def call(self, inputs):
        value, advantages = inputs
        return value + advantages - ops.mean(advantages, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape[1]


@keras.saving.register_keras_serializable(package="tfdl")
class StateIndependentLogStd(keras.layers.Layer):
    """A learned log standard deviation per action dimension, the same for every state.

    Returns the weight broadcast to `(batch, action_dim)` for an input of any
    `(batch, ...)`; the usual parameterization of a Gaussian policy in PPO.

    Args:
        action_dim: int. Dimensions of the action.
        initial_value: float. Starting log std (0: std 1). Defaults to `0.0`.
        **kwargs: other `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> StateIndependentLogStd(2, initial_value=-0.5)(np.zeros((3, 4))).shape
    TensorShape([3, 2])
    """

    def __init__(self, action_dim: int, initial_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(action_dim, int) or action_dim < 1:
            raise ValueError(f"action_dim must be a positive int, got {action_dim!r}")
        self.action_dim = action_dim
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        self.log_std = self.add_weight(
            shape=(self.action_dim,), initializer=keras.initializers.Constant(self.initial_value), name="log_std"
        )

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        return ops.broadcast_to(ops.expand_dims(self.log_std, 0), (batch, self.action_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.action_dim)

    def get_config(self):
        return {**super().get_config(), "action_dim": self.action_dim, "initial_value": self.initial_value}
