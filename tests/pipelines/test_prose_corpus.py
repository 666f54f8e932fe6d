"""The shipped prose corpus (`prose`): its sentences, seeded order, `min_words`, size and license."""

import re
from pathlib import Path

import numpy as np
import pytest

from tfdl.pipelines import prose_corpus
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.generated import generate
from tfdl.pipelines.prose_corpus import load_prose_sentences, make_prose_sentences
from tfdl.pipelines.word_vocabulary import tokenize

CORPORA = Path(__file__).resolve().parents[2] / "configs" / "corpora"


def test_the_generator_gives_every_sentence_of_the_file_once_labelled_text():
    sentences = load_prose_sentences()
    data = generate("prose", examples=100_000, seed=0)  # through the registry, as a config asks for it
    assert sorted(data.features.tolist()) == sorted(sentences)
    assert data.class_names == ("text",) and data.input_name == "text"
    np.testing.assert_array_equal(data.labels, np.zeros(len(sentences), np.int32))
    # Sentences are whole: each starts with a capital and ends with its stop, and all come from the file.
    text = (CORPORA / "prose.txt").read_text(encoding="utf-8")
    assert all(s[0].isupper() and s[-1] in ".!?" and s in text for s in sentences)


def test_the_order_is_seeded_and_examples_caps_the_count():
    first, again, other = (make_prose_sentences(100_000, seed).features.tolist() for seed in (3, 3, 4))
    assert first == again and first != other and sorted(first) == sorted(other)
    some = make_prose_sentences(25, seed=3).features.tolist()
    assert some == first[:25]


def test_min_words_drops_shorter_sentences_and_must_be_positive():
    every = load_prose_sentences(min_words=1)
    long_ones = make_prose_sentences(100_000, seed=0, min_words=20).features.tolist()
    assert all(len(s.split()) >= 20 for s in long_ones)
    assert sorted(long_ones) == sorted(s for s in every if len(s.split()) >= 20)
    assert 0 < len(long_ones) < len(every)
    with pytest.raises(ValueError, match="min_words must be >= 1, got 0"):
        make_prose_sentences(10, seed=0, min_words=0)


def test_a_missing_corpus_file_says_to_reinstall(monkeypatch):
    monkeypatch.setattr(prose_corpus, "CORPUS_FILE", "corpora/no-such-file.txt")
    with pytest.raises(DataError, match="prose corpus is missing; reinstall tfdl"):
        make_prose_sentences(10, seed=0)


def test_the_corpus_is_big_enough_for_a_small_language_model():
    sentences = load_prose_sentences(min_words=1)
    words = [w for s in sentences for w in tokenize(s)]
    assert 2_000 <= len(sentences) <= 2_500
    assert 30_000 <= len(words) <= 40_000
    assert 2_000 <= len(set(words)) <= 3_000


def test_the_corpora_readme_dedicates_every_shipped_corpus_file_to_the_public_domain():
    readme = (CORPORA / "README.md").read_text(encoding="utf-8")
    assert "https://creativecommons.org/publicdomain/zero/1.0/" in readme
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", readme, re.MULTILINE)}
    shipped = sorted(p.name for p in CORPORA.iterdir() if p.is_file() and p.name != "README.md")
    assert "prose.txt" in shipped
    for name in shipped:
        assert name in rows, f"{name} has no row in configs/corpora/README.md"
        assert "written for tfdl" in rows[name] and "CC0 1.0" in rows[name], rows[name]
