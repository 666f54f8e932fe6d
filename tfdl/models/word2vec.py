"""word2vec (`word2vec`): skip-gram or CBOW with negative sampling (Mikolov et al. 2013).

Two tables of vectors: `embeddings` (a word as input, the vectors you keep)
and `context_embeddings` (a word as the thing predicted). An example is some
input words (one centre word for skip-gram, the window around a word for
CBOW), the word to predict (`positive`) and `negatives` noise words; the
input is the masked mean of its words' vectors h, and the loss is

    -log sigmoid(h . u_positive) - sum_k log sigmoid(-h . u_negative_k)

computed in `compute_loss` (evaluation) and differentiated by hand in
`train_step`, which hands the optimizer only the table rows a batch touches;
both divide by the replicas (`replica_mean`), so it trains under any
strategy. The feed is `tfdl.pipelines.skipgram.word2vec_dataset`, whose
settings (window, negatives, subsampling) live in this config, as gensim
keeps them on its `Word2Vec`.
"""

from __future__ import annotations

from typing import Literal

import keras
import numpy as np
from keras import ops
from pydantic import Field

from tfdl.losses.replica_mean import replica_mean
from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class Word2VecConfig(StrictModel):
    """Configuration of `build_word2vec` and of its feed.

    Attributes:
        vocabulary_size: words with a vector; filled from the data when left out.
        architecture: `skipgram` (a word predicts each context word) or `cbow`
            (the mean of the context predicts the word).
        embedding_dim: length of each word vector.
        window: the largest context radius.
        negatives: noise words per example.
        sample: subsampling threshold t (0 keeps every word); see
            `tfdl.pipelines.subsampling`.
        negative_power: noise words drawn by count ** power.
        shrink_window: draw each word's radius from 1..window, as word2vec does.
        min_count: words seen fewer times in training are dropped.
        max_words: keep at most this many of the most frequent words.
        seed: seeds the initial vectors.
    """

    vocabulary_size: int | None = Field(None, ge=1)
    architecture: Literal["skipgram", "cbow"] = "skipgram"
    embedding_dim: int = Field(50, ge=1, le=4096)
    window: int = Field(5, ge=1, le=100)
    negatives: int = Field(5, ge=1, le=100)
    sample: float = Field(1e-3, ge=0.0, le=1.0)
    negative_power: float = Field(0.75, ge=0.0, le=2.0)
    shrink_window: bool = True
    min_count: int = Field(5, ge=1)
    max_words: int | None = Field(None, ge=1)
    seed: int = 0


@keras.saving.register_keras_serializable(package="tfdl")
class Word2Vec(keras.Model):
    """Word vectors trained by negative sampling.

    `model(batch)` takes a feed batch (`inputs`, `inputs_mask`, `positive`,
    `negatives`) and returns the logits [batch, 1 + negatives], the true
    word's first. `model.vectors()` is the learned table [vocabulary, dim].

    Example:
    >>> model = Word2Vec({"vocabulary_size": 10, "embedding_dim": 4})
    >>> batch = {"inputs": np.array([[1]]), "inputs_mask": np.ones((1, 1), "float32"),
    ...          "positive": np.array([2]), "negatives": np.array([[3, 4]])}
    >>> tuple(model(batch).shape)
    (1, 3)
    """

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.config = Word2VecConfig(**config)
        c = self.config
        if c.vocabulary_size is None:
            raise ValueError("Word2Vec needs vocabulary_size (the run fills it from the data)")
        # word2vec.c's start: small uniform input vectors, zero output vectors.
        bound = 0.5 / c.embedding_dim
        self.embeddings = keras.layers.Embedding(
            c.vocabulary_size, c.embedding_dim, name="embeddings",
            embeddings_initializer=keras.initializers.RandomUniform(-bound, bound, seed=c.seed),
        )
        self.context_embeddings = keras.layers.Embedding(
            c.vocabulary_size, c.embedding_dim, embeddings_initializer="zeros", name="context_embeddings"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape=None):
        self.embeddings.build((None,))
        self.context_embeddings.build((None,))
        self.built = True

    def call(self, batch, training=False):
        hidden, _ = self._hidden(batch)
        return self._logits(hidden, self.context_embeddings(self._candidates(batch)))

    @staticmethod
    def _candidates(batch):
        positive = ops.expand_dims(ops.cast(batch["positive"], "int32"), 1)
        return ops.concatenate([positive, ops.cast(batch["negatives"], "int32")], axis=1)

    def _hidden(self, batch):
        """The masked mean h of the input vectors, and each input's weight in it ([batch, C])."""
        mask = ops.cast(batch["inputs_mask"], self.compute_dtype)
        weights = mask / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        return ops.sum(self.embeddings(batch["inputs"]) * weights[..., None], axis=1), weights

    @staticmethod
    def _logits(hidden, candidate_vectors):
        return ops.einsum("bd,bkd->bk", hidden, candidate_vectors)

    def train_step(self, data):
        """One optimizer step on a feed batch, its gradient written out as rows of the two tables.

        With g = sigmoid(logits) - label (1 for the true word, 0 for the noise
        words), scaled by d loss / d loss_b, the gradient is g_k h for
        candidate k's row of `context_embeddings` and w_c sum_k g_k u_k for
        input c's row of `embeddings` (w_c: its weight in the mean h). The
        optimizer gets only those rows (tf.IndexedSlices): plain SGD updates
        the touched rows alone, as word2vec.c does, and an optimizer with
        dense slots (Adam) adds them into a dense gradient itself. The graph is
        the forward pass plus a few products, with no tape; under XLA (the
        configs' `jit_compile: true`) a step costs about a fifth of one
        without it on CPU.
        """
        inputs = ops.cast(data["inputs"], "int32")
        candidates = self._candidates(data)
        hidden, weights = self._hidden(data)
        candidate_vectors = self.context_embeddings(candidates)
        logits = self._logits(hidden, candidate_vectors)
        self.loss_tracker.update_state(ops.mean(negative_sampling_loss(logits)))
        # d replica_mean(loss) / d loss_b, times the loss scale of a mixed-precision optimizer.
        examples = ops.cast(ops.shape(logits)[0], logits.dtype)
        per_example = self.optimizer.scale_loss(replica_mean(ops.ones_like(logits[:, 0])) / examples)
        labels = ops.cast(ops.arange(ops.shape(logits)[1]) == 0, logits.dtype)
        g = (ops.sigmoid(logits) - labels) * per_example
        hidden_grad = ops.sum(g[..., None] * candidate_vectors, axis=1)
        dim = self.config.embedding_dim
        input_rows = ops.reshape(weights[..., None] * hidden_grad[:, None, :], (-1, dim))
        context_rows = ops.reshape(g[..., None] * hidden[:, None, :], (-1, dim))
        self.optimizer.apply(
            [_rows(input_rows, inputs, self.embeddings.embeddings), _rows(context_rows, candidates,
                                                                          self.context_embeddings.embeddings)],
            [self.embeddings.embeddings, self.context_embeddings.embeddings],
        )
        return {m.name: m.result() for m in self.metrics}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_example = negative_sampling_loss(y_pred)
        self.loss_tracker.update_state(ops.mean(per_example))
        return replica_mean(per_example)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def vectors(self) -> np.ndarray:
        """The learned word vectors (the input table), [vocabulary_size, embedding_dim]."""
        return np.asarray(self.embeddings.embeddings)

    def get_config(self):
        return {**super().get_config(), "config": self.config.model_dump(mode="json")}


def _rows(values, ids, table):
    """Gradient rows `values` [n, dim] of the table rows `ids` (any shape, n ids), as tf.IndexedSlices."""
    import tensorflow as tf

    dense_shape = tf.constant(tuple(table.shape), tf.int32)
    return tf.IndexedSlices(ops.cast(values, table.dtype), ops.reshape(ids, (-1,)), dense_shape)


def negative_sampling_loss(logits):
    """Per-example loss of logits [batch, 1 + k] whose first column is the true word's.

    -log sigmoid(l_0) - sum_k log sigmoid(-l_k), written with softplus
    (-log sigmoid(x) = softplus(-x)) so large logits do not overflow.
    """
    return ops.softplus(-logits[:, 0]) + ops.sum(ops.softplus(logits[:, 1:]), axis=1)


@register_model("word2vec", Word2VecConfig, task="embedding")
def build_word2vec(config: Word2VecConfig) -> Word2Vec:
    """Build word2vec; train it on `word2vec_dataset` batches (its train_step computes the loss)."""
    model = Word2Vec(config.model_dump(mode="json"), name="word2vec")
    model.build()
    return model
