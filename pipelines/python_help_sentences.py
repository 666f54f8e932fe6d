"""The shipped English corpus as sentences (`python_help`), for word embeddings offline.

The prose sentences of Python's help topics (`text_corpus.load_python_help_corpus`,
about 2,300 sentences, 60,000 words; code blocks left out), one example per
sentence, all labelled `text`. A config asks for it by name:

    data: {source: {type: generated, name: python_help, examples: 100000}}
"""

from __future__ import annotations

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.generated import register_generator


@register_generator("python_help")
def make_python_help_sentences(examples: int, seed: int, min_words: int = 4) -> ArrayData:
    """Up to `examples` sentences of the Python help topics, in a seeded random order.

    Args:
        examples: the most sentences to keep (more than there are keeps all).
        seed: seeds the order (and which sentences, when fewer are asked for).
        min_words: shorter sentences are dropped.

    Returns:
        Features: sentences as strings; labels: all 0 (class `text`); input name `text`.

    Raises:
        ValueError: `min_words` < 1.
    """
    from tfdl.pipelines.text_corpus import load_python_help_corpus, sentence_examples, sentences

    if min_words < 1:
        raise ValueError(f"python_help: min_words must be >= 1, got {min_words}")
    splits = load_python_help_corpus()
    text = sentences(splits.train, min_words) + sentences(splits.validation, min_words)
    return sentence_examples(text, examples, seed)
