"""Word co-occurrence counts, the input of GloVe (Pennington et al. 2014).

X[i, j] sums, over every occurrence of word i, the context words j within
`window` positions in the same sentence, each weighted 1 / distance (GloVe's
default, so a neighbour counts more than a word five places away) or 1.
The matrix is symmetric (j left of i counts as i right of j). It is held as
coordinate arrays of its non-zero cells, since a vocabulary of V words has
V^2 cells and few of them are ever seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CooccurrenceCells:
    """The non-zero cells of a co-occurrence matrix.

    Attributes:
        rows, columns: int32 word ids of each cell.
        counts: float32 (weighted) co-occurrence count of each cell, > 0.
        vocabulary_size: the matrix is vocabulary_size x vocabulary_size.
    """

    rows: np.ndarray
    columns: np.ndarray
    counts: np.ndarray
    vocabulary_size: int

    def __len__(self) -> int:
        return len(self.counts)

    def dense(self) -> np.ndarray:
        """The full matrix (for small vocabularies and tests)."""
        matrix = np.zeros((self.vocabulary_size, self.vocabulary_size), np.float32)
        matrix[self.rows, self.columns] = self.counts
        return matrix

    def take(self, index: np.ndarray) -> "CooccurrenceCells":
        """The cells at `index`."""
        return CooccurrenceCells(self.rows[index], self.columns[index], self.counts[index], self.vocabulary_size)


def cooccurrence_counts(ids: np.ndarray, sentence: np.ndarray, vocabulary_size: int, window: int = 10,
                        distance_weighting: bool = True) -> CooccurrenceCells:
    """Count co-occurrences in an encoded corpus.

    Args:
        ids: int word ids, the corpus flattened (`encode_corpus`).
        sentence: the sentence of each id; windows stop at sentence ends.
        vocabulary_size: ids are below this.
        window: the context radius, >= 1.
        distance_weighting: weight a pair at distance d by 1 / d (else 1).

    Returns:
        The symmetric matrix's non-zero cells, sorted by (row, column).

    Raises:
        ValueError: `window` < 1, ids and sentence of different lengths, or
            an id outside the vocabulary.
    """
    ids = np.asarray(ids, np.int64)
    sentence = np.asarray(sentence)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(ids) != len(sentence):
        raise ValueError(f"ids ({len(ids)}) and sentence ({len(sentence)}) must have one entry per word")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocabulary_size):
        raise ValueError(f"word ids must be in [0, {vocabulary_size}), got {ids.min()}..{ids.max()}")
    keys, weights = [], []
    for distance in range(1, window + 1):
        same = sentence[distance:] == sentence[:-distance]
        left, right = ids[:-distance][same], ids[distance:][same]
        weight = 1.0 / distance if distance_weighting else 1.0
        keys += [left * vocabulary_size + right, right * vocabulary_size + left]
        weights += [np.full(2 * len(left), weight)]
    if not keys:
        empty = np.zeros(0, np.int32)
        return CooccurrenceCells(empty, empty, np.zeros(0, np.float32), vocabulary_size)
    cells, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate(weights))
    return CooccurrenceCells((cells // vocabulary_size).astype(np.int32), (cells % vocabulary_size).astype(np.int32),
                             counts.astype(np.float32), vocabulary_size)


def glove_dataset(cells: CooccurrenceCells, batch_size: int, seed: int = 0, training: bool = True):
    """A tf.data feed of cells: `{"rows", "columns", "counts"}` batches, shuffled anew each pass when training."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices({"rows": cells.rows, "columns": cells.columns, "counts": cells.counts})
    if training:
        dataset = dataset.shuffle(len(cells), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
