"""Gymnasium environments by name: vector environments for training, single ones for playing.

Training uses a vector environment in same-step autoreset mode: when a copy's
episode ends, `step` returns the first observation of its next episode and
puts the last one in `info["final_obs"]`, so a truncated episode can still be
bootstrapped from its true final state. A reward-shaping hook is a Python
callable `shaping(observation, action, reward, next_observation, terminated)
-> float` applied inside each copy; evaluation never shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

from tfdl.schema import ConfigError

RewardShaping = Callable[[np.ndarray, object, float, np.ndarray, bool], float]


@dataclass(frozen=True)
class EnvSpec:
    """What an agent must know about an environment.

    Attributes:
        name: the Gymnasium id.
        obs_dim: length of the (flat, float) observation.
        discrete: whether actions are integers in [0, num_actions).
        num_actions: number of discrete actions, or dimensions of a continuous action.
        action_low, action_high: bounds of a continuous action (None for discrete).
    """

    name: str
    obs_dim: int
    discrete: bool
    num_actions: int
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None


class _ShapedReward(gym.Wrapper):
    """Adds a user's shaping function's value to each reward (see module docstring)."""

    def __init__(self, env: gym.Env, shaping: RewardShaping):
        super().__init__(env)
        self._shaping = shaping
        self._last_obs = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._last_obs = obs
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward = float(self._shaping(self._last_obs, action, float(reward), obs, bool(terminated)))
        self._last_obs = obs
        return obs, reward, terminated, truncated, info


def make_env(name: str, *, max_episode_steps: int | None = None, render_mode: str | None = None,
             reward_shaping: RewardShaping | None = None) -> gym.Env:
    """One Gymnasium environment by id.

    Args:
        name: a registered id such as `CartPole-v1`.
        max_episode_steps: time limit; None keeps the environment's own.
        render_mode: e.g. `rgb_array` to record frames.
        reward_shaping: optional hook (see the module docstring).

    Returns:
        The environment (not yet reset).

    Raises:
        ConfigError: `name` is not a registered Gymnasium environment, or its spaces are not
            a flat Box observation with Discrete or Box actions.
    """
    try:
        env = gym.make(name, max_episode_steps=max_episode_steps, render_mode=render_mode)
    except gym.error.Error as error:
        raise ConfigError(
            f"rl.environment.name: unknown Gymnasium environment {name!r} ({error}); use a registered id "
            "such as CartPole-v1, Acrobot-v1, MountainCar-v0 or Pendulum-v1, and import the package "
            "that registers a third-party environment before the run"
        ) from None
    env_spec(env)
    if reward_shaping is not None:
        env = _ShapedReward(env, reward_shaping)
    return env


def env_spec(env: gym.Env) -> EnvSpec:
    """The `EnvSpec` of an environment (single, not vector).

    Raises:
        ConfigError: the observation is not a flat Box, or the actions are neither Discrete nor Box.
    """
    name = env.spec.id if env.spec is not None else type(env).__name__
    obs_space, action_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ConfigError(f"rl.environment.name: {name} has observations {obs_space}; tfdl.rl needs a flat Box")
    if isinstance(action_space, gym.spaces.Discrete):
        return EnvSpec(name, int(obs_space.shape[0]), True, int(action_space.n))
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return EnvSpec(name, int(obs_space.shape[0]), False, int(action_space.shape[0]),
                       tuple(float(v) for v in action_space.low), tuple(float(v) for v in action_space.high))
    raise ConfigError(f"rl.environment.name: {name} has actions {action_space}; tfdl.rl needs Discrete or a flat Box")


def make_vector_env(name: str, num_envs: int, *, vectorization: str = "sync", max_episode_steps: int | None = None,
                    reward_shaping: RewardShaping | None = None) -> gym.vector.VectorEnv:
    """`num_envs` copies of an environment stepped together, autoresetting in the same step.

    Args:
        name: a registered Gymnasium id.
        num_envs: number of copies (>= 1).
        vectorization: `sync` (this process) or `async` (one subprocess per copy).
        max_episode_steps: time limit; None keeps the environment's own.
        reward_shaping: optional hook applied in every copy (must pickle for `async`).

    Returns:
        The vector environment (not yet reset).

    Raises:
        ConfigError: unknown environment, unusable spaces, or a bad `vectorization`.
    """
    if vectorization not in ("sync", "async"):
        raise ConfigError(f"rl.environment.vectorization: expected 'sync' or 'async', got {vectorization!r}")
    if num_envs < 1:
        raise ConfigError(f"rl.environment.num_envs: must be >= 1, got {num_envs}")
    make_env(name, max_episode_steps=max_episode_steps).close()  # fail here, with a clear message
    thunks = [
        lambda: make_env(name, max_episode_steps=max_episode_steps, reward_shaping=reward_shaping)
        for _ in range(num_envs)
    ]
    vector_class = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
    return vector_class(thunks, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
