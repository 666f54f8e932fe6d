"""A corpus with planted structure (`planted_words`): groups of words that co-occur by construction.

Embedding methods learn from co-occurrence, so a corpus where we decide
which words co-occur tells whether they learned it: every sentence is drawn
from one group's words, plus shared "filler" words that appear in every
group (the role of "the" and "of", and what subsampling is for). A good
embedding puts each group word's nearest neighbours inside its group.

Words are named `gGG_wWW` (group GG, word WW) and fillers `filler_FF`.
Within a group, word w is drawn with weight 1 / (w + 1) ** zipf, so
frequencies are skewed as in real text. A config asks for it by name:

    data: {source: {type: generated, name: planted_words, examples: 4000,
                    params: {groups: 10, words_per_group: 10}}}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.generated import register_generator


@dataclass(frozen=True)
class PlantedCorpus:
    """Sentences and the structure planted in them.

    Attributes:
        sentences: each sentence as a list of words.
        sentence_groups: the group each sentence was drawn from (int32).
        word_groups: group word -> its group; fillers are not in it.
    """

    sentences: list[list[str]]
    sentence_groups: np.ndarray
    word_groups: dict[str, int]


def group_word(group: int, word: int) -> str:
    """The name of word `word` of group `group`."""
    return f"g{group:02d}_w{word:02d}"


def planted_corpus(sentences: int, seed: int, groups: int = 10, words_per_group: int = 10,
                   sentence_length: int = 12, fillers: int = 5, filler_rate: float = 0.3,
                   zipf: float = 1.0) -> PlantedCorpus:
    """Draw a planted corpus.

    Args:
        sentences: how many sentences.
        seed: seeds every draw.
        groups: how many groups (>= 2).
        words_per_group: words in each group (>= 2).
        sentence_length: words per sentence (>= 2).
        fillers: shared words that appear in every group (>= 0).
        filler_rate: chance that a position holds a filler, in [0, 1).
        zipf: skew of word frequencies within a group (0: uniform).

    Returns:
        The sentences, the group of each, and the group of each group word.

    Raises:
        ValueError: a setting out of range (named, with its accepted range).
    """
    checks = (("sentences", sentences, 1), ("groups", groups, 2), ("words_per_group", words_per_group, 2),
              ("sentence_length", sentence_length, 2), ("fillers", fillers, 0))
    for name, value, low in checks:
        if value < low:
            raise ValueError(f"planted_words: {name} must be >= {low}, got {value}")
    if not 0 <= filler_rate < 1 or (filler_rate > 0 and fillers == 0):
        raise ValueError(f"planted_words: filler_rate must be in [0, 1) and needs fillers >= 1, got {filler_rate}")
    if zipf < 0:
        raise ValueError(f"planted_words: zipf must be >= 0, got {zipf}")
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, words_per_group + 1) ** zipf
    sentence_groups = rng.integers(0, groups, sentences).astype(np.int32)
    words = rng.choice(words_per_group, size=(sentences, sentence_length), p=weights / weights.sum())
    is_filler = rng.random((sentences, sentence_length)) < filler_rate
    filler = rng.integers(0, max(fillers, 1), (sentences, sentence_length))
    text = [
        [f"filler_{filler[s, i]:02d}" if is_filler[s, i] else group_word(sentence_groups[s], words[s, i])
         for i in range(sentence_length)]
        for s in range(sentences)
    ]
    word_groups = {group_word(g, w): g for g in range(groups) for w in range(words_per_group)}
    return PlantedCorpus(text, sentence_groups, word_groups)


@register_generator("planted_words")
def make_planted_words(examples: int, seed: int, groups: int = 10, words_per_group: int = 10,
                       sentence_length: int = 12, fillers: int = 5, filler_rate: float = 0.3,
                       zipf: float = 1.0) -> ArrayData:
    """`planted_corpus` as `ArrayData`: one sentence (space-separated words) per example.

    Args:
        examples: how many sentences; the other arguments as in `planted_corpus`.

    Returns:
        Features: the sentences as strings; labels: the group of each
        sentence; class names `group_GG`; input name `text`.
    """
    corpus = planted_corpus(examples, seed, groups, words_per_group, sentence_length, fillers, filler_rate, zipf)
    text = np.array([" ".join(s) for s in corpus.sentences], dtype=object)
    return ArrayData(text, corpus.sentence_groups, tuple(f"group_{g:02d}" for g in range(groups)), "text")
