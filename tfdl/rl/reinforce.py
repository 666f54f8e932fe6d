"""REINFORCE (Williams, 1992) with a learned state-value baseline.

Each iteration plays one complete episode in every copy of the vector
environment (a copy that finishes early waits, its later steps unused), so
the returns G_t are true Monte-Carlo returns of the current policy (a
time-limit truncation is bootstrapped from the critic). The update is
-mean(log pi(a|s) (G - V(s))) + value_coef * 0.5 mean((V - G)^2) - entropy_coef
* entropy, one compiled gradient step per iteration.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfdl.rl.a2c import A2CAgent
from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import EnvSpec
from tfdl.rl.returns import discounted_returns


class ReinforceAgent(A2CAgent):
    """REINFORCE with baseline over an `ActorCriticPolicy`; config: `ReinforceConfig`.

    The update is A2C's (`actor_critic_loss`); what differs is the data: whole
    episodes with Monte Carlo returns instead of n-step rollouts with GAE.
    """

    def __init__(self, config, spec: EnvSpec, total_steps: int, seed: int):
        super().__init__(config, spec, total_steps, seed)
        # Episodes differ in length: one trace for every batch size.
        self._update = tf.function(self._update_step, reduce_retracing=True)

    def iterate(self, runner: EnvRunner) -> dict[str, float]:
        """One episode per copy, then one gradient step on their steps."""
        c = self.config
        learning_rate = self.anneal_learning_rate(runner)
        observations, actions, rewards, terminated, truncated, next_obs = [], [], [], [], [], []
        active = np.ones(runner.num_envs, bool)
        masks = []
        while active.any():
            obs = runner.normalized_observations()
            sampled, _, _ = self.policy.act(obs)
            step = runner.step(sampled.numpy())
            for store, value in ((observations, obs), (actions, sampled.numpy()), (rewards, step.rewards),
                                 (terminated, step.terminated), (truncated, step.truncated),
                                 (next_obs, runner.normalizer.normalize(step.next_observations))):
                store.append(value)
            masks.append(active.copy())
            active &= ~(step.terminated | step.truncated)
        mask = np.stack(masks)
        next_obs = np.stack(next_obs)
        truncated = np.stack(truncated)
        next_values = np.zeros(mask.shape, np.float32)
        if truncated.any():
            next_values = self.policy.value(next_obs.reshape(-1, next_obs.shape[-1])).reshape(mask.shape)
        returns = discounted_returns(np.stack(rewards), np.stack(terminated), truncated, c.gamma, next_values)
        values = self.policy.value(np.stack(observations)[mask])
        batch = {"observations": np.stack(observations)[mask], "actions": np.stack(actions)[mask],
                 "returns": returns[mask], "advantages": returns[mask] - values}
        metrics = self._update({k: tf.convert_to_tensor(v) for k, v in batch.items()})
        self.updates.assign_add(1)
        return {**{k: float(v) for k, v in metrics.items()}, "learning_rate": learning_rate}
