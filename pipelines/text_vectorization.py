"""Raw strings to token ids: a `TextVectorization` fitted on training text, and its datasets.

The fitted layer is meant to sit inside the model, right after a string
`keras.Input`, so the `.keras` file and the exported SavedModel take raw text
and tokenize it exactly as training did. Its vocabulary can also be written
to a plain file (one token per line) and the same layer rebuilt from it.

For variable-length sequences (`sequence_length=None`), `vectorize` maps
unbatched strings to one id sequence each and `bucket_by_length` batches
sequences of similar length together, so a batch is padded only as far as
its own longest sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfdl.pipelines.errors import DataError, where

# Unbatched strings are vectorized this many at a time: one TextVectorization
# call per chunk instead of one per text.
_VECTORIZE_CHUNK = 1024


def fit_text_vectorizer(
    train_texts: Sequence[str] | np.ndarray | tf.data.Dataset,
    *,
    max_tokens: int | None = 20000,
    sequence_length: int | None = None,
    standardize: str | None = "lower_and_strip_punctuation",
    split: str | None = "whitespace",
    ngrams: int | None = None,
    output_mode: str = "int",
    name: str = "text_vectorization",
):
    """A `keras.layers.TextVectorization` whose vocabulary is taken from `train_texts`.

    Pass the training split's texts only: a vocabulary taken from validation
    or test text leaks their words into training and overstates the scores.

    Args:
        train_texts: the training texts (strings, or a dataset of batches of
            strings).
        max_tokens: vocabulary size, padding and [UNK] included (None: every
            token seen).
        sequence_length: pad or cut every output to this length; None keeps
            each batch as long as its longest text (output_mode "int" only).
        standardize: "lower_and_strip_punctuation", "lower",
            "strip_punctuation" or None.
        split: "whitespace", "character" or None.
        ngrams: also index the n-grams up to this n.
        output_mode: "int" (token ids, 0 padding, 1 [UNK]), "multi_hot",
            "count" or "tf_idf".
        name: the layer's name.

    Returns:
        The adapted layer.

    Raises:
        DataError: `train_texts` is empty or holds something that is not a
            string.
    """
    layer = _text_vectorization(max_tokens, sequence_length, standardize, split, ngrams, output_mode, name)
    if isinstance(train_texts, tf.data.Dataset):
        layer.adapt(train_texts)
    else:
        layer.adapt(_as_string_array(train_texts))
    return layer


def save_vocabulary(layer, path: str | Path) -> Path:
    """Write the layer's vocabulary, one token per line in UTF-8, most frequent first.

    Padding and [UNK] are not written: `load_text_vectorizer` puts them back.

    Args:
        layer: a fitted `TextVectorization`.
        path: the file to write.

    Returns:
        The path written.

    Raises:
        DataError: the layer is in "tf_idf" mode (its IDF weights are not in
            the vocabulary: save the model as `.keras` instead), or a token
            holds a line break (e.g. split="character" on multi-line text).
    """
    if layer.get_config()["output_mode"] == "tf_idf":
        raise DataError(
            f"layer {layer.name!r} is in tf_idf mode; a vocabulary file cannot hold its IDF "
            "weights: save the model (or the layer inside one) as .keras instead"
        )
    tokens = [str(t) for t in layer.get_vocabulary(include_special_tokens=False)]
    for index, token in enumerate(tokens):
        if "\n" in token or "\r" in token:
            raise DataError(
                f"{where(record=index)} of the vocabulary, {token!r}, holds a line break and cannot "
                "be written one token per line; standardize the texts so line breaks never "
                "become tokens"
            )
    path = Path(path)
    # Bytes, not text mode: no platform newline translation, so every token
    # reads back exactly.
    path.write_bytes("".join(t + "\n" for t in tokens).encode("utf-8"))
    return path


def load_text_vectorizer(
    vocabulary_path: str | Path,
    *,
    max_tokens: int | None = 20000,
    sequence_length: int | None = None,
    standardize: str | None = "lower_and_strip_punctuation",
    split: str | None = "whitespace",
    ngrams: int | None = None,
    output_mode: str = "int",
    name: str = "text_vectorization",
):
    """Rebuild a fitted `TextVectorization` from a file written by `save_vocabulary`.

    Pass the options the layer was fitted with; the rebuilt layer then gives
    the same outputs on the same texts. The vocabulary is held in the layer,
    so a model saved with it does not need the file again.

    Args:
        vocabulary_path: the file from `save_vocabulary`.
        max_tokens: as for `fit_text_vectorizer`, like `sequence_length`,
            `standardize`, `split`, `ngrams`, `output_mode` and `name`.

    Returns:
        The layer, ready to use.

    Raises:
        DataError: the file is missing, not UTF-8, empty, or holds more
            tokens than `max_tokens` allows.
    """
    path = Path(vocabulary_path)
    if not path.is_file():
        raise DataError(f"{path}: vocabulary file not found; write it with save_vocabulary(layer, path)")
    try:
        content = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: byte offset {error.start} is not valid utf-8; a vocabulary file is UTF-8, one token per line") from None
    tokens = content.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    if not tokens:
        raise DataError(f"{path}: the vocabulary file is empty; save a fitted layer's vocabulary into it")
    # Padding and [UNK] (int mode) or [UNK] alone take the first ids.
    reserved = 2 if output_mode == "int" else 1
    if max_tokens is not None and len(tokens) + reserved > max_tokens:
        raise DataError(
            f"{path}: {len(tokens)} tokens plus {reserved} reserved ids exceed max_tokens={max_tokens}; "
            "pass the max_tokens the layer was fitted with"
        )
    return _text_vectorization(
        max_tokens, sequence_length, standardize, split, ngrams, output_mode, name, vocabulary=tokens
    )


def _text_vectorization(max_tokens, sequence_length, standardize, split, ngrams, output_mode, name, vocabulary=None):
    """The layer both `fit_text_vectorizer` and `load_text_vectorizer` build, from the same options."""
    import keras

    return keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=standardize,
        split=split,
        ngrams=ngrams,
        output_mode=output_mode,
        output_sequence_length=sequence_length,
        vocabulary=vocabulary,
        name=name,
    )


def vectorize(dataset: tf.data.Dataset, vectorizer) -> tf.data.Dataset:
    """Map `(texts, labels)` elements to `(token ids, labels)`.

    Batched texts (shape `(batch,)`) become one id matrix per batch. Unbatched
    texts (shape `()`) become one id sequence each; with `sequence_length=None`
    each sequence is as long as its text, ready for `bucket_by_length`.

    Args:
        dataset: elements `(texts, labels)`, texts a string tensor.
        vectorizer: a fitted `TextVectorization`.

    Returns:
        The mapped dataset, in the same order.

    Raises:
        DataError: the elements are not `(texts, labels)` pairs of strings.
    """
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and getattr(spec[0], "dtype", None) == tf.string):
        raise DataError(f"vectorize needs (texts, labels) elements with string texts, got {spec}")
    if spec[0].shape.rank == 0:
        return _vectorize_unbatched(dataset, vectorizer)
    return dataset.map(lambda texts, labels: (vectorizer(texts), labels), num_parallel_calls=tf.data.AUTOTUNE)


def _vectorize_unbatched(dataset: tf.data.Dataset, vectorizer) -> tf.data.Dataset:
    config = vectorizer.get_config()
    variable_length = config["output_mode"] == "int" and config["output_sequence_length"] is None

    def chunk(texts, labels):
        ids = vectorizer(texts)
        if variable_length and not isinstance(ids, tf.RaggedTensor):
            # The chunk is padded to its longest text; id 0 is only ever
            # padding, so trailing zeros are cut to give each text its length.
            ids = tf.RaggedTensor.from_tensor(ids, padding=0)
        return ids, labels

    cardinality = int(dataset.cardinality())
    mapped = (
        dataset.batch(_VECTORIZE_CHUNK)
        .map(chunk, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        # A row of a ragged batch comes out typed as ragged; as a map output
        # it becomes the dense 1-D tensor that padded batching needs.
        .map(lambda ids, labels: (ids, labels), num_parallel_calls=tf.data.AUTOTUNE)
    )
    if cardinality >= 0:
        # unbatch forgets the length; Keras needs it to know where an epoch ends.
        mapped = mapped.apply(tf.data.experimental.assert_cardinality(cardinality))
    return mapped


def bucket_by_length(
    dataset: tf.data.Dataset,
    *,
    boundaries: Sequence[int],
    batch_size: int,
    pad_id: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batch `(token ids, label)` sequences of similar length, each batch padded to its longest.

    Sequences shorter than `boundaries[0]` share a bucket, those from
    `boundaries[i]` up to (not including) `boundaries[i+1]` the next, and so
    on; a batch is taken from one bucket when it holds `batch_size` sequences
    (and at the end, from what is left). Padding costs at most the spread of
    lengths within one bucket instead of the spread of the whole dataset.

    Args:
        dataset: unbatched elements `(ids, label)`, ids a 1-D integer tensor
            of any length (e.g. from `vectorize` on unbatched strings).
        boundaries: strictly increasing lengths where one bucket ends and the
            next begins.
        batch_size: sequences per batch.
        pad_id: the id that pads sequences (0 for TextVectorization, which
            `Embedding(mask_zero=True)` then masks).
        drop_remainder: drop each bucket's last, smaller batch.

    Returns:
        A dataset of `(ids (batch, longest), labels (batch, ...))`.

    Raises:
        DataError: the boundaries or batch size are invalid, or the elements
            are not unbatched `(ids, label)` pairs.
    """
    boundaries = [int(b) for b in boundaries]
    if not boundaries or boundaries[0] < 1 or any(b >= c for b, c in zip(boundaries, boundaries[1:])):
        raise DataError(f"boundaries must be positive and strictly increasing, got {boundaries}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], tf.TensorSpec) and spec[0].shape.rank == 1):
        raise DataError(
            f"bucket_by_length needs unbatched (ids, label) elements with 1-D ids, got {spec}; "
            "call .unbatch() first, or vectorize unbatched strings"
        )
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        # Labels (a class id, or a per-token sequence) pad with their dtype's zero.
        padding_values=(tf.constant(pad_id, dtype=spec[0].dtype), None),
        drop_remainder=drop_remainder,
    )


def _as_string_array(texts) -> np.ndarray:
    texts = list(texts)
    if not texts:
        raise DataError("no training texts to fit the vocabulary on; pass the training split's texts")
    for index, text in enumerate(texts):
        if not isinstance(text, (str, bytes)):
            raise DataError(
                f"{where(record=index)} of the training texts is {type(text).__name__}, not a string; "
                "fill or drop missing texts before fitting"
            )
    return np.array(texts, dtype=object)
