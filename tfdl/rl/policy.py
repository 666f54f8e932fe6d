"""The actor-critic policy shared by REINFORCE, A2C and PPO: a network plus its action distribution.

`ActorCriticPolicy` wraps a categorical (`build_actor_critic`) or Gaussian
(`build_gaussian_actor_critic`) model with the functions every
policy-gradient agent needs: a compiled acting step that samples actions,
the log-probability / entropy / value of given actions for the losses, and
the deterministic outputs the exported policy serves.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfdl.rl import distributions as dist
from tfdl.rl.environments import EnvSpec
from tfdl.rl.networks import build_actor_critic, build_gaussian_actor_critic


class ActorCriticPolicy(tf.Module):
    """A stochastic policy and a value function over normalized observations.

    Args:
        spec: the environment's `EnvSpec` (discrete -> categorical, else Gaussian).
        hidden_units: widths of the actor's and the critic's MLPs.
        log_std_init: starting log std of a Gaussian policy.
        seed: seeds the action sampling.
    """

    def __init__(self, spec: EnvSpec, hidden_units, log_std_init: float = 0.0, seed: int = 0):
        super().__init__(name="policy")
        self.spec = spec
        self.discrete = spec.discrete
        if spec.discrete:
            self.model = build_actor_critic(spec.obs_dim, spec.num_actions, hidden_units)
        else:
            self.model = build_gaussian_actor_critic(spec.obs_dim, spec.num_actions, hidden_units, log_std_init)
        self.generator = tf.random.Generator.from_seed(seed)
        self.act = tf.function(self._act, input_signature=[tf.TensorSpec((None, spec.obs_dim), tf.float32)])

    def _act(self, observations):
        out = self.model({"observation": observations})
        if self.discrete:
            actions = dist.categorical_sample(out["logits"], self.generator)
            log_probs = dist.categorical_log_prob(out["logits"], actions)
        else:
            actions = dist.gaussian_sample(out["mean"], out["log_std"], self.generator)
            log_probs = dist.gaussian_log_prob(out["mean"], out["log_std"], actions)
        return actions, log_probs, out["value"][:, 0]

    def evaluate(self, observations, actions):
        """(log_probs, entropy, values) of `actions` in `observations`; traced inside the agents' updates."""
        out = self.model({"observation": observations})
        if self.discrete:
            return (dist.categorical_log_prob(out["logits"], actions), dist.categorical_entropy(out["logits"]),
                    out["value"][:, 0])
        return (dist.gaussian_log_prob(out["mean"], out["log_std"], actions), dist.gaussian_entropy(out["log_std"]),
                out["value"][:, 0])

    def value(self, observations) -> np.ndarray:
        """V(s) of a batch of normalized observations, as numpy."""
        return self.model({"observation": tf.convert_to_tensor(observations, tf.float32)})["value"][:, 0].numpy()

    def deterministic_outputs(self, observations) -> dict:
        """What the exported policy serves: the greedy or mean `action` and `logits` or `mean`."""
        out = self.model({"observation": observations})
        if self.discrete:
            return {"action": tf.argmax(out["logits"], axis=-1), "logits": out["logits"]}
        low = tf.constant(self.spec.action_low, tf.float32)
        high = tf.constant(self.spec.action_high, tf.float32)
        return {"action": tf.clip_by_value(out["mean"], low, high), "mean": out["mean"]}

    def trackables(self) -> dict:
        """What a checkpoint must hold of the policy."""
        return {"policy_model": self.model, "policy_generator": self.generator}
