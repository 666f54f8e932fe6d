import numpy as np
import pytest

from tfdl.pipelines.sequence_tasks import reversal_task, word_order_task
from tfdl.pipelines.text_corpus import (
    char_vocabulary,
    encode_chars,
    load_python_help_corpus,
    sentences,
    unigram_perplexity,
    windows,
)


def test_word_order_label_is_the_order_of_the_markers_and_bags_match():
    task = word_order_task(400, length=10, seed=1)
    a = (task.tokens == task.marker_a).argmax(axis=1)
    b = (task.tokens == task.marker_b).argmax(axis=1)
    np.testing.assert_array_equal(task.labels, (a < b).astype(np.int32))
    assert ((task.tokens == 1).sum(1) == 1).all() and ((task.tokens == 2).sum(1) == 1).all()
    assert 0.4 < task.labels.mean() < 0.6
    # Swapping the markers flips the label and keeps the bag of tokens.
    flipped = task.tokens.copy()
    flipped[task.tokens == 1], flipped[task.tokens == 2] = 2, 1
    assert (np.sort(flipped, axis=1) == np.sort(task.tokens, axis=1)).all()


def test_reversal_targets_are_the_reversed_sources_framed_by_start_and_end():
    task = reversal_task(50, seed=2)
    for src, tgt in zip(task.source, task.target):
        assert tgt[0] == task.start
        assert task.digits(tgt[1:]) == task.digits(src)[::-1]
        assert task.end in tgt
    with pytest.raises(ValueError, match="min_length"):
        reversal_task(1, min_length=5, max_length=2)


def test_corpus_is_split_by_topic_and_windows_shift_by_one():
    splits = load_python_help_corpus()
    assert len(splits.train) > 300_000 and len(splits.validation) > 10_000
    assert splits.validation[:200] not in splits.train
    vocab = char_vocabulary(splits.train)
    assert vocab[0] == " "
    ids = encode_chars(splits.validation, vocab)
    assert ids.min() >= 1 and ids.max() < len(vocab) + 2
    x, y = windows(ids, 16)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    assert len(sentences(splits.train)) > 1000


def test_unigram_perplexity_of_a_uniform_source_is_the_vocabulary_size():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 8, size=200_000)
    assert unigram_perplexity(ids, ids[:10_000], 8) == pytest.approx(8.0, rel=0.01)
