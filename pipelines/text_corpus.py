"""A small English corpus that every Python installation carries, for language models.

The corpus is the text of Python's interactive help topics (the standard
library's `pydoc_data.topics`, about 465,000 characters of the language
reference), so language-model configs and tests run offline on any machine
without a download. Splits are by topic, so no paragraph of the validation
text is ever seen in training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextSplits:
    train: str
    validation: str


def load_python_help_corpus(validation_fraction: float = 0.1, seed: int = 0) -> TextSplits:
    """The help topics as text, split into train and validation by whole topic."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(names) * validation_fraction)))
    held_out = set(rng.choice(names, size=n_val, replace=False).tolist())
    train = "\n\n".join(topics[k] for k in names if k not in held_out)
    validation = "\n\n".join(topics[k] for k in names if k in held_out)
    return TextSplits(train=train, validation=validation)


def sentences(text: str, min_words: int = 4) -> list[str]:
    """Prose sentences of the corpus: code blocks and short fragments dropped, whitespace folded."""
    prose = [line for line in text.splitlines() if line and not line.startswith("     ")]
    flat = re.sub(r"\s+", " ", " ".join(prose))
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])", flat)
    return [p.strip() for p in parts if len(p.split()) >= min_words]


def sentence_examples(text: list[str], examples: int, seed: int):
    """Up to `examples` of the sentences `text` in a seeded random order, as unlabelled `ArrayData`.

    Features are the sentences (object array of str), labels all 0 (class `text`),
    input name `text`: the shape the embedding and language-model tasks read.
    """
    from tfdl.pipelines.array_data import ArrayData

    order = np.random.default_rng(seed).permutation(len(text))[:examples]
    features = np.array([text[i] for i in order], dtype=object)
    return ArrayData(features, np.zeros(len(features), np.int32), ("text",), "text")


def char_vocabulary(text: str) -> list[str]:
    """Characters of `text`, most frequent first (id 0 is kept for padding by callers)."""
    values, counts = np.unique(list(text), return_counts=True)
    return [str(c) for c in values[np.argsort(-counts, kind="stable")]]


def encode_chars(text: str, vocabulary: list[str], unknown: int = 1) -> np.ndarray:
    """Ids of `text`'s characters: 0 padding, 1 unknown, 2.. the vocabulary in order."""
    index = {c: i + 2 for i, c in enumerate(vocabulary)}
    return np.fromiter((index.get(c, unknown) for c in text), dtype=np.int32, count=len(text))


def windows(ids: np.ndarray, length: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Next-token pairs: inputs ids[i:i+length], targets ids[i+1:i+length+1]."""
    stride = stride or length
    starts = np.arange(0, len(ids) - length - 1, stride)
    index = starts[:, None] + np.arange(length)[None, :]
    return ids[index], ids[index + 1]


def unigram_perplexity(train_ids: np.ndarray, eval_ids: np.ndarray, vocabulary_size: int) -> float:
    """Perplexity on `eval_ids` of the unigram model fitted on `train_ids` (add-one smoothing).

    The baseline a language model must beat: it knows how often each token
    occurs and nothing about context.
    """
    counts = np.bincount(train_ids, minlength=vocabulary_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(np.exp(-log_p[eval_ids].mean()))
