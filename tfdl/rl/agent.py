"""What every agent is to the training loop: one iteration of acting and learning, and its state.

`run_agent` drives any `Agent` the same way: `iterate(runner)` until the step
budget is spent, `trackables()` into a checkpoint, `policy_outputs` into the
exported policy. The base class owns the optimizer (Adam with global-norm
clipping), the linear learning-rate annealing and the counters a resumed run
continues from.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfdl.rl.env_runner import EnvRunner
from tfdl.rl.environments import EnvSpec


class Agent(tf.Module):
    """Base of `DQNAgent`, `ReinforceAgent`, `A2CAgent` and `PPOAgent`.

    Subclasses set `acting_model`, the Keras model `policy_outputs` calls (what is exported).

    Args:
        config: the agent's section of `RLConfig` (its hyperparameters).
        spec: the environment's `EnvSpec`.
        total_steps: env steps of the whole run (sets the annealing schedules).
        seed: seeds the networks' initialization and the agent's random draws.
    """

    def __init__(self, config, spec: EnvSpec, total_steps: int, seed: int):
        super().__init__(name=type(self).__name__)
        self.config = config
        self.spec = spec
        self.total_steps = total_steps
        self.seed = seed
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")
        self.optimizer = keras.optimizers.Adam(
            learning_rate=config.learning_rate, global_clipnorm=config.max_grad_norm, epsilon=1e-5
        )

    def progress(self, runner: EnvRunner) -> float:
        """Fraction of the step budget spent, in [0, 1]."""
        return min(1.0, runner.steps / self.total_steps)

    def anneal_learning_rate(self, runner: EnvRunner) -> float:
        """Set (and return) the learning rate for the run's progress: linear to 0 when annealing, else constant."""
        rate = self.config.learning_rate
        if self.config.anneal_learning_rate:
            rate *= max(1.0 - self.progress(runner), 0.0)
        self.optimizer.learning_rate.assign(rate)
        return rate

    def iterate(self, runner: EnvRunner) -> dict[str, float]:
        """Act and learn for one iteration; returns the iteration's scalars (losses, entropy, ...)."""
        raise NotImplementedError

    def policy_outputs(self, observations: tf.Tensor) -> dict[str, tf.Tensor]:
        """The exported policy's outputs for normalized observations (traced into the SavedModel)."""
        raise NotImplementedError

    def trackables(self) -> dict:
        """Networks, optimizer, random generators and counters for a `tf.train.Checkpoint`."""
        raise NotImplementedError
