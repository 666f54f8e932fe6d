"""The labelled sentence corpus that ships with tfdl: 400 short English sentences on four topics.

`configs/corpora/sentences.tsv` (installed as package data of `tfdl.configs`)
holds one `topic<TAB>sentence` per line under a header line; the topics are
sports, cooking, weather and technology, 100 sentences each, written for
tfdl. Words such as "hot", "fast", "record", "cloud" or "storm" occur under
several topics, so a bag of words alone does not separate them perfectly.
It feeds the text-classifier lesson offline:

    data: {source: {type: generated, name: sentences, examples: 400}}
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.generated import register_generator

CORPUS_FILE = "corpora/sentences.tsv"


def load_sentences(input_name: str = "text") -> ArrayData:
    """Read the shipped corpus, in file order.

    Args:
        input_name: the model input's name (the served signature's key).

    Returns:
        ArrayData whose features are the sentences (numpy object array of
        str), labels int32 topic indices, class_names the sorted topic names.

    Raises:
        DataError: the corpus file is missing from the installation or has a
            line that is not `topic<TAB>sentence`.
    """
    path = resources.files("tfdl.configs") / CORPUS_FILE
    if not path.is_file():
        raise DataError(f"{path}: the shipped sentence corpus is missing; reinstall tfdl (package data tfdl.configs)")
    topics, sentences = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], start=2):
        topic, tab, sentence = line.partition("\t")
        if not tab or not topic or not sentence.strip():
            raise DataError(f"{path}:{number}: expected 'topic<TAB>sentence', got {line!r}")
        topics.append(topic)
        sentences.append(sentence.strip())
    class_names = tuple(sorted(set(topics)))
    labels = np.array([class_names.index(t) for t in topics], dtype=np.int32)
    return ArrayData(np.array(sentences, dtype=object), labels, class_names, input_name)


@register_generator("sentences")
def sentence_examples(examples: int, seed: int, input_name: str = "text") -> ArrayData:
    """The shipped corpus as a generated source: `examples` sentences drawn at random, or all of them.

    Args:
        examples: how many sentences (at most the corpus size, 400).
        seed: picks which sentences when `examples` is below the corpus size.
        input_name: the model input's name.

    Returns:
        ArrayData as `load_sentences`, with `examples` rows.

    Raises:
        ValueError: `examples` is more than the corpus holds.
    """
    corpus = load_sentences(input_name)
    if examples > len(corpus):
        raise ValueError(f"the sentence corpus holds {len(corpus)} sentences; set data.source.examples to at most that")
    if examples == len(corpus):
        return corpus
    return corpus.take(np.sort(np.random.default_rng(seed).permutation(len(corpus))[:examples]))
