"""The English prose corpus that ships with tfdl (`prose`), for word embeddings and language models offline.

`configs/corpora/prose.txt` (installed as package data of `tfdl.configs`) is
original prose written for tfdl and dedicated to the public domain (CC0 1.0;
see `configs/corpora/README.md`): about 2,000 sentences and 30,000 words about
one small harbour town through the seasons (the boats and the sea, the market,
the kitchen, the weather, the railway, the school, the band, gardens and
farms), so its words co-occur the way a small model can learn. One paragraph
per line; sentences are split with `tfdl.pipelines.text_corpus.sentences`,
one example per sentence, all labelled `text`. A config asks for it by name:

    data: {source: {type: generated, name: prose, examples: 100000}}
"""

from __future__ import annotations

from importlib import resources

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.generated import register_generator

CORPUS_FILE = "corpora/prose.txt"


def load_prose_sentences(min_words: int = 4) -> list[str]:
    """The sentences of the shipped prose corpus, in file order.

    Args:
        min_words: shorter sentences are dropped.

    Raises:
        ValueError: `min_words` < 1.
        DataError: the corpus file is missing from the installation.
    """
    from tfdl.pipelines.text_corpus import sentences

    if min_words < 1:
        raise ValueError(f"prose: min_words must be >= 1, got {min_words}")
    path = resources.files("tfdl.configs") / CORPUS_FILE
    if not path.is_file():
        raise DataError(f"{path}: the shipped prose corpus is missing; reinstall tfdl (package data tfdl.configs)")
    return sentences(path.read_text(encoding="utf-8"), min_words)


@register_generator("prose")
def make_prose_sentences(examples: int, seed: int, min_words: int = 4) -> ArrayData:
    """Up to `examples` sentences of the shipped prose corpus, in a seeded random order.

    Args:
        examples: the most sentences to keep (more than there are keeps all).
        seed: seeds the order (and which sentences, when fewer are asked for).
        min_words: shorter sentences are dropped.

    Returns:
        Features: sentences as strings; labels: all 0 (class `text`); input name `text`.

    Raises:
        ValueError: `min_words` < 1.
        DataError: the corpus file is missing from the installation.
    """
    from tfdl.pipelines.text_corpus import sentence_examples

    return sentence_examples(load_prose_sentences(min_words), examples, seed)
