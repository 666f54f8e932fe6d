"""Feature standardization fitted on the training split only.

The fitted statistics become a `keras.layers.Normalization` layer with
constant mean and variance: the pipeline maps it over its datasets, and the
export puts the same layer in front of the model, so a served model takes
raw inputs and normalizes them exactly as training did.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Mode = Literal["global", "per_feature", "none"]

# A feature that is constant in the training split has (near) zero variance;
# dividing by it would turn any other value seen later into a huge input.
# Such features are only centred.
_MIN_VARIANCE = 1e-6


def fit_normalization(train_features: np.ndarray, mode: Mode):
    """Fit a Normalization layer on training features, or None for `none`.

    `global` uses one mean and variance over every value (right for pixels);
    `per_feature` one per feature along the last axis.
    """
    import keras

    if mode == "none":
        return None
    x = np.asarray(train_features, dtype=np.float64)
    if mode == "global":
        mean, variance, axis = x.mean(), x.var(), None
    elif mode == "per_feature":
        reduce_axes = tuple(range(x.ndim - 1))
        mean, variance, axis = x.mean(axis=reduce_axes), x.var(axis=reduce_axes), -1
    else:
        raise ValueError(f"unknown normalization {mode!r}; use global, per_feature or none")
    variance = np.where(variance < _MIN_VARIANCE, 1.0, variance)
    layer = keras.layers.Normalization(
        axis=axis,
        mean=np.asarray(mean, dtype=np.float32),
        variance=np.asarray(variance, dtype=np.float32),
        name="normalization",
    )
    # Build eagerly: built lazily inside a tf.data map, its constants would
    # belong to that map's graph and fail anywhere else.
    layer.build((None, *x.shape[1:]))
    return layer
