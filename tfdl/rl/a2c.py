"""Synchronous advantage actor-critic (A2C) with generalized advantage estimation.

Each iteration collects n_steps x num_envs transitions and takes one gradient
step on policy loss -mean(log pi(a|s) A) + value_coef * 0.5 mean((V - R)^2)
- entropy_coef * entropy; the step is a compiled `tf.function`.
"""

from __future__ import annotations

import tensorflow as tf

from tfdl.rl.agent import Agent
from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import EnvSpec
from tfdl.rl.policy import ActorCriticPolicy
from tfdl.rl.rollout import collect_rollout


def actor_critic_loss(policy: ActorCriticPolicy, batch: dict, value_coef: float, entropy_coef: float,
                      normalize_advantages: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(total, policy, value, entropy) loss of a batch with `advantages` and `returns` (traced code).

    Args:
        policy: the actor-critic policy.
        batch: tensors `observations`, `actions`, `advantages`, `returns`.
        value_coef: weight of the value loss.
        entropy_coef: weight of the entropy bonus.
        normalize_advantages: standardize the advantages over the batch.

    Returns:
        The total loss and its three parts (entropy as a mean, not negated).
    """
    log_probs, entropy, values = policy.evaluate(batch["observations"], batch["actions"])
    advantages = batch["advantages"]
    if normalize_advantages:
        advantages = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
    policy_loss = -tf.reduce_mean(log_probs * tf.stop_gradient(advantages))
    value_loss = 0.5 * tf.reduce_mean(tf.square(values - batch["returns"]))
    entropy = tf.reduce_mean(entropy)
    return policy_loss + value_coef * value_loss - entropy_coef * entropy, policy_loss, value_loss, entropy


class A2CAgent(Agent):
    """A2C with an `ActorCriticPolicy`; config: `A2CConfig`."""

    def __init__(self, config, spec: EnvSpec, total_steps: int, seed: int):
        super().__init__(config, spec, total_steps, seed)
        self.policy = ActorCriticPolicy(spec, config.hidden_units, config.log_std_init, seed)
        self.acting_model = self.policy.model
        self.optimizer.build(self.policy.model.trainable_variables)
        self._update = tf.function(self._update_step)

    def iterate(self, runner: EnvRunner) -> dict[str, float]:
        """One rollout of n_steps per copy and one gradient step."""
        c = self.config
        learning_rate = self.anneal_learning_rate(runner)
        batch = collect_rollout(runner, self.policy, c.n_steps, c.gamma, c.gae_lambda)
        metrics = self._update({k: tf.convert_to_tensor(v) for k, v in batch.items()})
        self.updates.assign_add(1)
        return {**{k: float(v) for k, v in metrics.items()}, "learning_rate": learning_rate}

    def _update_step(self, batch):
        c = self.config
        variables = self.policy.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, policy_loss, value_loss, entropy = actor_critic_loss(
                self.policy, batch, c.value_coef, c.entropy_coef, c.normalize_advantages)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def policy_outputs(self, observations):
        """Greedy (argmax) or mean action plus logits or mean."""
        return self.policy.deterministic_outputs(observations)

    def trackables(self) -> dict:
        """Policy, optimizer, random generator and the update counter."""
        return {**self.policy.trackables(), "optimizer": self.optimizer, "updates": self.updates}
