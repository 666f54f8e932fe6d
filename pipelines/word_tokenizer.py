"""Word-level token ids for BERT-style models, with [CLS] and [MASK].

A `keras.layers.TextVectorization` (lower-cased, punctuation stripped) fitted
on training text only, whose vocabulary is laid out as the BERT models expect:
0 padding, 1 [UNK], 2 [CLS], 3 [MASK], 4.. words by frequency. Every encoded
sequence starts with [CLS].
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPECIAL_TOKENS = ("[CLS]", "[MASK]")


class WordTokenizer:
    """Fitted word vocabulary and the encoder that uses it.

    Args:
        texts: training texts to take the vocabulary from.
        max_words: the most frequent words kept (others become [UNK]).
        length: length of every encoded sequence, [CLS] included.
    """

    def __init__(self, texts: Sequence[str], max_words: int = 1000, length: int = 32):
        import keras

        if length < 2:
            raise ValueError(f"length must be >= 2 ([CLS] and one word), got {length}")
        fitting = keras.layers.TextVectorization(max_tokens=max_words + 2, output_sequence_length=length - 1)
        fitting.adapt(np.asarray(texts))
        self.words = [str(w) for w in fitting.get_vocabulary()[2:]]
        self.length = length
        self.vectorizer = keras.layers.TextVectorization(
            output_sequence_length=length - 1, vocabulary=list(SPECIAL_TOKENS) + self.words
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self.words) + 2 + len(SPECIAL_TOKENS)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """int32 ids (n, length): [CLS] then the words, padded or cut to `length`."""
        ids = np.asarray(self.vectorizer(np.asarray(texts)), dtype=np.int32)
        cls = np.full((len(ids), 1), 2, dtype=np.int32)
        return np.concatenate([cls, ids], axis=1)
