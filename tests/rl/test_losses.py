"""PPO's clipped surrogate and clipped value loss, and DQN's targets, against numpy references."""

import numpy as np
import tensorflow as tf

from tfdl.rl.dqn import dqn_targets
from tfdl.rl.ppo import clipped_value_loss, ppo_clipped_loss


def _numpy_clipped(log_probs, old_log_probs, advantages, eps):
    ratio = np.exp(log_probs - old_log_probs)
    return -np.mean(np.minimum(ratio * advantages, np.clip(ratio, 1 - eps, 1 + eps) * advantages))


def test_clipped_surrogate_matches_numpy_reference():
    rng = np.random.default_rng(0)
    log_probs, old = rng.normal(size=64), rng.normal(size=64)  # ratios far outside 1 +- eps too
    advantages = rng.normal(size=64)
    got = ppo_clipped_loss(tf.constant(log_probs), tf.constant(old), tf.constant(advantages), 0.2)
    np.testing.assert_allclose(got.numpy(), _numpy_clipped(log_probs, old, advantages, 0.2), rtol=1e-6)


def test_clipped_surrogate_hand_values():
    # ratio 2 with A = 1 -> clipped to 1.2; ratio 2 with A = -1 -> min(-2, -1.2) = -2
    log2 = np.log(2.0)
    got = ppo_clipped_loss(tf.constant([log2, log2], tf.float32), tf.constant([0.0, 0.0]), tf.constant([1.0, -1.0]), 0.2)
    np.testing.assert_allclose(got.numpy(), -np.mean([1.2, -2.0]), rtol=1e-6)


def test_clipped_surrogate_gradient_vanishes_outside_the_trust_region():
    log_probs = tf.Variable([np.log(1.5)], dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = ppo_clipped_loss(log_probs, tf.constant([0.0]), tf.constant([1.0]), 0.2)
    assert tape.gradient(loss, log_probs).numpy()[0] == 0.0


def test_value_loss_with_and_without_clipping():
    values, old, returns = np.array([3.0, 0.0]), np.array([1.0, 0.5]), np.array([2.0, 0.0])
    # clipped values: 1 + clip(2, -.5, .5) = 1.5; 0.5 + clip(-0.5) = 0.0
    # errors: max(1, 0.25) = 1; max(0, 0) = 0 -> 0.5 * mean = 0.25
    np.testing.assert_allclose(clipped_value_loss(values, old, returns, 0.5).numpy(), 0.25)
    np.testing.assert_allclose(clipped_value_loss(values, old, returns, None).numpy(), 0.5 * np.mean([1.0, 0.0]))
    # pessimistic: new value right on target, old far away -> the clipped error counts
    np.testing.assert_allclose(clipped_value_loss(np.array([2.0]), np.array([0.0]), np.array([2.0]), 0.5).numpy(),
                               0.5 * 1.5**2)


def test_dqn_targets_plain_and_double():
    online = tf.constant([[1.0, 5.0], [2.0, 0.0]])
    target = tf.constant([[3.0, 4.0], [7.0, 9.0]])
    rewards, terminated = tf.constant([1.0, 1.0]), tf.constant([0.0, 1.0])
    # plain: max target = 4 -> 1 + 0.5*4 = 3; second terminated -> 1
    np.testing.assert_allclose(dqn_targets(rewards, terminated, online, target, 0.5, double=False).numpy(), [3.0, 1.0])
    # double: online picks action 1 -> target 4; second row terminated
    np.testing.assert_allclose(dqn_targets(rewards, terminated, tf.constant([[5.0, 1.0], [0.0, 1.0]]), target, 0.5,
                                           double=True).numpy(), [2.5, 1.0])
