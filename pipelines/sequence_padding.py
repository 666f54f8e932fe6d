"""Sequences of different lengths to one padded array, with the mask that says which steps are real.

A recurrent or attention model needs a rectangular batch; the mask lets it
ignore the padding, so a padded sequence gives the same result as the
sequence alone. Feed the mask to the model (or let `keras.layers.Masking`
rebuild it from `pad_value`) rather than letting the padding count as data.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from tfdl.pipelines.errors import DataError

End = Literal["pre", "post"]


def pad_sequences(
    sequences: Sequence[np.ndarray | list],
    *,
    max_length: int | None = None,
    pad_value: float = 0.0,
    dtype="float32",
    truncating: End = "post",
    padding: End = "post",
) -> tuple[np.ndarray, np.ndarray]:
    """Pad (and cut) sequences to one length.

    Unlike `keras.utils.pad_sequences` (which pads and cuts at the front),
    both default to "post": real steps come first, which is what cuDNN's fast
    LSTM/GRU kernel needs to run on masked input. "post" truncation keeps a
    sequence's first `max_length` steps, "pre" its last.

    `keras.layers.Masking(mask_value=pad_value)` treats a real step whose
    features all equal `pad_value` as padding; the returned mask does not, so
    pass it to the model when real steps can equal `pad_value`.

    Args:
        sequences: each of shape `(length, *features)`; every sequence has the
            same feature shape.
        max_length: the padded length; None: the longest sequence's length.
        pad_value: the value padded steps are filled with.
        dtype: dtype of the padded array.
        truncating: cut longer sequences at the "pre" (front) or "post" end.
        padding: put the padding "pre" (before) or "post" (after) the steps.

    Returns:
        `(padded, mask)`: padded of shape `(N, T, *features)` and boolean mask
        of shape (N, T), True where a step is real.

    Raises:
        DataError: a sequence is not an array of numbers, its feature shape
            differs from the others', or an argument is invalid.
    """
    for argument, value in (("truncating", truncating), ("padding", padding)):
        if value not in ("pre", "post"):
            raise DataError(f"{argument} must be 'pre' or 'post', got {value!r}")
    if max_length is not None and max_length < 1:
        raise DataError(f"max_length must be >= 1 or None, got {max_length}")
    arrays = [_as_steps(seq, index, dtype) for index, seq in enumerate(sequences)]
    feature_shape = _common_feature_shape(arrays)
    length = max_length if max_length is not None else max((len(a) for a in arrays), default=0)

    padded = np.full((len(arrays), length, *feature_shape), pad_value, dtype=dtype)
    mask = np.zeros((len(arrays), length), dtype=bool)
    for row, steps in enumerate(arrays):
        steps = steps[:length] if truncating == "post" else steps[max(len(steps) - length, 0) :]
        n = len(steps)
        if n == 0:
            continue
        span = slice(0, n) if padding == "post" else slice(length - n, length)
        padded[row, span] = steps.reshape((n, *feature_shape))
        mask[row, span] = True
    return padded, mask


def _as_steps(sequence, index: int, dtype) -> np.ndarray:
    try:
        steps = np.asarray(sequence, dtype=dtype)
    except (ValueError, TypeError) as error:
        raise DataError(
            f"sequence {index} cannot be read as an array of {np.dtype(dtype).name} "
            f"({error}); every step of a sequence needs the same shape and numeric values"
        ) from None
    if steps.ndim == 0:
        raise DataError(f"sequence {index} is a single value, not a sequence; wrap it in a list")
    return steps


def _common_feature_shape(arrays: list[np.ndarray]) -> tuple[int, ...]:
    # An empty sequence ([] or shape (0, ...)) fits any feature shape.
    shapes = [(i, a.shape[1:]) for i, a in enumerate(arrays) if len(a) > 0]
    if not shapes:
        return ()
    first_index, first_shape = shapes[0]
    for index, shape in shapes[1:]:
        if shape != first_shape:
            raise DataError(
                f"sequence {index} has steps of shape {shape} but sequence {first_index} has "
                f"{first_shape}; every step of every sequence needs the same feature shape"
            )
    return first_shape
