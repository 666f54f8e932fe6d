"""word2vec and GloVe: losses against numpy, learning planted groups, round trips; GloVe files; evaluation."""

import keras
import numpy as np
import pytest

from tfdl.evaluation.embeddings import (
    WordVectors, analogy, group_neighbour_score, nearest_neighbours, read_projector_files, write_projector_files,
)
from tfdl.layers.pretrained_embedding import glove_embedding, load_glove_matrix, word_vectors_model
from tfdl.models.glove import GloVe, GloVeConfig, build_glove, glove_loss, glove_weight
from tfdl.models.word2vec import Word2Vec, Word2VecConfig, build_word2vec, negative_sampling_loss
from tfdl.pipelines.cooccurrence import cooccurrence_counts, glove_dataset
from tfdl.pipelines.planted_corpus import planted_corpus
from tfdl.pipelines.skipgram import word2vec_dataset
from tfdl.pipelines.word_vocabulary import build_word_vocabulary, encode_corpus


def _planted(sentences=1200):
    corpus = planted_corpus(sentences, seed=0, groups=6, words_per_group=8, sentence_length=10)
    vocabulary = build_word_vocabulary(corpus.sentences)
    return corpus, vocabulary, encode_corpus(corpus.sentences, vocabulary)


def _score(model, corpus, vocabulary):
    return group_neighbour_score(WordVectors(vocabulary.words, model.vectors()), corpus.word_groups, k=5)


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_word2vec_puts_planted_groups_together(architecture):
    keras.utils.set_random_seed(0)
    corpus, vocabulary, (ids, sentence) = _planted()
    feed = word2vec_dataset(ids, sentence, vocabulary.counts, architecture=architecture, window=4,
                            batch_size=512, seed=0, steps=30)
    model = build_word2vec(Word2VecConfig(vocabulary_size=len(vocabulary), embedding_dim=16, architecture=architecture))
    before = _score(model, corpus, vocabulary)
    model.compile(optimizer=keras.optimizers.Adam(0.02), steps_per_execution=10)
    history = model.fit(feed, epochs=3, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert before < 0.3 and _score(model, corpus, vocabulary) >= 0.9


def test_glove_puts_planted_groups_together():
    keras.utils.set_random_seed(0)
    corpus, vocabulary, (ids, sentence) = _planted(600)
    cells = cooccurrence_counts(ids, sentence, len(vocabulary), window=5)
    model = build_glove(GloVeConfig(vocabulary_size=len(vocabulary), embedding_dim=16))
    model.compile(optimizer=keras.optimizers.Adam(0.03), steps_per_execution=10)
    model.fit(glove_dataset(cells, 256), epochs=15, verbose=0)
    assert _score(model, corpus, vocabulary) >= 0.9


def test_negative_sampling_loss_equals_numpy():
    logits = np.array([[2.0, -1.0, 0.5], [-3.0, 4.0, 0.0]], np.float32)
    sigmoid = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -np.log(sigmoid[:, 0]) - np.log(1 - sigmoid[:, 1:]).sum(axis=1)
    np.testing.assert_allclose(np.asarray(negative_sampling_loss(logits)), expected, rtol=1e-5)


def test_word2vec_logits_are_the_dot_products_of_the_mean_input_and_candidates():
    model = Word2Vec({"vocabulary_size": 6, "embedding_dim": 3})
    model.build()
    rng = np.random.default_rng(0)
    v, u = rng.normal(size=(6, 3)).astype("float32"), rng.normal(size=(6, 3)).astype("float32")
    model.embeddings.set_weights([v])
    model.context_embeddings.set_weights([u])
    batch = {"inputs": np.array([[1, 2, 5]]), "inputs_mask": np.array([[1, 1, 0]], "float32"),
             "positive": np.array([3]), "negatives": np.array([[0, 4]])}
    hidden = (v[1] + v[2]) / 2
    np.testing.assert_allclose(np.asarray(model(batch))[0], [hidden @ u[3], hidden @ u[0], hidden @ u[4]], rtol=1e-5)


@pytest.mark.parametrize("inputs, mask", [
    ([[1], [2], [1]], [[1], [1], [1]]),  # skip-gram: one centre word
    ([[1, 2, 5], [0, 3, 3], [4, 0, 0]], [[1, 1, 0], [1, 1, 1], [1, 0, 0]]),  # CBOW: masked windows, repeats
])
def test_word2vec_train_step_moves_the_rows_by_the_autodiff_gradient(inputs, mask):
    import tensorflow as tf

    model = Word2Vec({"vocabulary_size": 6, "embedding_dim": 3})
    model.build()
    rng = np.random.default_rng(0)
    for table in (model.embeddings, model.context_embeddings):
        table.set_weights([rng.normal(size=(6, 3)).astype("float32")])
    batch = {"inputs": np.array(inputs), "inputs_mask": np.array(mask, "float32"),
             "positive": np.array([3, 1, 2]), "negatives": np.array([[0, 4], [4, 4], [1, 5]])}
    before = [w.numpy().copy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(y_pred=model(batch))
    expected = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_variables)]
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    logs = tf.function(model.train_step, jit_compile=True)(batch)  # as the trainer runs it with XLA on
    for old, new, gradient in zip(before, model.trainable_weights, expected):
        np.testing.assert_allclose(old - new.numpy(), gradient, atol=1e-6)
    untouched = sorted(set(range(6)) - set(np.array(inputs)[np.array(mask) > 0].tolist()))
    np.testing.assert_array_equal(model.trainable_weights[0].numpy()[untouched], before[0][untouched])
    assert float(logs["loss"]) == pytest.approx(float(loss), rel=1e-6)


def test_glove_weighting_and_loss_equal_numpy():
    counts = np.array([0.5, 10.0, 100.0, 400.0], np.float32)
    np.testing.assert_allclose(np.asarray(glove_weight(counts, 100.0, 0.75)),
                               [0.005**0.75, 0.1**0.75, 1.0, 1.0], rtol=1e-5)
    predictions = np.array([0.0, 2.0, 5.0, 6.0], np.float32)
    expected = np.minimum((counts / 100.0) ** 0.75, 1) * (predictions - np.log(counts)) ** 2
    np.testing.assert_allclose(np.asarray(glove_loss(predictions, counts, 100.0, 0.75)), expected, rtol=1e-5)
    model = GloVe({"vocabulary_size": 4, "embedding_dim": 2})
    model.build()
    w, wc = np.eye(4, 2, dtype="float32"), np.ones((4, 2), "float32")
    for layer, value in zip((model.word_vectors, model.context_vectors, model.word_biases, model.context_biases),
                            (w, wc, np.full((4, 1), 0.5, "float32"), np.zeros((4, 1), "float32"))):
        layer.set_weights([value])
    prediction = model({"rows": np.array([0, 3]), "columns": np.array([2, 1]), "counts": np.ones(2)})
    np.testing.assert_allclose(np.asarray(prediction), [1.5, 0.5])
    np.testing.assert_allclose(model.vectors(), w + wc)


@pytest.mark.parametrize("make", [
    lambda: build_word2vec(Word2VecConfig(vocabulary_size=7, embedding_dim=3, architecture="cbow")),
    lambda: build_glove(GloVeConfig(vocabulary_size=7, embedding_dim=3, x_max=50.0)),
])
def test_keras_round_trip_keeps_config_and_vectors(make, tmp_path):
    model = make()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(loaded.vectors(), model.vectors())


def test_models_refuse_a_missing_vocabulary_size():
    with pytest.raises(ValueError, match="vocabulary_size"):
        build_word2vec(Word2VecConfig())
    with pytest.raises(Exception, match="embedding_dim"):
        Word2VecConfig(embedding_dim=0)


GLOVE_FILE = "the 0.1 0.2 0.3\ncat 1.0 -1.0 0.5\ndog -0.5 0.25 2.0\n"


def test_glove_file_rows_follow_the_vocabulary_with_oov_rows(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE_FILE)
    vocabulary = ["", "[UNK]", "dog", "cat", "unicorn"]
    zeros = load_glove_matrix(path, vocabulary)
    np.testing.assert_array_equal(zeros.matrix[2:4], [[-0.5, 0.25, 2.0], [1.0, -1.0, 0.5]])
    assert (zeros.matrix[[0, 1, 4]] == 0).all() and zeros.found.tolist() == [False, False, True, True, False]
    random = load_glove_matrix(path, vocabulary, oov="random", seed=1)
    assert np.abs(random.matrix[4]).sum() > 0 and random.missing == 3


def test_glove_embedding_frozen_stays_and_trainable_moves(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE_FILE)
    vocabulary = ["", "[UNK]", "the", "cat", "dog"]
    results = {}
    for trainable in (False, True):
        ids = keras.Input((2,), dtype="int32")
        layer = glove_embedding(path, vocabulary, trainable=trainable)
        start = np.asarray(layer.embeddings).copy()
        output = keras.layers.Dense(1)(keras.layers.Flatten()(layer(ids)))
        model = keras.Model(ids, output)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.fit(np.array([[2, 3], [4, 3]]), np.array([[1.0], [-1.0]]), epochs=2, verbose=0)
        results[trainable] = np.abs(np.asarray(layer.embeddings) - start).max()
        np.testing.assert_array_equal(start[3], [1.0, -1.0, 0.5])
    assert results[False] == 0.0 and results[True] > 0.0


@pytest.mark.parametrize("text, message", [
    ("the 0.1 0.2\ncat 0.3\n", r"glove.txt:2: 'cat' has 1 values, earlier lines 2"),
    ("the 0.1 0.2\ncat 0.3 oops\n", r"glove.txt:2: 'cat' has a value that is not a number"),
    ("the\n", r"glove.txt:1: expected 'word v1 v2 ...'"),
])
def test_malformed_glove_lines_are_named(tmp_path, text, message):
    path = tmp_path / "glove.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_glove_matrix(path, ["the", "cat"])


def test_neighbours_analogy_and_group_score_on_hand_made_vectors():
    vectors = WordVectors(("king", "queen", "man", "woman", "apple"),
                          np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1], [-1, 0, 0]], np.float32))
    assert [w for w, _ in nearest_neighbours(vectors, "king", 2)] == ["man", "queen"]
    assert nearest_neighbours(vectors, "king", 1)[0][1] == pytest.approx(1 / np.sqrt(2))
    assert analogy(vectors, "king", "man", "woman", k=1)[0][0] == "queen"
    groups = {"king": "royal", "queen": "royal", "man": "people", "woman": "people"}
    # king's nearest is man (other group); queen's is woman; man's is king; woman's is queen
    assert group_neighbour_score(vectors, groups, k=1) == 0.0
    assert group_neighbour_score(vectors, {"king": "a", "man": "a"}, k=1) == 1.0
    with pytest.raises(ValueError, match="'prince' is not in the vocabulary"):
        nearest_neighbours(vectors, "prince", 3)


def test_projector_files_have_the_projector_format(tmp_path):
    vectors = WordVectors(("a", "b"), np.array([[0.5, -1.0], [2.0, 0.25]]))
    paths = write_projector_files(vectors, tmp_path / "plain")
    assert paths["vectors.tsv"].read_text() == "0.5\t-1\n2\t0.25\n"
    assert paths["metadata.tsv"].read_text() == "a\nb\n"
    grouped = write_projector_files(vectors, tmp_path / "grouped", {"a": "g1"})
    assert grouped["metadata.tsv"].read_text() == "word\tgroup\na\tg1\nb\t-\n"
    back = read_projector_files(tmp_path / "grouped")
    assert back.words == ("a", "b") and np.allclose(back.vectors, vectors.vectors)


def test_word_vectors_model_looks_words_up_in_the_graph_and_round_trips(tmp_path):
    model = word_vectors_model(["x", "y"], np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(np.asarray(model(np.array(["y", "nope", "x"]))), [[3, 4], [0, 0], [1, 2]])
    model.save(tmp_path / "w.keras")
    loaded = keras.saving.load_model(tmp_path / "w.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(np.array(["x"]))), [[1, 2]])
    with pytest.raises(ValueError, match="one vector per word"):
        word_vectors_model(["x"], np.zeros((2, 2)))
