"""Experience replay for DQN: a uniform ring buffer and a prioritized one on a sum tree.

`ReplayBuffer` stores transitions (observation, action, reward, next
observation, terminated) in preallocated numpy arrays and samples uniformly.
`PrioritizedReplayBuffer` (Schaul et al., 2016) samples transition i with
probability P(i) = p_i^alpha / sum_k p_k^alpha and returns importance weights
w_i = (N P(i))^-beta / max_j w_j that undo the bias in expectation; new
transitions get the highest priority seen so far, so each is replayed at
least once soon. The sum tree keeps sampling and updates O(log N), done for a
whole batch at once with numpy, level by level.
"""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """A fixed-size ring buffer of transitions, sampled uniformly.

    Args:
        capacity: transitions held; the oldest is overwritten when full.
        obs_dim: length of an observation.
        action_shape: shape of one action; () for discrete actions.
        action_dtype: numpy dtype of actions.
        seed: seeds the sampling.

    Raises:
        ValueError: capacity or obs_dim below 1.
    """

    def __init__(self, capacity: int, obs_dim: int, action_shape: tuple[int, ...] = (), action_dtype=np.int64,
                 seed: int | None = None):
        if capacity < 1 or obs_dim < 1:
            raise ValueError(f"replay buffer needs capacity >= 1 and obs_dim >= 1, got {capacity} and {obs_dim}")
        self.capacity = capacity
        self.observations = np.zeros((capacity, obs_dim), np.float32)
        self.next_observations = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, *action_shape), action_dtype)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.size = 0
        self._next = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, observations, actions, rewards, next_observations, terminated) -> np.ndarray:
        """Store a batch of transitions (first axis: transitions).

        `next_observations` must be the true next states (the final observation
        where an episode ended); `terminated` is 1 only where the episode really
        ended (not on a time-limit truncation), so the target bootstraps there.

        Returns:
            The slots written.
        """
        count = len(rewards)
        slots = (self._next + np.arange(count)) % self.capacity
        self.observations[slots] = observations
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.next_observations[slots] = next_observations
        self.terminated[slots] = terminated
        self._next = int((self._next + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)
        return slots

    def _gather(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "observations": self.observations[slots],
            "actions": self.actions[slots],
            "rewards": self.rewards[slots],
            "next_observations": self.next_observations[slots],
            "terminated": self.terminated[slots],
            "indices": slots,
            "weights": np.ones(len(slots), np.float32),
        }

    def sample(self, batch_size: int, beta: float = 0.0) -> dict[str, np.ndarray]:
        """A uniform batch with replacement: the stored arrays, `indices` and unit `weights`.

        Raises:
            ValueError: the buffer is empty.
        """
        del beta  # uniform sampling needs no importance correction
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        return self._gather(self._rng.integers(0, self.size, batch_size))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """No-op for uniform replay (kept so DQN treats both buffers alike)."""


class SumTree:
    """A binary tree whose leaves hold priorities and whose inner nodes hold sums.

    Node 1 is the root; node n has children 2n and 2n + 1; leaf i is node
    `leaf_base + i`, where leaf_base is the capacity rounded up to a power of two.

    Args:
        capacity: number of leaves used.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.leaf_base = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = np.zeros(2 * self.leaf_base, np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.nodes[1])

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of leaves `indices` and refresh their ancestors."""
        nodes = np.asarray(indices, np.int64) + self.leaf_base
        self.nodes[nodes] = priorities
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def get(self, indices: np.ndarray) -> np.ndarray:
        """The priorities of leaves `indices`."""
        return self.nodes[np.asarray(indices, np.int64) + self.leaf_base]

    def find(self, masses: np.ndarray) -> np.ndarray:
        """For each prefix-sum value in [0, total), the leaf whose cumulative range holds it."""
        masses = np.array(masses, np.float64)
        nodes = np.ones(len(masses), np.int64)
        while nodes[0] < self.leaf_base:
            left = 2 * nodes
            go_right = masses >= self.nodes[left]
            masses = np.where(go_right, masses - self.nodes[left], masses)
            nodes = np.where(go_right, left + 1, left)
        return np.minimum(nodes - self.leaf_base, self.capacity - 1)


class PrioritizedReplayBuffer(ReplayBuffer):
    """Replay sampled in proportion to priority^alpha, with importance weights.

    Args:
        capacity, obs_dim, action_shape, action_dtype, seed: as `ReplayBuffer`.
        alpha: how strongly priorities shape sampling (0: uniform).
        epsilon: added to |TD error| so no transition gets probability 0.

    Raises:
        ValueError: alpha outside [0, 1].
    """

    def __init__(self, capacity: int, obs_dim: int, action_shape: tuple[int, ...] = (), action_dtype=np.int64,
                 seed: int | None = None, alpha: float = 0.6, epsilon: float = 1e-6):
        super().__init__(capacity, obs_dim, action_shape, action_dtype, seed)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.epsilon = epsilon
        self.tree = SumTree(capacity)
        self._max_priority = 1.0

    def add(self, observations, actions, rewards, next_observations, terminated) -> np.ndarray:
        """Store transitions with the highest priority seen so far (see `ReplayBuffer.add`)."""
        slots = super().add(observations, actions, rewards, next_observations, terminated)
        self.tree.set(slots, np.full(len(slots), self._max_priority**self.alpha))
        return slots

    def sample(self, batch_size: int, beta: float = 0.4) -> dict[str, np.ndarray]:
        """A batch drawn with P(i) = p_i^alpha / sum p^alpha, stratified over equal mass segments.

        Args:
            batch_size: transitions to draw.
            beta: importance-weight exponent (0: no correction, 1: full).

        Returns:
            As `ReplayBuffer.sample`, with `weights` = (N P(i))^-beta / max weight of the batch.

        Raises:
            ValueError: the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        total = self.tree.total
        edges = np.arange(batch_size) * (total / batch_size)
        masses = edges + self._rng.uniform(0.0, total / batch_size, batch_size)
        slots = np.minimum(self.tree.find(masses), self.size - 1)
        probabilities = self.tree.get(slots) / total
        weights = (self.size * probabilities) ** (-beta)
        batch = self._gather(slots)
        batch["weights"] = (weights / weights.max()).astype(np.float32)
        return batch

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of sampled transitions to |TD error| + epsilon."""
        priorities = np.abs(np.asarray(td_errors, np.float64)) + self.epsilon
        self._max_priority = max(self._max_priority, float(priorities.max()))
        self.tree.set(indices, priorities**self.alpha)
