"""Small sequence tasks generated from a seed, for models that must learn order.

* `word_order_task`: two marker tokens appear once each among random filler
  tokens; the label says whether marker A comes before marker B. Every
  example of either label has the same bag of tokens up to the fillers, so a
  model that ignores order (a bag of words, or a Transformer without
  positional information) stays at chance.
* `reversal_task`: map a sequence of digits to its reverse, the classic
  sequence-to-sequence exercise: the output depends on every input position.

Token id 0 is padding everywhere, so masks follow from the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = 0


@dataclass(frozen=True)
class WordOrderTask:
    """Token ids (n, length), int32 labels (n,), and the marker ids."""

    tokens: np.ndarray
    labels: np.ndarray
    marker_a: int
    marker_b: int
    vocabulary_size: int


def word_order_task(n: int, length: int = 12, vocabulary_size: int = 20, seed: int = 0) -> WordOrderTask:
    """Examples where the label is 1 exactly when marker A precedes marker B.

    Ids: 0 padding, 1 marker A, 2 marker B, 3.. fillers.
    """
    if length < 2 or vocabulary_size < 4:
        raise ValueError(f"need length >= 2 and vocabulary_size >= 4, got {length} and {vocabulary_size}")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, vocabulary_size, size=(n, length))
    labels = rng.integers(0, 2, size=n)
    for i in range(n):
        first, second = sorted(rng.choice(length, size=2, replace=False))
        a, b = (first, second) if labels[i] == 1 else (second, first)
        tokens[i, a], tokens[i, b] = 1, 2
    return WordOrderTask(tokens.astype(np.int32), labels.astype(np.int32), 1, 2, vocabulary_size)


@dataclass(frozen=True)
class ReversalTask:
    """Source and target token ids, both (n, max_length + 2) with padding.

    Target sequences are framed by start and end tokens: decoder input is
    `target[:, :-1]`, decoder output `target[:, 1:]` (teacher forcing).
    Ids: 0 padding, 1 start, 2 end, 3.. the digits 0-9.
    """

    source: np.ndarray
    target: np.ndarray
    start: int = 1
    end: int = 2
    vocabulary_size: int = 13

    def digits(self, ids) -> str:
        """The digits an id sequence spells, up to its end token."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == self.end:
                break
            if i >= 3:
                out.append(str(i - 3))
        return "".join(out)


def reversal_task(n: int, min_length: int = 3, max_length: int = 8, seed: int = 0) -> ReversalTask:
    """Random digit strings (lengths uniform in [min_length, max_length]) and their reverses."""
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length} and {max_length}")
    rng = np.random.default_rng(seed)
    width = max_length + 2
    source = np.zeros((n, width), dtype=np.int32)
    target = np.zeros((n, width), dtype=np.int32)
    for i in range(n):
        digits = rng.integers(3, 13, size=rng.integers(min_length, max_length + 1))
        source[i, : len(digits)] = digits
        target[i, 0] = 1
        target[i, 1 : len(digits) + 1] = digits[::-1]
        target[i, len(digits) + 1] = 2
    return ReversalTask(source, target)
