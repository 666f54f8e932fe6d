"""GloVe (`glove`): word vectors fitted to the log of a co-occurrence matrix (Pennington et al. 2014).

For each non-zero cell X_ij of the co-occurrence matrix
(`tfdl.pipelines.cooccurrence`) the model predicts
w_i . w~_j + b_i + b~_j and the loss is the weighted squared error against
log X_ij:

    f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,
    f(x) = (x / x_max) ** alpha  for x < x_max, else 1

so rare, noisy pairs count less and frequent ones do not dominate. The
vectors kept are w + w~ (the paper's choice: the two tables are symmetric
roles of one matrix). The loss is computed in `compute_loss`, so the
standard `train_step` trains it under any strategy.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from pydantic import Field

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class GloVeConfig(StrictModel):
    """Configuration of `build_glove` and of its co-occurrence counts.

    Attributes:
        vocabulary_size: words with a vector; filled from the data when left out.
        embedding_dim: length of each word vector.
        x_max: counts at or above it get full weight (100 in the paper).
        alpha: exponent of the weighting below x_max (0.75 in the paper).
        window: context radius of the co-occurrence counts.
        distance_weighting: a pair at distance d counts 1 / d.
        min_count: words seen fewer times in training are dropped.
        max_words: keep at most this many of the most frequent words.
        seed: seeds the initial vectors.
    """

    vocabulary_size: int | None = Field(None, ge=1)
    embedding_dim: int = Field(50, ge=1, le=4096)
    x_max: float = Field(100.0, gt=0.0)
    alpha: float = Field(0.75, ge=0.0, le=2.0)
    window: int = Field(10, ge=1, le=100)
    distance_weighting: bool = True
    min_count: int = Field(5, ge=1)
    max_words: int | None = Field(None, ge=1)
    seed: int = 0


def glove_weight(counts, x_max: float, alpha: float):
    """f(x) = min(1, (x / x_max) ** alpha): the weight of a cell with count x."""
    return ops.minimum(ops.power(ops.cast(counts, "float32") / x_max, alpha), 1.0)


def glove_loss(predictions, counts, x_max: float, alpha: float):
    """Per-cell loss f(X) (prediction - log X)^2 for counts X > 0."""
    counts = ops.cast(counts, "float32")
    return glove_weight(counts, x_max, alpha) * ops.square(predictions - ops.log(counts))


@keras.saving.register_keras_serializable(package="tfdl")
class GloVe(keras.Model):
    """Two tables of vectors and biases fitted to log co-occurrence counts.

    `model(batch)` takes `{"rows", "columns", "counts"}` (counts unused in
    the prediction) and returns w_row . w~_column + b_row + b~_column.
    `model.vectors()` is w + w~, [vocabulary, dim].

    Example:
    >>> model = GloVe({"vocabulary_size": 5, "embedding_dim": 3})
    >>> batch = {"rows": np.array([0, 1]), "columns": np.array([2, 3]), "counts": np.array([1.0, 4.0])}
    >>> tuple(model(batch).shape)
    (2,)
    """

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.config = GloVeConfig(**config)
        c = self.config
        if c.vocabulary_size is None:
            raise ValueError("GloVe needs vocabulary_size (the run fills it from the data)")
        # The reference implementation's start: uniform in +-0.5 / dim.
        bound = 0.5 / c.embedding_dim

        def table(name, dim, offset):
            init = keras.initializers.RandomUniform(-bound, bound, seed=c.seed + offset)
            return keras.layers.Embedding(c.vocabulary_size, dim, embeddings_initializer=init, name=name)

        self.word_vectors = table("word_vectors", c.embedding_dim, 0)
        self.context_vectors = table("context_vectors", c.embedding_dim, 1)
        self.word_biases = table("word_biases", 1, 2)
        self.context_biases = table("context_biases", 1, 3)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape=None):
        for layer in (self.word_vectors, self.context_vectors, self.word_biases, self.context_biases):
            layer.build((None,))
        self.built = True

    def call(self, batch, training=False):
        rows, columns = ops.cast(batch["rows"], "int32"), ops.cast(batch["columns"], "int32")
        dot = ops.sum(self.word_vectors(rows) * self.context_vectors(columns), axis=-1)
        return dot + self.word_biases(rows)[:, 0] + self.context_biases(columns)[:, 0]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        from tfdl.losses.replica_mean import replica_mean

        per_cell = glove_loss(y_pred, x["counts"], self.config.x_max, self.config.alpha)
        self.loss_tracker.update_state(ops.mean(per_cell))
        return replica_mean(per_cell)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def vectors(self) -> np.ndarray:
        """w + w~ for every word, [vocabulary_size, embedding_dim]."""
        return np.asarray(self.word_vectors.embeddings) + np.asarray(self.context_vectors.embeddings)

    def get_config(self):
        return {**super().get_config(), "config": self.config.model_dump(mode="json")}


@register_model("glove", GloVeConfig, task="embedding")
def build_glove(config: GloVeConfig) -> GloVe:
    """Build GloVe; train it on `glove_dataset` batches of co-occurrence cells."""
    model = GloVe(config.model_dump(mode="json"), name="glove")
    model.build()
    return model
