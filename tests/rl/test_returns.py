"""Discounted returns and GAE against values worked out by hand, with episode ends and truncation."""

import numpy as np
import pytest

from tfdl.rl.returns import discounted_returns, generalized_advantages


def test_returns_reset_at_termination_and_bootstrap_at_rollout_end():
    # steps: r = 1, 2, 3, 4; the episode terminates after step 1; rollout ends mid-episode
    rewards = [1.0, 2.0, 3.0, 4.0]
    terminated = [False, True, False, False]
    truncated = [False] * 4
    next_values = [0.0, 0.0, 0.0, 10.0]  # only the last one is read
    got = discounted_returns(rewards, terminated, truncated, 0.5, next_values)
    # G3 = 4 + 0.5*10 = 9; G2 = 3 + 0.5*9 = 7.5; G1 = 2; G0 = 1 + 0.5*2 = 2
    np.testing.assert_allclose(got, [2.0, 2.0, 7.5, 9.0])
    np.testing.assert_allclose(discounted_returns(rewards, terminated, truncated, 0.5), [2.0, 2.0, 5.0, 4.0])


def test_truncation_bootstraps_from_the_final_state_value():
    rewards = [1.0, 1.0, 1.0]
    truncated = [False, True, False]  # time limit after step 1: V(final obs) = 6
    got = discounted_returns(rewards, [False] * 3, truncated, 0.5, [99.0, 6.0, 2.0])
    # G1 = 1 + 0.5*6 = 4; G0 = 1 + 0.5*4 = 3; G2 = 1 + 0.5*2 = 2 (a new episode, bootstrapped at the end)
    np.testing.assert_allclose(got, [3.0, 4.0, 2.0])


def test_gae_by_hand_with_termination_and_truncation():
    gamma, lam = 0.5, 0.5
    rewards = np.array([1.0, 1.0, 1.0, 1.0])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    next_values = np.array([2.0, 8.0, 4.0, 5.0])  # step 1 truncated: V(final obs) = 8; last: bootstrap 5
    terminated = np.array([False, False, True, False])
    truncated = np.array([False, True, False, False])
    advantages, returns = generalized_advantages(rewards, values, next_values, terminated, truncated, gamma, lam)
    # deltas: d0 = 1 + 1 - 1 = 1; d1 = 1 + 4 - 2 = 3; d2 = 1 + 0 - 3 = -2 (terminated); d3 = 1 + 2.5 - 4 = -0.5
    # A3 = -0.5; A2 = -2 (episode ends); A1 = 3 (episode ends); A0 = 1 + 0.25 * 3 = 1.75
    np.testing.assert_allclose(advantages, [1.75, 3.0, -2.0, -0.5])
    np.testing.assert_allclose(returns, advantages + values)


def test_gae_with_lambda_one_equals_discounted_returns_minus_values():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(6, 3))
    values = rng.normal(size=(6, 3))
    terminated = rng.random((6, 3)) < 0.2
    truncated = (rng.random((6, 3)) < 0.2) & ~terminated
    next_values = np.vstack([values[1:], rng.normal(size=(1, 3))])
    next_values[truncated] = rng.normal(size=truncated.sum())
    advantages, _ = generalized_advantages(rewards, values, next_values, terminated, truncated, 0.9, 1.0)
    expected = discounted_returns(rewards, terminated, truncated, 0.9, next_values) - values
    np.testing.assert_allclose(advantages, expected, atol=1e-5)


def test_shape_mismatch_and_bad_gamma_are_named():
    with pytest.raises(ValueError, match="terminated has shape"):
        discounted_returns([1.0, 2.0], [False], [False, False], 0.9)
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns([1.0], [False], [False], 1.5)
