"""Discounted returns and generalized advantage estimation over a rollout.

Arrays are time-major, shape (T,) or (T, num_envs). Step t holds reward r_t,
the flags `terminated[t]` (the episode really ended: no value after it) and
`truncated[t]` (a time limit cut it: the state after it still has a value),
and `next_values[t]`, the critic's V of the true next state (the final
observation where the episode ended). So

    delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},  done = terminated | truncated

and the last step of the rollout bootstraps from `next_values` (Schulman et
al., 2016). A truncated episode is therefore valued as if it went on, and no
advantage leaks across an episode boundary.
"""

from __future__ import annotations

import numpy as np


def _check(rewards: np.ndarray, **others: np.ndarray | None) -> None:
    for name, value in others.items():
        if value is not None and np.shape(value) != np.shape(rewards):
            raise ValueError(f"{name} has shape {np.shape(value)}; it must match rewards {np.shape(rewards)}")


def discounted_returns(rewards, terminated, truncated, gamma: float, next_values=None) -> np.ndarray:
    """Discounted sums of rewards to the end of each episode, G_t = r_t + gamma G_{t+1}.

    Args:
        rewards: float (T,) or (T, N).
        terminated: bool, same shape: episode ended at t, nothing follows.
        truncated: bool, same shape: episode cut at t, bootstrap with `next_values[t]`.
        gamma: discount in (0, 1].
        next_values: V of the next state, same shape; read only where the sum must be
            bootstrapped (a truncated step, or the rollout's last step when its episode
            goes on). None: 0 there (pure Monte-Carlo).

    Returns:
        float32 returns of the shape of `rewards`.

    Raises:
        ValueError: shapes differ, or gamma outside (0, 1].
    """
    rewards = np.asarray(rewards, np.float64)
    _check(rewards, terminated=terminated, truncated=truncated, next_values=next_values)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    terminated = np.asarray(terminated, bool)
    truncated = np.asarray(truncated, bool) & ~terminated
    next_values = np.zeros_like(rewards) if next_values is None else np.asarray(next_values, np.float64)
    returns = np.zeros_like(rewards)
    following = np.where(terminated[-1], 0.0, next_values[-1])
    for t in reversed(range(len(rewards))):
        continuing = ~(terminated[t] | truncated[t])
        following = np.where(continuing, following, np.where(truncated[t], next_values[t], 0.0))
        returns[t] = rewards[t] + gamma * following
        following = returns[t]
    return returns.astype(np.float32)


def generalized_advantages(rewards, values, next_values, terminated, truncated, gamma: float,
                           gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """GAE(gamma, lambda) advantages and the value targets (advantages + values).

    Args:
        rewards: float (T,) or (T, N).
        values: V(s_t), same shape.
        next_values: V of the true next state of each step, same shape.
        terminated: bool, same shape: no value after step t.
        truncated: bool, same shape: episode cut at t (value after it kept, recursion cut).
        gamma: discount in (0, 1].
        gae_lambda: in [0, 1]; 1 gives Monte-Carlo advantages, 0 one-step TD errors.

    Returns:
        (advantages, returns), float32, the shape of `rewards`.

    Raises:
        ValueError: shapes differ, or gamma / gae_lambda out of range.
    """
    rewards = np.asarray(rewards, np.float64)
    _check(rewards, values=values, next_values=next_values, terminated=terminated, truncated=truncated)
    if not 0.0 < gamma <= 1.0 or not 0.0 <= gae_lambda <= 1.0:
        raise ValueError(f"need gamma in (0, 1] and gae_lambda in [0, 1], got {gamma} and {gae_lambda}")
    values = np.asarray(values, np.float64)
    terminated = np.asarray(terminated, bool)
    done = terminated | np.asarray(truncated, bool)
    deltas = rewards + gamma * np.where(terminated, 0.0, np.asarray(next_values, np.float64)) - values
    advantages = np.zeros_like(rewards)
    following = np.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        following = deltas[t] + gamma * gae_lambda * np.where(done[t], 0.0, following)
        advantages[t] = following
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)
