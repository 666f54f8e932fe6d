"""Deep Q-learning: replay (uniform or prioritized), target network (hard or Polyak), double and dueling.

Each iteration takes one vector step (random actions until
`learning_starts`, then epsilon-greedy or Boltzmann over Q), stores raw
observations in the replay buffer (normalized when sampled, with the current
statistics), and every `train_every` env steps runs `gradient_steps`
compiled updates on the loss

    y = r + gamma (1 - terminated) Q_target(s', argmax_a Q(s', a))   (double)
    y = r + gamma (1 - terminated) max_a Q_target(s', a)             (plain)
    loss = mean(w * huber(Q(s, a) - y))

with importance weights w from prioritized replay (1 otherwise), whose
priorities become |Q(s, a) - y|.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfdl.rl.agent import Agent
from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import EnvSpec
from tfdl.rl.networks import build_q_network
from tfdl.rl.replay import PrioritizedReplayBuffer, ReplayBuffer


def dqn_targets(rewards, terminated, next_q_online, next_q_target, gamma: float, double: bool):
    """Bootstrapped TD targets of a batch (see the module docstring).

    Args:
        rewards, terminated: (batch,) float.
        next_q_online: Q(s', .) of the online network, (batch, num_actions).
        next_q_target: Q(s', .) of the target network, (batch, num_actions).
        gamma: discount.
        double: choose a' with the online network (double DQN) rather than the target.

    Returns:
        (batch,) targets.
    """
    if double:
        chosen = tf.argmax(next_q_online, axis=-1, output_type=tf.int32)
        next_value = tf.gather(next_q_target, chosen, axis=1, batch_dims=1)
    else:
        next_value = tf.reduce_max(next_q_target, axis=-1)
    return rewards + gamma * (1.0 - terminated) * next_value


class DQNAgent(Agent):
    """DQN (see the module docstring); config: `DQNConfig`. Needs discrete actions."""

    def __init__(self, config, spec: EnvSpec, total_steps: int, seed: int):
        super().__init__(config, spec, total_steps, seed)
        if not spec.discrete:
            raise ValueError(f"dqn needs discrete actions; {spec.name} has continuous ones (use ppo)")
        self.q_network = build_q_network(spec.obs_dim, spec.num_actions, config.hidden_units, config.dueling)
        self.target_network = build_q_network(spec.obs_dim, spec.num_actions, config.hidden_units, config.dueling,
                                              name="target_q_network")
        self.target_network.set_weights(self.q_network.get_weights())
        self.acting_model = self.q_network
        self.optimizer.build(self.q_network.trainable_variables)
        self.generator = tf.random.Generator.from_seed(seed)
        buffer_class = PrioritizedReplayBuffer if config.prioritized else ReplayBuffer
        extra = {"alpha": config.alpha} if config.prioritized else {}
        self.replay = buffer_class(config.buffer_size, spec.obs_dim, seed=seed, **extra)
        self._random_actions = np.random.default_rng(seed)
        self._loss = keras.losses.Huber(reduction=None) if config.loss == "huber" else None
        self.act = tf.function(self._act, input_signature=[tf.TensorSpec((None, spec.obs_dim), tf.float32),
                                                           tf.TensorSpec((), tf.float32)])
        self._train = tf.function(self._train_step)
        self._train_many = tf.function(self._train_many_steps)
        self.last_losses: dict[str, float] = {}

    def epsilon(self, runner: EnvRunner) -> float:
        """Exploration rate at the run's progress: linear from start to end over epsilon_fraction."""
        c = self.config
        fraction = min(1.0, self.progress(runner) / c.epsilon_fraction)
        return c.epsilon_start + fraction * (c.epsilon_end - c.epsilon_start)

    def _act(self, observations, epsilon):
        q_values = self.q_network({"observation": observations})["q_values"]
        if self.config.exploration == "boltzmann":
            noise = -tf.math.log(-tf.math.log(self.generator.uniform(tf.shape(q_values), 1e-12, 1.0)))
            return tf.argmax(q_values / self.config.temperature + noise, axis=-1)
        batch = tf.shape(q_values)[0]
        random = self.generator.uniform([batch], 0, self.spec.num_actions, dtype=tf.int64)
        explore = self.generator.uniform([batch]) < epsilon
        return tf.where(explore, random, tf.argmax(q_values, axis=-1))

    def iterate(self, runner: EnvRunner) -> dict[str, float]:
        """One vector step, and a training round when its turn comes."""
        c = self.config
        learning_rate = self.anneal_learning_rate(runner)
        epsilon = self.epsilon(runner)
        before = runner.steps
        if runner.steps < c.learning_starts:
            actions = self._random_actions.integers(0, self.spec.num_actions, runner.num_envs)
        else:
            actions = self.act(runner.normalized_observations(), tf.constant(epsilon, tf.float32)).numpy()
        step = runner.step(actions)
        self.replay.add(step.observations, step.actions, step.rewards, step.next_observations, step.terminated)
        metrics = {"epsilon": epsilon, "learning_rate": learning_rate}
        rounds = runner.steps // c.train_every - before // c.train_every
        if runner.steps >= c.learning_starts and rounds > 0:
            self.last_losses = self._train_round(runner, rounds * c.gradient_steps)
        if c.target_update == "hard" and runner.steps // c.target_update_every > before // c.target_update_every:
            self._copy_to_target()
        return {**metrics, **self.last_losses}

    def _train_round(self, runner: EnvRunner, steps: int) -> dict[str, float]:
        c = self.config
        beta = c.beta + (1.0 - c.beta) * self.progress(runner)
        if not c.prioritized:
            # Uniform batches do not depend on the updates, so all are drawn at once and the
            # round runs as one compiled loop instead of `steps` Python calls.
            batches = [self.replay.sample(c.batch_size) for _ in range(steps)]
            stacked = {k: np.stack([self._feed(runner, b)[k] for b in batches]) for k in self._FEED_KEYS}
            loss, q_mean = self._train_many({k: tf.convert_to_tensor(v) for k, v in stacked.items()})
            return {"loss": float(loss), "q_mean": float(q_mean)}
        losses, q_means = [], []
        for _ in range(steps):
            batch = self.replay.sample(c.batch_size, beta)
            loss, td_errors, q_mean = self._train({k: tf.convert_to_tensor(v)
                                                   for k, v in self._feed(runner, batch).items()})
            self.replay.update_priorities(batch["indices"], td_errors.numpy())
            losses.append(float(loss))
            q_means.append(float(q_mean))
        return {"loss": float(np.mean(losses)), "q_mean": float(np.mean(q_means))}

    _FEED_KEYS = ("observations", "next_observations", "actions", "rewards", "terminated", "weights")

    @staticmethod
    def _feed(runner: EnvRunner, batch: dict) -> dict[str, np.ndarray]:
        return {
            "observations": runner.normalizer.normalize(batch["observations"]),
            "next_observations": runner.normalizer.normalize(batch["next_observations"]),
            "actions": batch["actions"], "rewards": batch["rewards"], "terminated": batch["terminated"],
            "weights": batch["weights"],
        }

    def _train_many_steps(self, stacked):
        steps = tf.shape(stacked["rewards"])[0]
        totals = tf.zeros(2)
        for i in tf.range(steps):
            loss, _, q_mean = self._train_step({k: v[i] for k, v in stacked.items()})
            totals += tf.stack([loss, q_mean])
        return totals[0] / tf.cast(steps, tf.float32), totals[1] / tf.cast(steps, tf.float32)

    def _train_step(self, batch):
        c = self.config
        next_online = self.q_network({"observation": batch["next_observations"]})["q_values"]
        next_target = self.target_network({"observation": batch["next_observations"]})["q_values"]
        targets = tf.stop_gradient(dqn_targets(batch["rewards"], batch["terminated"], next_online, next_target,
                                               c.gamma, c.double))
        variables = self.q_network.trainable_variables
        with tf.GradientTape() as tape:
            q_values = self.q_network({"observation": batch["observations"]})["q_values"]
            chosen = tf.gather(q_values, tf.cast(batch["actions"], tf.int32), axis=1, batch_dims=1)
            td_errors = chosen - targets
            if self._loss is not None:
                per_example = self._loss(targets[:, None], chosen[:, None])
            else:
                per_example = tf.square(td_errors)
            loss = tf.reduce_mean(batch["weights"] * per_example)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.updates.assign_add(1)
        if c.target_update == "soft":
            self._soft_update_target()
        return loss, td_errors, tf.reduce_mean(chosen)

    def _soft_update_target(self):
        tau = self.config.tau
        for target, online in zip(self.target_network.variables, self.q_network.variables):
            target.assign(tau * online + (1.0 - tau) * target)

    def _copy_to_target(self):
        for target, online in zip(self.target_network.variables, self.q_network.variables):
            target.assign(online)

    def policy_outputs(self, observations):
        """Greedy action (argmax Q) and the Q-values."""
        q_values = self.q_network({"observation": observations})["q_values"]
        return {"action": tf.argmax(q_values, axis=-1), "q_values": q_values}

    def trackables(self) -> dict:
        """Both networks, optimizer, random generator and the update counter."""
        return {"q_network": self.q_network, "target_network": self.target_network, "optimizer": self.optimizer,
                "generator": self.generator, "updates": self.updates}
