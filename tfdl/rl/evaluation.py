"""Evaluates a policy over N episodes whose seeds were never used in training.

Episode k starts from `reset(seed=eval_seed + k)` of a fresh, unshaped
environment; copies are stepped together in a vector environment and each
copy counts only its first episode, so all N episodes are complete and
every seed is used exactly once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tfdl.rl.environments import env_spec, make_env, make_vector_env

_MAX_COPIES = 50


def evaluate_policy(act: Callable[[np.ndarray], np.ndarray], env_name: str, episodes: int, seed: int,
                    max_episode_steps: int | None = None) -> np.ndarray:
    """Undiscounted returns of `episodes` episodes played with `act`.

    Args:
        act: raw observations (batch, obs_dim) -> actions (batch,) or (batch, action_dim).
        env_name: the Gymnasium id.
        episodes: how many episodes (>= 1).
        seed: episode k uses seed + k.
        max_episode_steps: time limit; None keeps the environment's own (evaluation
            needs a finite one).

    Returns:
        float64 returns, one per episode, in seed order.

    Raises:
        ValueError: episodes < 1, or the environment has no time limit.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    probe = make_env(env_name, max_episode_steps=max_episode_steps)
    spec = env_spec(probe)
    if probe.spec is None or (max_episode_steps or probe.spec.max_episode_steps) is None:
        raise ValueError(f"{env_name} has no time limit; set rl.environment.max_episode_steps to evaluate it")
    probe.close()
    returns = []
    for start in range(0, episodes, _MAX_COPIES):
        count = min(_MAX_COPIES, episodes - start)
        envs = make_vector_env(env_name, count, max_episode_steps=max_episode_steps)
        observations, _ = envs.reset(seed=seed + start)
        totals = np.zeros(count)
        running = np.ones(count, bool)
        while running.any():
            actions = np.asarray(act(observations.astype(np.float32)))
            if not spec.discrete:
                actions = np.clip(actions, spec.action_low, spec.action_high)
            observations, rewards, terminated, truncated, _ = envs.step(actions)
            totals += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        envs.close()
        returns.append(totals)
    return np.concatenate(returns)
