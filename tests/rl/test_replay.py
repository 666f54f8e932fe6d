"""Replay buffers: ring storage, uniform sampling, prioritized proportions and importance weights."""

import numpy as np
import pytest

from tfdl.rl.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree


def _fill(buffer, count, start=0):
    ids = np.arange(start, start + count, dtype=np.float32)
    buffer.add(ids[:, None], ids.astype(np.int64), ids, ids[:, None] + 0.5, np.zeros(count))


def test_ring_buffer_overwrites_oldest_and_samples_only_stored():
    buffer = ReplayBuffer(4, 1, seed=0)
    _fill(buffer, 6)  # 0..5 into 4 slots: 4 and 5 replace 0 and 1
    assert len(buffer) == 4
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]
    batch = buffer.sample(4000)
    assert set(batch["rewards"].tolist()) == {2.0, 3.0, 4.0, 5.0}
    np.testing.assert_array_equal(batch["next_observations"][:, 0], batch["observations"][:, 0] + 0.5)
    counts = np.bincount(batch["rewards"].astype(int), minlength=6)[2:]
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)
    np.testing.assert_array_equal(batch["weights"], 1.0)


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(4, 1).sample(2)


def test_sum_tree_sums_and_finds_by_prefix_mass():
    tree = SumTree(5)  # not a power of two: 8 leaves, 5 used
    tree.set(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    assert tree.total == 10.0
    # cumulative ranges: [0,1) -> 0, [1,3) -> 1, [3,6) -> 2, [6,10) -> 3
    np.testing.assert_array_equal(tree.find([0.0, 0.99, 1.0, 2.9, 3.0, 5.99, 6.0, 9.99]), [0, 0, 1, 1, 2, 2, 3, 3])
    tree.set(np.array([3]), np.array([0.5]))
    assert tree.total == 6.5


def test_prioritized_sampling_follows_priorities_to_the_alpha():
    buffer = PrioritizedReplayBuffer(4, 1, seed=0, alpha=0.5)
    _fill(buffer, 4)
    buffer.update_priorities(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]) - 1e-6)  # p^0.5 = 1, 2, 3, 4
    draws = np.concatenate([buffer.sample(100)["indices"] for _ in range(100)])
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.015)


def test_importance_weights_match_hand_values():
    buffer = PrioritizedReplayBuffer(2, 1, seed=0, alpha=1.0)
    _fill(buffer, 2)
    buffer.update_priorities(np.array([0, 1]), np.array([1.0, 3.0]) - 1e-6)
    batch = buffer.sample(64, beta=1.0)
    # P = (0.25, 0.75); w = (N P)^-1 = (2, 2/3), divided by the batch max 2 -> (1, 1/3)
    expected = np.where(batch["indices"] == 0, 1.0, 1.0 / 3.0)
    np.testing.assert_allclose(batch["weights"], expected, rtol=1e-5)
    half = buffer.sample(64, beta=0.5)
    # w = (0.5^-0.5, 1.5^-0.5) / 0.5^-0.5 = (1, sqrt(1/3))
    np.testing.assert_allclose(half["weights"], np.where(half["indices"] == 0, 1.0, np.sqrt(1.0 / 3.0)), rtol=1e-5)


def test_new_transitions_get_the_highest_priority_seen():
    buffer = PrioritizedReplayBuffer(4, 1, seed=0, alpha=1.0)
    _fill(buffer, 2)
    buffer.update_priorities(np.array([0, 1]), np.array([5.0, 1.0]))
    _fill(buffer, 1, start=2)
    np.testing.assert_allclose(buffer.tree.get([2]), [5.0 + 1e-6])
