"""BERT-style pretraining on unlabelled text makes a small labelled set go further."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from pydoc_data.topics import topics

from tfdl.losses import MaskedSparseCategoricalCrossentropy
from tfdl.models import build_model
from tfdl.models.bert import FIRST_WORD, MASK, build_bert_classifier, build_bert_mlm
from tfdl.pipelines.masked_language_modeling import mask_tokens, masked_lm_dataset
from tfdl.pipelines.text_corpus import sentences
from tfdl.pipelines.word_tokenizer import WordTokenizer

LENGTH = 32
TOPICS = ["debugger", "string-methods", "compound"]  # which help topic a sentence comes from


def test_masking_selects_fifteen_percent_and_splits_them_80_10_10():
    ids = tf.constant(np.random.default_rng(0).integers(FIRST_WORD, 500, size=(400, 50)), tf.int32)
    ids = tf.concat([tf.fill((400, 1), 2), ids, tf.zeros((400, 10), tf.int32)], axis=1)  # [CLS] words padding
    masked, labels = mask_tokens(ids, tf.constant([0, 0], tf.int64), mask_id=MASK, vocabulary_size=500, first_word_id=FIRST_WORD)
    masked, labels, ids = masked.numpy(), labels.numpy(), ids.numpy()
    selected = labels != 0
    assert not selected[:, 0].any() and not selected[:, -10:].any()  # never [CLS] or padding
    assert abs(selected[:, 1:51].mean() - 0.15) < 0.01
    np.testing.assert_array_equal(labels[selected], ids[selected])
    as_mask = (masked[selected] == MASK).mean()
    kept = (masked[selected] == ids[selected]).mean()
    assert abs(as_mask - 0.8) < 0.03 and abs(kept - 0.1) < 0.03  # kept includes the rare random == original
    np.testing.assert_array_equal(masked[~selected], ids[~selected])
    again, _ = mask_tokens(tf.constant(ids), tf.constant([0, 0], tf.int64), mask_id=MASK, vocabulary_size=500, first_word_id=FIRST_WORD)
    np.testing.assert_array_equal(again.numpy(), masked)


@pytest.fixture(scope="module")
def labelled_and_pretraining():
    rng = np.random.default_rng(0)
    train, test = [], []
    for label, topic in enumerate(TOPICS):
        texts = list(rng.permutation(sentences(topics[topic])))
        train += [(t, label) for t in texts[:12]]
        test += [(t, label) for t in texts[12:]]
    # Unlabelled text: all the help topics, with every test sentence cut out.
    corpus = " ".join(topics[k] for k in sorted(topics))
    for text, _ in test:
        corpus = corpus.replace(text, " ")
    words = re.findall(r"[a-z]+", corpus.lower())
    chunks = [" ".join(words[i : i + LENGTH - 1]) for i in range(0, len(words) - LENGTH, 16)]
    return train, test, chunks


def test_pretrained_encoder_fine_tunes_better_than_training_from_scratch(labelled_and_pretraining, tmp_path):
    train, test, chunks = labelled_and_pretraining
    tokenizer = WordTokenizer(chunks, max_words=1000, length=LENGTH)
    config = {"vocabulary_size": tokenizer.vocabulary_size, "max_length": LENGTH, "embed_dim": 64,
              "num_heads": 4, "num_layers": 2, "intermediate_dim": 128, "dropout": 0.1}

    keras.utils.set_random_seed(1)
    encoder = build_model("bert", config)
    mlm = build_bert_mlm(encoder)
    pretraining = tokenizer.encode(chunks)
    data = masked_lm_dataset(pretraining, batch_size=64, mask_id=MASK, vocabulary_size=tokenizer.vocabulary_size,
                             first_word_id=FIRST_WORD, seed=1)
    mlm.compile(keras.optimizers.Adam(2e-3), MaskedSparseCategoricalCrossentropy(from_logits=True), steps_per_execution=8)
    history = mlm.fit(data, epochs=10, steps_per_epoch=int(np.ceil(len(pretraining) / 64)), verbose=0).history
    # The masked words are predicted from their context, not only from how common they are.
    words = pretraining[(pretraining == 1) | (pretraining >= FIRST_WORD)]
    frequencies = np.bincount(words) / len(words)
    unigram_entropy = -np.sum(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0]))
    assert history["loss"][-1] < unigram_entropy - 0.5, (history["loss"][-1], unigram_entropy)

    x_train, y_train = tokenizer.encode([t for t, _ in train]), np.array([y for _, y in train])
    x_test, y_test = tokenizer.encode([t for t, _ in test]), np.array([y for _, y in test])

    def fine_tune(encoder) -> tuple[float, object]:
        classifier = build_bert_classifier(encoder, num_classes=len(TOPICS))
        classifier.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy")
        classifier.fit(x_train, y_train, epochs=30, batch_size=12, verbose=0)
        return float(np.mean(np.asarray(classifier(x_test)).argmax(1) == y_test)), classifier

    pretrained, classifier = fine_tune(encoder)
    keras.utils.set_random_seed(1)
    scratch, _ = fine_tune(build_model("bert", config))
    assert pretrained >= scratch + 0.07, (pretrained, scratch)
    assert pretrained > 1 / len(TOPICS) + 0.2

    classifier.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x_test[:8])), np.asarray(classifier(x_test[:8])), atol=1e-5)
