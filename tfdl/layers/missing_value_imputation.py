"""MissingValueImputation: NaN in a feature table replaced by per-column fill values.

The fill values are statistics fitted on the training split
(`tfdl.pipelines.missing.fit_imputer`); holding them in a layer puts the same
filling in the exported model, so a served model accepts NaN for a missing
value and treats it exactly as training did.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class MissingValueImputation(keras.layers.Layer):
    """Replaces NaN by a fill value per column, optionally adding indicators.

    For an input `x` of shape `(batch, features)` (any leading axes work; the
    last axis holds the features) the output is
    `where(isnan(x), fill_values, x)`, followed, when `indicator_columns` is
    not empty, by one column per listed input column that is 1.0 where that
    column was NaN and 0.0 elsewhere. Only NaN counts as missing: infinities
    pass through unchanged. The fill values are constants (like the mean of
    `keras.layers.Normalization` built from given statistics), not trainable
    weights, and they are saved in the layer's config.

    The layer converts to TFLite with the builtin op set (NaN comparisons,
    select, gather and concatenation).

    Args:
        fill_values: sequence of floats, one per input column: the value put
            where that column is NaN. Must be finite.
        indicator_columns: sequence of column indices (each in
            `[0, len(fill_values))`, no repeats) that get a missing-indicator
            column appended, in this order. Defaults to `()` (no indicators,
            the output has the input's shape).
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a float tensor whose last axis has `len(fill_values)` columns.

    Example:

    >>> import numpy as np
    >>> layer = MissingValueImputation([1.0, 2.0], indicator_columns=[1])
    >>> x = np.array([[np.nan, 5.0], [3.0, np.nan]], "float32")
    >>> np.asarray(layer(x)).tolist()
    [[1.0, 5.0, 0.0], [3.0, 2.0, 1.0]]
    """

    def __init__(self, fill_values: Sequence[float], indicator_columns: Sequence[int] = (), **kwargs):
        super().__init__(**kwargs)
        fill = np.asarray(fill_values, dtype=np.float64)
        if fill.ndim != 1 or fill.size == 0:
            raise ValueError(f"fill_values must be a non-empty list of one value per column, got shape {fill.shape}")
        if not np.isfinite(fill).all():
            bad = [int(j) for j in np.flatnonzero(~np.isfinite(fill))]
            raise ValueError(f"fill_values must be finite; the values for columns {bad} are not: {fill[bad].tolist()}")
        indicators = [int(j) for j in indicator_columns]
        out_of_range = [j for j in indicators if not 0 <= j < fill.size]
        if out_of_range or len(set(indicators)) != len(indicators):
            raise ValueError(
                f"indicator_columns must be distinct column indices in [0, {fill.size}); got {indicators}"
            )
        # Rounded to float32 here so the config shows exactly what is filled.
        self.fill_values = [float(v) for v in fill.astype(np.float32)]
        self.indicator_columns = indicators
        # Plain numpy, converted in `call`: a tensor made here would belong to
        # whichever graph was current (a tf.data map's), and fail elsewhere.
        self._fill = fill.astype(np.float32)
        self._indicators = np.asarray(indicators, dtype=np.int32)

    def build(self, input_shape) -> None:
        features = input_shape[-1]
        if features is not None and features != len(self.fill_values):
            raise ValueError(
                f"MissingValueImputation was fitted on {len(self.fill_values)} columns but its input has "
                f"{features} (shape {tuple(input_shape)}); feed the columns it was fitted on"
            )

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        missing = ops.isnan(x)
        filled = ops.where(missing, ops.cast(self._fill, x.dtype), x)
        if not self.indicator_columns:
            return filled
        indicators = ops.take(ops.cast(missing, x.dtype), self._indicators, axis=-1)
        return ops.concatenate([filled, indicators], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.fill_values) + len(self.indicator_columns))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"fill_values": list(self.fill_values), "indicator_columns": list(self.indicator_columns)})
        return config
