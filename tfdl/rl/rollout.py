"""Collects an on-policy rollout of n_steps per env copy for A2C and PPO, with GAE already applied.

Observations are stored normalized with the statistics of the moment they
were seen (the ones the policy acted on). The critic values the true next
state of every step in one batched call, which gives both the bootstrap at
the rollout's end and the value of a time-limit-truncated episode's final
state.
"""

from __future__ import annotations

import numpy as np

from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.policy import ActorCriticPolicy
from tfdl.rl.returns import generalized_advantages


def collect_rollout(runner: EnvRunner, policy: ActorCriticPolicy, n_steps: int, gamma: float,
                    gae_lambda: float) -> dict[str, np.ndarray]:
    """Act `n_steps` vector steps with the policy's sampled actions and compute advantages.

    Args:
        runner: the environment runner (its statistics are updated as it goes).
        policy: the acting policy.
        n_steps: vector steps to take.
        gamma: discount.
        gae_lambda: GAE lambda.

    Returns:
        Flat arrays of n_steps x num_envs rows: observations, actions, log_probs, values,
        advantages, returns.
    """
    keys = ("observations", "actions", "log_probs", "values", "rewards", "next_observations", "terminated", "truncated")
    rollout = {key: [] for key in keys}
    for _ in range(n_steps):
        observations = runner.normalized_observations()
        actions, log_probs, values = (t.numpy() for t in policy.act(observations))
        step = runner.step(actions)
        for key, value in (("observations", observations), ("actions", actions), ("log_probs", log_probs),
                           ("values", values), ("rewards", step.rewards),
                           ("next_observations", runner.normalizer.normalize(step.next_observations)),
                           ("terminated", step.terminated), ("truncated", step.truncated)):
            rollout[key].append(value)
    arrays = {key: np.stack(value) for key, value in rollout.items()}
    next_obs = arrays.pop("next_observations")
    next_values = policy.value(next_obs.reshape(-1, next_obs.shape[-1])).reshape(arrays["values"].shape)
    advantages, returns = generalized_advantages(arrays["rewards"], arrays["values"], next_values,
                                                 arrays["terminated"], arrays["truncated"], gamma, gae_lambda)
    return {
        "observations": _flatten(arrays["observations"]).astype(np.float32),
        "actions": _flatten(arrays["actions"]),
        "log_probs": _flatten(arrays["log_probs"]).astype(np.float32),
        "values": _flatten(arrays["values"]).astype(np.float32),
        "advantages": _flatten(advantages),
        "returns": _flatten(returns),
    }


def _flatten(array: np.ndarray) -> np.ndarray:
    """(time, env, ...) -> (time * env, ...)."""
    return array.reshape(-1, *array.shape[2:])
