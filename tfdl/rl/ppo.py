"""Proximal policy optimization (Schulman et al., 2017): clipped surrogate, GAE, value clipping.

Each iteration collects n_steps x num_envs transitions, then runs `epochs`
passes of `minibatches` shuffled minibatches over them. The whole update, all
epochs and minibatches, is one compiled `tf.function`, so Python is entered
once per rollout. Works for categorical and Gaussian policies alike.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfdl.rl.agent import Agent
from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import EnvSpec
from tfdl.rl.policy import ActorCriticPolicy
from tfdl.rl.rollout import collect_rollout


def ppo_clipped_loss(log_probs, old_log_probs, advantages, clip_range):
    """The negated clipped surrogate objective, -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)).

    Args:
        log_probs: log pi(a|s) under the policy being updated, (batch,).
        old_log_probs: log pi_old(a|s) under the policy that acted, (batch,).
        advantages: advantage estimates, (batch,).
        clip_range: epsilon.

    Returns:
        A scalar tensor to minimize.
    """
    ratio = tf.exp(log_probs - old_log_probs)
    clipped = tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))


def clipped_value_loss(values, old_values, returns, clip_range_value=None):
    """Half the squared error of the value, pessimistic over the clipped one when clipping.

    With clipping, v_clip = old + clip(v - old, -c, c) and the loss is
    0.5 * mean(max((v - R)^2, (v_clip - R)^2)); without, 0.5 * mean((v - R)^2).

    Args:
        values: new values, (batch,).
        old_values: values at collection time, (batch,).
        returns: value targets, (batch,).
        clip_range_value: c, or None for no clipping.

    Returns:
        A scalar tensor.
    """
    error = tf.square(values - returns)
    if clip_range_value is not None:
        clipped = old_values + tf.clip_by_value(values - old_values, -clip_range_value, clip_range_value)
        error = tf.maximum(error, tf.square(clipped - returns))
    return 0.5 * tf.reduce_mean(error)


class PPOAgent(Agent):
    """PPO with a `ActorCriticPolicy` (see the module docstring); config: `PPOConfig`."""

    def __init__(self, config, spec: EnvSpec, total_steps: int, seed: int):
        super().__init__(config, spec, total_steps, seed)
        self.policy = ActorCriticPolicy(spec, config.hidden_units, config.log_std_init, seed)
        self.acting_model = self.policy.model
        self.optimizer.build(self.policy.model.trainable_variables)
        self.shuffle = tf.random.Generator.from_seed(seed + 1)
        self._update = tf.function(self._update_all)

    def iterate(self, runner: EnvRunner) -> dict[str, float]:
        """One rollout and `epochs` x `minibatches` gradient steps."""
        c = self.config
        learning_rate = self.anneal_learning_rate(runner)
        clip_range = c.clip_range * (1.0 - self.progress(runner) if c.anneal_clip_range else 1.0)
        batch = collect_rollout(runner, self.policy, c.n_steps, c.gamma, c.gae_lambda)
        tensors = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
        metrics = self._update(tensors, tf.constant(max(clip_range, 1e-8), tf.float32))
        self.updates.assign_add(c.epochs * c.minibatches)
        out = {k: float(v) for k, v in metrics.items()}
        out["learning_rate"] = learning_rate
        explained = 1.0 - np.var(batch["returns"] - batch["values"]) / max(np.var(batch["returns"]), 1e-8)
        out["explained_variance"] = float(explained)
        return out

    def _minibatch_step(self, batch, clip_range):
        c = self.config
        with tf.GradientTape() as tape:
            log_probs, entropy, values = self.policy.evaluate(batch["observations"], batch["actions"])
            advantages = batch["advantages"]
            if c.normalize_advantages:
                advantages = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
            policy_loss = ppo_clipped_loss(log_probs, batch["log_probs"], advantages, clip_range)
            value_loss = clipped_value_loss(values, batch["values"], batch["returns"], c.clip_range_value)
            entropy = tf.reduce_mean(entropy)
            loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        variables = self.policy.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        log_ratio = log_probs - batch["log_probs"]
        approx_kl = tf.reduce_mean(tf.exp(log_ratio) - 1.0 - log_ratio)
        clip_fraction = tf.reduce_mean(tf.cast(tf.abs(tf.exp(log_ratio) - 1.0) > clip_range, tf.float32))
        return tf.stack([policy_loss, value_loss, entropy, approx_kl, clip_fraction])

    def _update_all(self, batch, clip_range):
        c = self.config
        rows = tf.shape(batch["observations"])[0]
        size = rows // c.minibatches
        totals = tf.zeros(5)
        for _ in tf.range(c.epochs):
            order = tf.argsort(self.shuffle.uniform([rows]))
            for i in tf.range(c.minibatches):
                index = order[i * size:(i + 1) * size]
                minibatch = {k: tf.gather(v, index) for k, v in batch.items()}
                totals += self._minibatch_step(minibatch, clip_range)
        means = totals / float(c.epochs * c.minibatches)
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        return {name: means[i] for i, name in enumerate(names)}

    def policy_outputs(self, observations):
        """Greedy (argmax) or mean action plus logits or mean."""
        return self.policy.deterministic_outputs(observations)

    def trackables(self) -> dict:
        """Policy, optimizer, random generators and the update counter."""
        return {**self.policy.trackables(), "optimizer": self.optimizer, "shuffle": self.shuffle,
                "updates": self.updates}
