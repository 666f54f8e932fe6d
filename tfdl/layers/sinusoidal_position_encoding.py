"""SinusoidalPositionEncoding: the fixed sine/cosine position encoding of the Transformer.

Gives a sequence model the position of each token without trainable weights,
as in "Attention Is All You Need" (Vaswani et al., 2017). The output is added
to token embeddings; `start_index` shifts the positions for incremental
(cached) decoding.
"""

from __future__ import annotations

import keras
from keras import ops


def check_sequence_fits(layer_name: str, sequence_length, start_index, max_length: int) -> None:
    """Raise if a statically known sequence (from a static start) passes `max_length`.

    Shared by the position layers; a length or start known only at run time
    is not checked here.
    """
    if sequence_length is None or not isinstance(start_index, int):
        return
    if start_index < 0:
        raise ValueError(f"{layer_name}: start_index must be >= 0; got {start_index}.")
    if start_index + sequence_length > max_length:
        raise ValueError(
            f"{layer_name}: positions {start_index}..{start_index + sequence_length - 1} "
            f"(sequence length {sequence_length}, start_index {start_index}) do not fit "
            f"max_length={max_length}. Use sequences of at most {max_length - start_index} "
            f"positions here, or build the layer with max_length >= {start_index + sequence_length}."
        )


@keras.saving.register_keras_serializable(package="tfdl")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """The fixed sinusoidal position encoding of the Transformer.

    For an input of shape `(batch, seq, d)` returns, broadcast over the batch,

        PE[pos, 2i]     = sin(pos / max_wavelength ** (2i / d))
        PE[pos, 2i + 1] = cos(pos / max_wavelength ** (2i / d))

    for pos = start_index .. start_index + seq - 1. The input supplies only
    the shape (and dtype); add the output to it yourself. The sequence
    length may vary from call to call (an input of shape `(None, d)` works);
    a length known when the layer is called that exceeds `max_length` is an
    error. A mask on the input passes through unchanged.

    Args:
        max_length: int. The largest number of positions (start_index + seq)
            the layer accepts. Required.
        max_wavelength: float. The longest wavelength of the sine/cosine
            curves. Defaults to `10000`, as in the paper.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a float tensor `(batch, seq, d)` with d even.
        start_index: int or scalar int tensor, the position of the first
            element. Defaults to `0`.

    Example:

    >>> import numpy as np
    >>> embedded = np.zeros((2, 5, 8), "float32")
    >>> encoding = SinusoidalPositionEncoding(max_length=16)(embedded)
    >>> tuple(encoding.shape), float(encoding[0, 0, 1])
    ((2, 5, 8), 1.0)
    """

    def __init__(self, max_length: int, max_wavelength: float = 10000, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive int; got {max_length!r}.")
        self.max_length = max_length
        self.max_wavelength = max_wavelength
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"SinusoidalPositionEncoding expects inputs of shape (batch, seq, d); got {tuple(input_shape)}."
            )
        d = input_shape[-1]
        if d is None or d % 2:
            raise ValueError(
                f"SinusoidalPositionEncoding: d (the last axis, the model dimension) must be even, "
                f"since sine and cosine fill alternate channels, and known when the layer is built; "
                f"got d={d} (input shape {tuple(input_shape)})."
            )
        check_sequence_fits(self.name, input_shape[1], 0, self.max_length)

    def call(self, inputs, start_index=0):
        check_sequence_fits(self.name, inputs.shape[1], start_index, self.max_length)
        shape = ops.shape(inputs)
        d = inputs.shape[-1]
        positions = ops.cast(ops.add(ops.arange(shape[1]), start_index), self.compute_dtype)
        # One frequency per sine/cosine pair: channel 2i and 2i+1 share 1 / wavelength^(2i/d).
        exponents = ops.cast(2 * (ops.arange(d) // 2), self.compute_dtype) / d
        frequencies = ops.power(ops.cast(1.0 / self.max_wavelength, self.compute_dtype), exponents)
        angles = ops.expand_dims(positions, 1) * ops.expand_dims(frequencies, 0)
        is_cosine = ops.cast(ops.arange(d) % 2, self.compute_dtype)
        encoding = ops.sin(angles) * (1 - is_cosine) + ops.cos(angles) * is_cosine
        return ops.broadcast_to(ops.expand_dims(encoding, 0), shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"max_length": self.max_length, "max_wavelength": self.max_wavelength})
        return config
