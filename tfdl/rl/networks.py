"""Keras models of the RL agents: a Q-network, a categorical actor-critic, a Gaussian actor-critic.

Every model takes one input named `observation` (float32, (batch, obs_dim)),
the key a served policy's clients send, and returns a dict. Actor and critic
are separate MLPs (sharing a torso makes the value loss fight the policy on
small tasks); layers use orthogonal initialization with a small gain on the
policy output, as in the PPO implementations whose results are reproduced.
"""

from __future__ import annotations

import math

import keras

from tfdl.rl.heads import DuelingCombine, StateIndependentLogStd


def _check(obs_dim: int, num_actions: int, hidden_units) -> None:
    if obs_dim < 1 or num_actions < 1:
        raise ValueError(f"need obs_dim >= 1 and num_actions >= 1, got {obs_dim} and {num_actions}")
    if not hidden_units or any(u < 1 for u in hidden_units):
        raise ValueError(f"hidden_units must be positive layer widths, got {hidden_units!r}")


def _mlp(x, hidden_units, activation: str, prefix: str):
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"{prefix}_dense_{i}",
                               kernel_initializer=keras.initializers.Orthogonal(math.sqrt(2)))(x)
    return x


def _dense(units: int, gain: float, name: str):
    return keras.layers.Dense(units, kernel_initializer=keras.initializers.Orthogonal(gain), name=name)


def build_q_network(obs_dim: int, num_actions: int, hidden_units=(64, 64), dueling: bool = False,
                    name: str = "q_network") -> keras.Model:
    """An MLP from observations to one Q-value per action.

    Args:
        obs_dim: length of an observation.
        num_actions: number of discrete actions.
        hidden_units: widths of the ReLU layers.
        dueling: a value and an advantage head joined by `DuelingCombine`.
        name: the model's name.

    Returns:
        A model from `{"observation"}` to `{"q_values"}`, the Q-values of shape (batch, num_actions).

    Raises:
        ValueError: a non-positive size.
    """
    _check(obs_dim, num_actions, hidden_units)
    observation = keras.Input((obs_dim,), name="observation")
    torso = _mlp(observation, hidden_units, "relu", "torso")
    if dueling:
        value = _dense(1, 1.0, "value")(torso)
        advantages = _dense(num_actions, 1.0, "advantages")(torso)
        q_values = DuelingCombine(name="q_values")([value, advantages])
    else:
        q_values = _dense(num_actions, 1.0, "q_values")(torso)
    return keras.Model({"observation": observation}, {"q_values": q_values}, name=name)


def build_actor_critic(obs_dim: int, num_actions: int, hidden_units=(64, 64), name: str = "actor_critic") -> keras.Model:
    """Separate tanh MLPs for a categorical policy and a state value.

    Args:
        obs_dim: length of an observation.
        num_actions: number of discrete actions.
        hidden_units: widths of each MLP's layers.
        name: the model's name.

    Returns:
        A model `{"observation"} -> {"logits": (batch, num_actions), "value": (batch, 1)}`.

    Raises:
        ValueError: a non-positive size.
    """
    _check(obs_dim, num_actions, hidden_units)
    observation = keras.Input((obs_dim,), name="observation")
    logits = _dense(num_actions, 0.01, "logits")(_mlp(observation, hidden_units, "tanh", "actor"))
    value = _dense(1, 1.0, "value")(_mlp(observation, hidden_units, "tanh", "critic"))
    return keras.Model({"observation": observation}, {"logits": logits, "value": value}, name=name)


def build_gaussian_actor_critic(obs_dim: int, action_dim: int, hidden_units=(64, 64), log_std_init: float = 0.0,
                                name: str = "gaussian_actor_critic") -> keras.Model:
    """A diagonal Gaussian policy (state-independent log std) and a state value.

    Args:
        obs_dim: length of an observation.
        action_dim: dimensions of the continuous action.
        hidden_units: widths of each MLP's layers.
        log_std_init: starting log standard deviation of every action dimension.
        name: the model's name.

    Returns:
        A model `{"observation"} -> {"mean": (batch, action_dim), "log_std": (batch, action_dim),
        "value": (batch, 1)}`.

    Raises:
        ValueError: a non-positive size.
    """
    _check(obs_dim, action_dim, hidden_units)
    observation = keras.Input((obs_dim,), name="observation")
    mean = _dense(action_dim, 0.01, "mean")(_mlp(observation, hidden_units, "tanh", "actor"))
    log_std = StateIndependentLogStd(action_dim, log_std_init, name="log_std")(observation)
    value = _dense(1, 1.0, "value")(_mlp(observation, hidden_units, "tanh", "critic"))
    return keras.Model({"observation": observation}, {"mean": mean, "log_std": log_std, "value": value}, name=name)
