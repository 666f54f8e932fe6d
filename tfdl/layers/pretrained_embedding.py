"""Published word vectors as a Keras `Embedding`: GloVe text files aligned to a vocabulary.

A GloVe file (glove.6B.100d.txt and the like) holds one word per line
followed by its values, separated by spaces:

    the 0.418 0.24968 -0.41242 ...

`load_glove_matrix` reads one into a matrix whose row i is the vector of
vocabulary[i] (as a `TextVectorization` orders it); vocabulary words missing
from the file get an out-of-vocabulary row (zeros, or random values at the
file's scale so they can be told apart and learned). `glove_embedding`
wraps it in an `Embedding`, frozen (feature extraction) or trainable
(fine-tuning). `word_vectors_model` is the serving form of any word
vectors: strings in, vectors out, the lookup inside the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

OOVRows = Literal["zeros", "random"]


@dataclass(frozen=True)
class GloveMatrix:
    """Vectors aligned to a vocabulary.

    Attributes:
        matrix: float32 [len(vocabulary), dim]; row i belongs to vocabulary[i].
        found: bool per vocabulary word: whether the file had its vector.
    """

    matrix: np.ndarray
    found: np.ndarray

    @property
    def missing(self) -> int:
        return int((~self.found).sum())


def load_glove_matrix(path: Path | str, vocabulary: Sequence[str], oov: OOVRows = "zeros", seed: int = 0,
                      skip: Sequence[str] = ("", "[UNK]")) -> GloveMatrix:
    """Read a GloVe text file into rows aligned to `vocabulary`.

    Args:
        path: the text file (UTF-8, `word v1 v2 ...` per line).
        vocabulary: the word of each row (e.g. `TextVectorization.get_vocabulary()`).
        oov: rows of words the file lacks: `zeros`, or `random` (normal with
            the standard deviation of the file's values, seeded).
        seed: seeds the random rows.
        skip: vocabulary entries that are never looked up in the file
            (padding and the unknown token); they get the OOV row and count
            as not found.

    Returns:
        The matrix and which rows came from the file.

    Raises:
        ValueError: a malformed line (names the file, the line number and
            what was wrong), lines of different lengths, an empty file, or an
            unknown `oov` policy.
        FileNotFoundError: no file at `path`.
    """
    if oov not in ("zeros", "random"):
        raise ValueError(f"oov must be 'zeros' or 'random', got {oov!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no GloVe file there; download e.g. glove.6B.zip from "
                                "https://nlp.stanford.edu/projects/glove/ and give the path of one .txt inside")
    wanted = {w: i for i, w in enumerate(vocabulary) if w not in set(skip)}
    dim, rows, values_seen = None, {}, []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if parts == [""]:
                continue
            word, values = parts[0], parts[1:]
            if not word or not values:
                raise ValueError(f"{path}:{number}: expected 'word v1 v2 ...', got {line[:80]!r}")
            if dim is None:
                dim = len(values)
            elif len(values) != dim:
                raise ValueError(f"{path}:{number}: {word!r} has {len(values)} values, earlier lines {dim}")
            if word in wanted or not values_seen:
                try:
                    vector = np.array(values, dtype=np.float32)
                except ValueError:
                    raise ValueError(f"{path}:{number}: {word!r} has a value that is not a number") from None
                values_seen.append(vector)
                if word in wanted:
                    rows[wanted[word]] = vector
    if dim is None:
        raise ValueError(f"{path}: the file holds no vectors")
    matrix = np.zeros((len(vocabulary), dim), np.float32)
    if oov == "random":
        scale = float(np.std(np.stack(values_seen)))
        matrix = np.random.default_rng(seed).normal(0.0, scale, matrix.shape).astype(np.float32)
    found = np.zeros(len(vocabulary), bool)
    for row, vector in rows.items():
        matrix[row], found[row] = vector, True
    return GloveMatrix(matrix, found)


def glove_embedding(path: Path | str, vocabulary: Sequence[str], trainable: bool = False, oov: OOVRows = "zeros",
                    seed: int = 0, mask_zero: bool = False, name: str = "glove_embedding"):
    """An `Embedding` holding a GloVe file's vectors for `vocabulary`, built and ready.

    Args:
        path, vocabulary, oov, seed: as in `load_glove_matrix`.
        trainable: false freezes the vectors (they stay the published ones);
            true lets training move them.
        mask_zero: id 0 is padding (as in `TextVectorization` output).
        name: the layer name.

    Returns:
        A built `keras.layers.Embedding` with the vectors as its weights
        (saved with the model's weights, not in its config).

    Raises:
        ValueError, FileNotFoundError: as `load_glove_matrix`.
    """
    import keras

    loaded = load_glove_matrix(path, vocabulary, oov=oov, seed=seed)
    layer = keras.layers.Embedding(len(vocabulary), loaded.matrix.shape[1], mask_zero=mask_zero,
                                   trainable=trainable, name=name)
    layer.build((None,))
    layer.set_weights([loaded.matrix])
    return layer


def word_vectors_model(words: Sequence[str], vectors: np.ndarray, input_name: str = "words",
                       name: str = "word_vectors"):
    """A Keras model from words (string [batch]) to their vectors (float32 [batch, dim]).

    The lookup runs in the graph (`StringLookup`), so the exported
    SavedModel answers `{"words": [...]}` with `{"vectors": [...]}`. A word
    not in `words` gets the zero vector (its cosine similarity to anything
    is 0), which clients can test for.

    Args:
        words: the vocabulary, one word per row of `vectors`.
        vectors: [len(words), dim].
        input_name: the served input's name.
        name: the model's name.

    Returns:
        A functional `keras.Model` with output `vectors`.

    Raises:
        ValueError: `vectors` is not [len(words), dim], or a word repeats.
    """
    import keras

    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) != len(words):
        raise ValueError(f"need one vector per word: {len(words)} words, vectors of shape {vectors.shape}")
    if len(set(words)) != len(words):
        raise ValueError("each word must appear once in words")
    text = keras.Input(shape=(), dtype="string", name=input_name)
    ids = keras.layers.StringLookup(vocabulary=list(words), num_oov_indices=1, name="lookup")(text)
    table = keras.layers.Embedding(len(words) + 1, vectors.shape[1], trainable=False, name="vectors")
    output = table(ids)
    model = keras.Model(text, output, name=name)
    # Row 0 is StringLookup's out-of-vocabulary id.
    table.set_weights([np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors])])
    return model
