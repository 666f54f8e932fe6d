"""Word vocabularies for embedding models: tokens, counts, and ids by frequency.

word2vec and GloVe see a corpus as sentences of word ids. Words are
lower-cased runs of letters, digits, `_` and `'`; a word seen fewer than
`min_count` times is dropped from the vocabulary and from the sentences (as
word2vec does: it has no vector to learn from so few examples). Id 0 is the
most frequent word; there is no padding id.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9_']+")


def tokenize(text: str) -> list[str]:
    """The words of `text`: lower-cased runs of letters, digits, `_` and `'`."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class WordVocabulary:
    """Words kept for training, most frequent first, with their training counts.

    Attributes:
        words: the word of each id.
        counts: how often each word occurs in the training sentences (int64).
    """

    words: tuple[str, ...]
    counts: np.ndarray
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if len(self.words) != len(self.counts):
            raise ValueError(f"{len(self.words)} words but {len(self.counts)} counts; give one count per word")
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, sentence: Sequence[str]) -> np.ndarray:
        """Ids of the words of `sentence` that are in the vocabulary (others are left out)."""
        return np.fromiter((self.index[w] for w in sentence if w in self.index), dtype=np.int32)


def build_word_vocabulary(sentences: Iterable[Sequence[str]], min_count: int = 1,
                          max_words: int | None = None) -> WordVocabulary:
    """Count the words of tokenized `sentences` and keep the frequent ones.

    Args:
        sentences: lists of words (see `tokenize`).
        min_count: words seen fewer times are left out (>= 1).
        max_words: keep at most this many of the most frequent words; None: all.

    Returns:
        The vocabulary, most frequent word first (ties in alphabetical order,
        so the ids do not depend on the order of the sentences).

    Raises:
        ValueError: `min_count` < 1, `max_words` < 1, or no word is left.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if max_words is not None and max_words < 1:
        raise ValueError(f"max_words must be >= 1 or None, got {max_words}")
    counter = Counter(w for sentence in sentences for w in sentence)
    kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    kept = kept[:max_words] if max_words else kept
    if not kept:
        raise ValueError(
            f"no word occurs at least min_count={min_count} times in {sum(counter.values())} words; "
            "lower min_count or give more text"
        )
    return WordVocabulary(tuple(w for w, _ in kept), np.array([c for _, c in kept], dtype=np.int64))


def encode_corpus(sentences: Iterable[Sequence[str]], vocabulary: WordVocabulary) -> tuple[np.ndarray, np.ndarray]:
    """A corpus as one flat array of ids and the sentence each id belongs to.

    Words out of the vocabulary are dropped; sentences left empty vanish.

    Returns:
        `(ids, sentence)`: int32 arrays of equal length; `sentence` numbers
        the sentences 0, 1, ... in order (non-decreasing).
    """
    encoded = [vocabulary.encode(s) for s in sentences]
    encoded = [e for e in encoded if len(e)]
    if not encoded:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    ids = np.concatenate(encoded).astype(np.int32)
    sentence = np.repeat(np.arange(len(encoded), dtype=np.int32), [len(e) for e in encoded])
    return ids, sentence
