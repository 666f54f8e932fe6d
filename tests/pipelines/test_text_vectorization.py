import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.text_vectorization import (
    bucket_by_length,
    fit_text_vectorizer,
    load_text_vectorizer,
    save_vocabulary,
    vectorize,
)

# "the" 3 times, "cat" twice, "sat" once: the vocabulary order is fixed by frequency.
TRAIN = ["The cat sat.", "the CAT", "the"]
VALIDATION = ["the dog sat!", "A bird"]


def ids(layer, texts):
    return np.asarray(layer(tf.constant(texts))).tolist()


def test_vocabulary_comes_from_training_texts_only():
    layer = fit_text_vectorizer(TRAIN)
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat"]
    vocabulary = set(layer.get_vocabulary())
    only_in_validation = {"dog", "a", "bird"}
    assert not vocabulary & only_in_validation
    # Validation words are unknown (1); each batch pads to its longest text.
    assert ids(layer, VALIDATION) == [[2, 1, 4], [1, 1, 0]]


def test_fixed_sequence_length_pads_and_cuts():
    layer = fit_text_vectorizer(TRAIN, sequence_length=3)
    assert ids(layer, ["cat", "the cat sat the cat"]) == [[3, 0, 0], [2, 3, 4]]


def test_max_tokens_keeps_the_most_frequent():
    layer = fit_text_vectorizer(TRAIN, max_tokens=4)
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ngrams": 2, "sequence_length": 6},
        {"output_mode": "multi_hot", "max_tokens": None},
        {"standardize": "lower", "split": "character", "output_mode": "count"},
    ],
)
def test_saved_vocabulary_rebuilds_an_identical_layer(tmp_path, options):
    fitted = fit_text_vectorizer(TRAIN, **options)
    path = save_vocabulary(fitted, tmp_path / "vocab.txt")
    rebuilt = load_text_vectorizer(path, **options)
    assert rebuilt.get_vocabulary() == fitted.get_vocabulary()
    texts = TRAIN + VALIDATION + ["sat sat cat the zebra"]
    np.testing.assert_array_equal(np.asarray(rebuilt(tf.constant(texts))), np.asarray(fitted(tf.constant(texts))))


def test_vocabulary_file_is_one_token_per_line_without_special_tokens(tmp_path):
    fitted = fit_text_vectorizer(["naïve café naïve", "café naïve"])
    path = save_vocabulary(fitted, tmp_path / "vocab.txt")
    assert path.read_bytes() == "naïve\ncafé\n".encode("utf-8")


def test_tf_idf_and_multiline_tokens_cannot_be_saved(tmp_path):
    tf_idf = fit_text_vectorizer(TRAIN, output_mode="tf_idf")
    with pytest.raises(DataError, match="tf_idf mode.*save the model.*as .keras"):
        save_vocabulary(tf_idf, tmp_path / "v.txt")
    characters = fit_text_vectorizer(["ab\nab"], standardize=None, split="character")
    with pytest.raises(DataError, match=r"record \d of the vocabulary, '\\n', holds a line break"):
        save_vocabulary(characters, tmp_path / "v.txt")


def test_loading_a_bad_vocabulary_file(tmp_path):
    with pytest.raises(DataError, match=r"missing\.txt: vocabulary file not found"):
        load_text_vectorizer(tmp_path / "missing.txt")
    (tmp_path / "big.txt").write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"big\.txt: 3 tokens plus 2 reserved ids exceed max_tokens=4"):
        load_text_vectorizer(tmp_path / "big.txt", max_tokens=4)
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="vocabulary file is empty"):
        load_text_vectorizer(tmp_path / "empty.txt")


def test_fitting_on_bad_texts():
    with pytest.raises(DataError, match="no training texts"):
        fit_text_vectorizer([])
    with pytest.raises(DataError, match="record 1 of the training texts is float, not a string"):
        fit_text_vectorizer(["fine", float("nan")])


def test_fitting_on_a_dataset_of_batches():
    layer = fit_text_vectorizer(tf.data.Dataset.from_tensor_slices(TRAIN).batch(2))
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat"]


def test_vectorize_batched_texts_keeps_labels_and_order():
    layer = fit_text_vectorizer(TRAIN)
    dataset = tf.data.Dataset.from_tensor_slices((["cat", "the cat sat", "dog"], [0, 1, 2])).batch(2)
    batches = [(x.tolist(), y.tolist()) for x, y in vectorize(dataset, layer).as_numpy_iterator()]
    assert batches == [([[3, 0, 0], [2, 3, 4]], [0, 1]), ([[1]], [2])]


def test_vectorize_unbatched_texts_gives_each_its_own_length():
    layer = fit_text_vectorizer(TRAIN)
    texts = ["cat", "the cat sat", "", "sat the"]
    dataset = vectorize(tf.data.Dataset.from_tensor_slices((texts, [0, 1, 2, 3])), layer)
    assert dataset.element_spec[0] == tf.TensorSpec((None,), tf.int64)
    assert int(dataset.cardinality()) == 4
    got = [(x.tolist(), int(y)) for x, y in dataset.as_numpy_iterator()]
    assert got == [([3], 0), ([2, 3, 4], 1), ([], 2), ([4, 2], 3)]


def test_vectorize_unbatched_texts_keeps_a_fixed_sequence_length():
    layer = fit_text_vectorizer(TRAIN, sequence_length=2)
    dataset = vectorize(tf.data.Dataset.from_tensor_slices((["cat", "the cat sat"], [0, 1])), layer)
    assert [x.tolist() for x, _ in dataset.as_numpy_iterator()] == [[3, 0], [2, 3]]


def test_vectorize_unbatched_matches_the_batched_ids_across_chunks():
    layer = fit_text_vectorizer(TRAIN)
    rng = np.random.default_rng(0)
    words = np.array(["the", "cat", "sat", "dog"])
    texts = [" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(1100)]
    dataset = vectorize(tf.data.Dataset.from_tensor_slices((texts, np.arange(1100))), layer)
    # All texts at once, padded to the longest, then each cut to its word count.
    padded = np.asarray(layer(tf.constant(texts)))
    expected = [row[: len(text.split())].tolist() for row, text in zip(padded, texts)]
    got = list(dataset.as_numpy_iterator())
    assert [x.tolist() for x, _ in got] == expected
    assert [int(y) for _, y in got] == list(range(1100))


def test_vectorize_rejects_elements_without_labels():
    with pytest.raises(DataError, match=r"needs \(texts, labels\) elements"):
        vectorize(tf.data.Dataset.from_tensor_slices(["a"]), fit_text_vectorizer(TRAIN))


def lengths_dataset(lengths):
    """Unbatched (ids, label) pairs: sequence i is `lengths[i]` ids, each i + 1."""
    ragged = tf.ragged.constant([[i + 1] * n for i, n in enumerate(lengths)], dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices((ragged, np.arange(len(lengths)))).map(lambda x, y: (x, y))


def test_bucket_by_length_pads_each_batch_to_its_own_longest():
    lengths = [1, 4, 2, 7, 3, 5, 1]
    dataset = bucket_by_length(lengths_dataset(lengths), boundaries=[3, 6], batch_size=2)
    batches = [(x.tolist(), y.tolist()) for x, y in dataset.as_numpy_iterator()]
    # Full batches come as soon as a bucket fills; the rest at the end.
    assert batches[:2] == [([[1, 0], [3, 3]], [0, 2]), ([[2, 2, 2, 2], [5, 5, 5, 0]], [1, 4])]
    assert sorted(batches[2:], key=lambda b: b[1]) == [
        ([[4] * 7], [3]),
        ([[6] * 5], [5]),
        ([[7]], [6]),
    ]
    # Same input, same batches.
    assert [(x.tolist(), y.tolist()) for x, y in dataset.as_numpy_iterator()] == batches


def test_bucket_by_length_pad_id_and_drop_remainder():
    dataset = bucket_by_length(lengths_dataset([1, 4, 2, 7, 3, 5, 1]), boundaries=[3, 6], batch_size=2, pad_id=-1, drop_remainder=True)
    batches = [x.tolist() for x, _ in dataset.as_numpy_iterator()]
    assert batches == [[[1, -1], [3, 3]], [[2, 2, 2, 2], [5, 5, 5, -1]]]


def test_bucket_by_length_after_vectorize():
    layer = fit_text_vectorizer(TRAIN)
    texts = ["cat", "the cat sat the cat sat", "sat", "the cat sat the"]
    sequences = vectorize(tf.data.Dataset.from_tensor_slices((texts, [0, 1, 2, 3])), layer)
    batches = [(x.tolist(), y.tolist()) for x, y in bucket_by_length(sequences, boundaries=[3], batch_size=2).as_numpy_iterator()]
    assert batches == [([[3], [4]], [0, 2]), ([[2, 3, 4, 2, 3, 4], [2, 3, 4, 2, 0, 0]], [1, 3])]


def test_bucket_by_length_rejects_bad_arguments():
    sequences = lengths_dataset([1, 2])
    with pytest.raises(DataError, match=r"strictly increasing, got \[5, 5\]"):
        bucket_by_length(sequences, boundaries=[5, 5], batch_size=2)
    with pytest.raises(DataError, match="batch_size must be >= 1, got 0"):
        bucket_by_length(sequences, boundaries=[5], batch_size=0)
    batched = tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), np.int64), np.arange(4))).batch(2)
    with pytest.raises(DataError, match=r"needs unbatched \(ids, label\) elements.*call \.unbatch\(\)"):
        bucket_by_length(batched, boundaries=[5], batch_size=2)


def test_model_with_the_vectorizer_takes_raw_strings_after_save_and_export(tmp_path):
    vectorizer = fit_text_vectorizer(TRAIN + ["dogs bark at the cat"], max_tokens=50)
    text = keras.Input(shape=(), dtype="string", name="text")
    x = vectorizer(text)
    x = keras.layers.Embedding(50, 8, mask_zero=True)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(text, keras.layers.Dense(3)(x))
    texts = tf.constant(["the cat", "dogs bark at the cat sat", "zebra"])
    expected = np.asarray(model(texts))
    # Masking: a text alone (no padding) gives what it gives padded in a batch.
    np.testing.assert_allclose(np.asarray(model(texts[:1])), expected[:1], rtol=1e-6)

    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(reloaded(texts)), expected)

    model.export(str(tmp_path / "saved_model"), format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    np.testing.assert_allclose(served.serve(texts).numpy(), expected, rtol=1e-6, atol=1e-7)
    signature = served.signatures["serving_default"]
    assert signature.structured_input_signature[1] == {"text": tf.TensorSpec((None,), tf.string, name="text")}
    np.testing.assert_allclose(signature(text=texts)["output_0"].numpy(), expected, rtol=1e-6, atol=1e-7)
