"""The word2vec feed: pairs and CBOW windows, subsampling, negatives, vocabulary, co-occurrence counts."""

import numpy as np
import pytest

from tfdl.pipelines.cooccurrence import cooccurrence_counts
from tfdl.pipelines.negative_sampling import alias_table, draw_negatives, negative_distribution
from tfdl.pipelines.planted_corpus import planted_corpus
from tfdl.pipelines.skipgram import count_examples, word2vec_dataset
from tfdl.pipelines.subsampling import keep_probabilities
from tfdl.pipelines.word_vocabulary import build_word_vocabulary, encode_corpus, tokenize

# "a b c d e" and "f g h": ids 0..4 and 5..7, two sentences.
IDS = np.arange(8, dtype=np.int32)
SENTENCE = np.array([0, 0, 0, 0, 0, 1, 1, 1], np.int32)


def _one_batch(**settings):
    feed = word2vec_dataset(IDS, SENTENCE, np.ones(8), sample=0.0, shrink_window=False, training=False,
                            batch_size=1000, **settings)
    batches = [{k: v.numpy() for k, v in b.items()} for b in feed]
    assert len(batches) == 1
    return batches[0]


def test_skipgram_pairs_equal_the_hand_listed_ones_and_stop_at_sentence_ends():
    batch = _one_batch(window=2)
    pairs = sorted(zip(batch["inputs"][:, 0].tolist(), batch["positive"].tolist()))
    expected = sorted([(0, 1), (0, 2), (1, 0), (1, 2), (1, 3), (2, 0), (2, 1), (2, 3), (2, 4), (3, 1), (3, 2),
                       (3, 4), (4, 2), (4, 3), (5, 6), (5, 7), (6, 5), (6, 7), (7, 5), (7, 6)])
    assert pairs == expected
    assert (batch["inputs_mask"] == 1.0).all()


def test_cbow_windows_equal_the_hand_listed_ones():
    batch = _one_batch(window=2, architecture="cbow")
    contexts = {int(t): sorted(int(c) for c, m in zip(row, mask) if m)
                for t, row, mask in zip(batch["positive"], batch["inputs"], batch["inputs_mask"])}
    assert contexts == {0: [1, 2], 1: [0, 2, 3], 2: [0, 1, 3, 4], 3: [1, 2, 4], 4: [2, 3],
                        5: [6, 7], 6: [5, 7], 7: [5, 6]}
    assert batch["inputs"].shape[1] == 4 and batch["negatives"].shape == (8, 5)


def test_shrunk_windows_are_never_wider_and_training_feeds_draw_anew_each_pass():
    feed = word2vec_dataset(IDS, SENTENCE, np.ones(8), sample=0.0, window=2, batch_size=1000, seed=3)
    passes = [sorted(zip(b["inputs"][:, 0].numpy().tolist(), b["positive"].numpy().tolist()))
              for _ in range(6) for b in feed]
    full = set(map(tuple, sorted(zip(_one_batch(window=2)["inputs"][:, 0], _one_batch(window=2)["positive"]))))
    assert all(set(p) <= full for p in passes)
    assert all({(i, i + 1) for i in (0, 1, 2, 3, 5, 6)} <= set(p) for p in passes)  # radius >= 1 always
    assert len({tuple(p) for p in passes}) > 1


def test_keep_probability_follows_the_formulas():
    counts = np.array([1000, 100, 10, 1])  # frequencies 1000/1111 ...
    f = counts / counts.sum()
    t = 1e-2
    np.testing.assert_allclose(keep_probabilities(counts, t), np.minimum((np.sqrt(f / t) + 1) * t / f, 1.0))
    np.testing.assert_allclose(keep_probabilities(counts, t, "paper"), np.minimum(np.sqrt(t / f), 1.0))
    # By hand: f = 0.9001, t = 0.01 -> (sqrt(90.01) + 1) * 0.01 / 0.9001 = 0.11651
    assert keep_probabilities(counts, t)[0] == pytest.approx(0.11651, abs=1e-4)
    assert keep_probabilities(counts, 0.0).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="sample"):
        keep_probabilities(counts, -1.0)


def test_subsampling_in_the_feed_keeps_words_at_the_formula_rate():
    rng = np.random.default_rng(0)
    ids = rng.choice(4, size=40000, p=[0.7, 0.1, 0.1, 0.1]).astype(np.int32)
    counts = np.bincount(ids, minlength=4)
    expected = keep_probabilities(counts, 0.01)
    # Window 1 in one long sentence: every kept word but the two ends is the centre of 2 pairs.
    feed = word2vec_dataset(ids, np.zeros_like(ids), counts, window=1, sample=0.01, shrink_window=False,
                            training=False, batch_size=100000, chunk_tokens=10**6)
    centres = np.concatenate([b["inputs"][:, 0].numpy() for b in feed])
    kept = np.bincount(centres, minlength=4) / 2
    np.testing.assert_allclose(kept / counts, expected, rtol=0.05)


def test_negatives_follow_unigram_to_the_three_quarters():
    import tensorflow as tf

    counts = np.array([800, 100, 50, 40, 10])
    p = negative_distribution(counts)
    np.testing.assert_allclose(p, counts**0.75 / (counts**0.75).sum())
    accept, alias = alias_table(p)
    draws = draw_negatives(tf.constant(accept), tf.constant(alias), tf.constant([20000, 5]),
                           tf.constant([1, 2], tf.int64))
    observed = np.bincount(draws.numpy().ravel(), minlength=5)
    expected = p * observed.sum()
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    assert chi_square < 18.47  # the 0.999 quantile of chi-square with 4 degrees of freedom
    unigram = counts / counts.sum()
    assert observed[0] / observed.sum() < unigram[0] - 0.1  # flatter than the plain unigram


def test_alias_table_holds_the_distribution_exactly():
    # By hand for p = (0.5, 0.3, 0.2): buckets of 1/3; 0.2 and 0.3 fill 0.6 and 0.9 of their own
    # buckets and borrow the rest from the large word, which keeps 1.5 - 0.4 - 0.1 = 1.0 of its own.
    accept, alias = alias_table(np.array([0.5, 0.3, 0.2]))
    np.testing.assert_allclose(accept, [1.0, 0.9, 0.6], atol=1e-6)
    assert alias[1] == 0 and alias[2] == 0
    p = negative_distribution(np.random.default_rng(0).integers(1, 1000, size=300))
    accept, alias = alias_table(p)
    implied = (accept + np.bincount(alias, weights=1.0 - accept, minlength=len(p))) / len(p)
    np.testing.assert_allclose(implied, p, atol=1e-7)
    with pytest.raises(ValueError, match="sum to 1"):
        alias_table(np.array([0.5, 0.2]))


def test_vocabulary_drops_rare_words_and_orders_by_count():
    sentences = [tokenize("The cat and the dog."), tokenize("the Cat's toy")]
    vocabulary = build_word_vocabulary(sentences, min_count=2)
    assert vocabulary.words == ("the",) and vocabulary.counts.tolist() == [3]
    ids, sentence = encode_corpus(sentences, build_word_vocabulary(sentences))
    assert len(ids) == 8 and sentence.tolist() == [0] * 5 + [1] * 3
    with pytest.raises(ValueError, match="min_count"):
        build_word_vocabulary(sentences, min_count=10)


def test_cooccurrence_counts_weight_by_distance_within_sentences():
    cells = cooccurrence_counts(np.array([0, 1, 2, 0, 1]), np.array([0, 0, 0, 1, 1]), 3, window=2)
    expected = np.zeros((3, 3))
    for a, b, d in ((0, 1, 1), (1, 2, 1), (0, 2, 2), (0, 1, 1)):
        expected[a, b] += 1 / d
        expected[b, a] += 1 / d
    np.testing.assert_allclose(cells.dense(), expected)
    unweighted = cooccurrence_counts(np.array([0, 1, 2]), np.zeros(3, int), 3, window=2, distance_weighting=False)
    assert unweighted.dense()[0, 2] == 1.0


def test_planted_corpus_draws_each_sentence_from_one_group_plus_fillers():
    corpus = planted_corpus(50, seed=1, groups=3, words_per_group=4, sentence_length=6, fillers=2, filler_rate=0.3)
    for words, group in zip(corpus.sentences, corpus.sentence_groups):
        assert len(words) == 6
        assert all(w.startswith("filler_") or corpus.word_groups[w] == group for w in words)
    assert len(corpus.word_groups) == 12
    with pytest.raises(ValueError, match="groups"):
        planted_corpus(10, seed=0, groups=1)


def test_bad_feed_settings_name_the_setting():
    with pytest.raises(ValueError, match="architecture"):
        word2vec_dataset(IDS, SENTENCE, np.ones(8), architecture="glove")
    with pytest.raises(ValueError, match="window"):
        word2vec_dataset(IDS, SENTENCE, np.ones(8), window=0)


def test_a_fixed_number_of_steps_gives_a_known_epoch_length():
    feed = word2vec_dataset(IDS, SENTENCE, np.ones(8), window=2, sample=0.0, batch_size=4, steps=7)
    assert int(feed.cardinality()) == 7 and count_examples(feed) == 28
