"""Steps a vector environment for an agent and keeps the books: normalization, reward scale, episodes.

`EnvRunner` owns the current observations, the running observation and
reward statistics, each copy's running episode return and length, the list
of finished episodes (env step, return, length) that the learning curve is
drawn from, and the count of environment steps taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from tfdl.rl.environments import EnvSpec
from tfdl.rl.normalization import ObservationNormalizer, RewardScaler


@dataclass
class Transition:
    """One vector step. Observations are raw (unnormalized); shapes lead with num_envs.

    Attributes:
        observations: the states acted in.
        actions: the actions the agent chose (before clipping to the bounds).
        rewards: scaled rewards (the environment's when scaling is off).
        next_observations: the true next states (the final state where an episode ended).
        terminated, truncated: bool flags of the step.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


class EnvRunner:
    """Runs a vector environment and records finished episodes.

    Args:
        envs: a vector environment in same-step autoreset mode (`make_vector_env`).
        spec: its `EnvSpec`.
        normalizer: observation statistics, updated with every new observation.
        reward_scaler: reward scale, updated every step.
        seed: copy i starts from `reset(seed=seed + i)`; never reseeded after.
    """

    def __init__(self, envs: gym.vector.VectorEnv, spec: EnvSpec, normalizer: ObservationNormalizer,
                 reward_scaler: RewardScaler, seed: int):
        self.envs = envs
        self.spec = spec
        self.num_envs = envs.num_envs
        self.normalizer = normalizer
        self.reward_scaler = reward_scaler
        self.observations, _ = envs.reset(seed=seed)
        self.observations = self.observations.astype(np.float32)
        normalizer.update(self.observations)
        self.steps = 0
        self.episodes: list[tuple[int, float, int]] = []
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, np.int64)

    def normalized_observations(self) -> np.ndarray:
        """The current observations, standardized with the current statistics."""
        return self.normalizer.normalize(self.observations)

    def step(self, actions: np.ndarray) -> Transition:
        """Apply one action per copy (continuous ones clipped to the bounds) and book the result."""
        env_actions = actions
        if not self.spec.discrete:
            env_actions = np.clip(actions, self.spec.action_low, self.spec.action_high)
        observations, rewards, terminated, truncated, info = self.envs.step(env_actions)
        observations = observations.astype(np.float32)
        done = terminated | truncated
        next_observations = observations.copy()
        if done.any():
            for i in np.flatnonzero(done):
                next_observations[i] = info["final_obs"][i]
        self._returns += rewards
        self._lengths += 1
        self.steps += self.num_envs
        for i in np.flatnonzero(done):
            self.episodes.append((self.steps, float(self._returns[i]), int(self._lengths[i])))
        self._returns[done] = 0.0
        self._lengths[done] = 0
        transition = Transition(self.observations, actions, self.reward_scaler.scale(rewards, done),
                                next_observations, terminated, truncated)
        self.observations = observations
        self.normalizer.update(observations)
        return transition

    def close(self) -> None:
        """Close the vector environment (ends the subprocesses of an async one)."""
        self.envs.close()
