"""Running statistics that standardize observations and scale rewards during training.

`ObservationNormalizer` keeps the running mean and variance of observations
(parallel-variance update, Chan et al.) and maps x to clip((x - mean) /
sqrt(var + eps)); the exported policy bakes the final statistics in, so a
client sends raw observations. `RewardScaler` divides rewards by the running
standard deviation of the discounted return, as in the PPO implementations
that made it standard (it keeps the sign and the ordering of returns, only
their scale changes). Both keep state that a `tf.train.Checkpoint` saves and restores with
the networks (see `RunningMeanStd.store` and `load`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_EPS = 1e-8


class RunningMeanStd(tf.Module):
    """Mean, variance and count of every sample seen, updated a batch at a time.

    The statistics live in numpy (updated every env step, where a variable
    read and write would cost more than the step); `store` copies them into
    the module's variables before a checkpoint is written and `load` copies
    them back after one is restored.

    Args:
        shape: shape of one sample.
        name: module name (for checkpoints).
    """

    def __init__(self, shape: tuple[int, ...], name: str | None = None):
        super().__init__(name=name)
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4
        self.saved_mean = tf.Variable(self.mean, dtype=tf.float64, trainable=False, name="mean")
        self.saved_var = tf.Variable(self.var, dtype=tf.float64, trainable=False, name="var")
        self.saved_count = tf.Variable(self.count, dtype=tf.float64, trainable=False, name="count")

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch (first axis: samples) into the statistics."""
        batch = np.asarray(batch, np.float64)
        batch_mean, batch_var, batch_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        total = self.count + batch_count
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean = self.mean + delta * batch_count / total
        self.var = m2 / total
        self.count = total

    def store(self) -> None:
        """Copy the statistics into the variables a checkpoint saves."""
        self.saved_mean.assign(self.mean)
        self.saved_var.assign(self.var)
        self.saved_count.assign(self.count)

    def load(self) -> None:
        """Take the statistics from the variables (after a checkpoint restore)."""
        self.mean = self.saved_mean.numpy()
        self.var = self.saved_var.numpy()
        self.count = float(self.saved_count.numpy())


class ObservationNormalizer(tf.Module):
    """Standardizes observations with running statistics; identity when disabled.

    Args:
        obs_dim: length of an observation.
        enabled: False makes `normalize` the identity (and `update` a no-op).
        clip: bound of the standardized values.
    """

    def __init__(self, obs_dim: int, enabled: bool = True, clip: float = 10.0):
        super().__init__(name="observation_normalizer")
        self.enabled = enabled
        self.clip = float(clip)
        self.stats = RunningMeanStd((obs_dim,), name="observation_stats")

    def update(self, observations: np.ndarray) -> None:
        """Fold a batch of raw observations into the statistics (when enabled)."""
        if self.enabled:
            self.stats.update(observations)

    def normalize(self, observations: np.ndarray) -> np.ndarray:
        """Raw observations -> float32 standardized ones (unchanged when disabled)."""
        observations = np.asarray(observations, np.float32)
        if not self.enabled:
            return observations
        mean, scale = self.affine()
        return np.clip((observations - mean) / scale, -self.clip, self.clip).astype(np.float32)

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, scale) as float32 arrays such that normalized = (x - mean) / scale; (0, 1) when disabled."""
        if not self.enabled:
            dim = self.stats.mean.shape[0]
            return np.zeros(dim, np.float32), np.ones(dim, np.float32)
        return self.stats.mean.astype(np.float32), np.sqrt(self.stats.var + _EPS).astype(np.float32)


class RewardScaler(tf.Module):
    """Divides rewards by the running std of each copy's discounted return.

    Args:
        num_envs: copies of the vector environment.
        gamma: discount of the return whose spread sets the scale.
        enabled: False makes `scale` the identity.
        clip: bound of the scaled rewards.
    """

    def __init__(self, num_envs: int, gamma: float, enabled: bool = True, clip: float = 10.0):
        super().__init__(name="reward_scaler")
        self.enabled = enabled
        self.gamma = gamma
        self.clip = clip
        self.stats = RunningMeanStd((), name="return_stats")
        self._returns = np.zeros(num_envs, np.float64)

    def scale(self, rewards: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
        """Scale one vector step's rewards, then forget the return of copies whose episode ended.

        Args:
            rewards: shape (num_envs,).
            episode_ends: bool (num_envs,), terminated or truncated.

        Returns:
            float32 scaled rewards (the rewards themselves when disabled).
        """
        rewards = np.asarray(rewards, np.float64)
        if not self.enabled:
            return rewards.astype(np.float32)
        self._returns = self._returns * self.gamma + rewards
        self.stats.update(self._returns)
        scaled = rewards / np.sqrt(float(self.stats.var) + _EPS)
        self._returns[np.asarray(episode_ends, bool)] = 0.0
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)
