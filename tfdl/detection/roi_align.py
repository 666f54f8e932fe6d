"""RoI align: a fixed-size feature crop per region of interest, the input of a two-stage detector's heads.

Mask R-CNN's RoI align (He et al. 2017) divides each box into
`output_size` bins and averages, in every bin, `sampling_ratio x
sampling_ratio` bilinear samples taken at the centres of its sub-bins, with
no rounding of the box to the feature grid. Here the samples come from one
`tf.image.crop_and_resize` per level and the averaging from a reshape and a
mean, so it runs batched, in a `tf.function` and in an exported SavedModel.

Coordinates follow Detectron2's `aligned=True`: a normalized coordinate `y`
on a map of height `H` is the continuous pixel position `y * H`, and feature
row `r` has its centre at `r + 0.5`. `crop_and_resize` instead maps 0 and 1
to the first and last row centres, so each box is moved into its frame
before the crop. A sample within one pixel outside the map takes the edge
value (the map is padded by one replicated row and column); one farther out
is 0, as in Detectron2.

`multilevel_roi_align` picks, per box, one level of a feature pyramid by
the box's size (the FPN rule, Lin et al. 2017): larger boxes read coarser
levels.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfdl.detection.boxes import _as_boxes


def roi_align(features, boxes, output_size: int | tuple[int, int], sampling_ratio: int = 2) -> tf.Tensor:
    """Bilinear RoI align of normalized boxes on a batch of feature maps.

    Args:
        features: float tensor `(B, H, W, C)`.
        boxes: float tensor `(B, N, 4)` of normalized `[ymin, xmin, ymax,
            xmax]` boxes, `N` per image of the batch (zero-size padding
            boxes give a constant crop, no error).
        output_size: bins per side, an int or `(height, width)`.
        sampling_ratio: samples per bin along each axis, averaged. Defaults
            to 2 (Mask R-CNN's).

    Returns:
        A float tensor `(B, N, out_h, out_w, C)` in the features' dtype.

    Raises:
        ValueError: if `features` is not of rank 4, `boxes` not `(B, N, 4)`,
            the batch sizes differ, or `output_size` / `sampling_ratio` are
            not positive ints.

    Example:

    >>> features = tf.reshape(tf.range(16.0), (1, 4, 4, 1))
    >>> crop = roi_align(features, [[[0.0, 0.0, 0.5, 0.5]]], output_size=1, sampling_ratio=2)
    >>> float(crop[0, 0, 0, 0, 0])  # the mean of the top-left 2x2 pixels 0, 1, 4, 5
    2.5
    """
    out_h, out_w = _pair(output_size, "output_size")
    ratio = _positive_int(sampling_ratio, "sampling_ratio")
    features = tf.convert_to_tensor(features)
    boxes = _as_boxes(boxes, "boxes")
    _check(features, boxes)
    batch, count = tf.shape(boxes)[0], tf.shape(boxes)[1]
    height, width = tf.shape(features)[1], tf.shape(features)[2]
    samples_h, samples_w = out_h * ratio, out_w * ratio
    # One replicated pixel on every side: samples up to a pixel outside the map read its edge.
    padded = tf.pad(features, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    ymin, xmin, ymax, xmax = tf.unstack(tf.cast(boxes, tf.float32), 4, axis=-1)
    y_first, y_last = _sample_span(ymin, ymax, height, samples_h)
    x_first, x_last = _sample_span(xmin, xmax, width, samples_w)
    crop_boxes = tf.stack([y_first, x_first, y_last, x_last], axis=-1)  # in the padded map's frame
    crops = tf.image.crop_and_resize(
        tf.cast(padded, tf.float32),
        tf.reshape(crop_boxes, (-1, 4)),
        tf.repeat(tf.range(batch), count),
        (samples_h, samples_w),
        method="bilinear",
    )
    channels = tf.shape(features)[3]
    bins = tf.reshape(crops, (-1, out_h, ratio, out_w, ratio, channels))
    pooled = tf.reduce_mean(bins, axis=(2, 4))
    return tf.cast(tf.reshape(pooled, (batch, count, out_h, out_w, channels)), features.dtype)


def roi_levels(
    boxes,
    image_size: tuple[int, int],
    strides: Sequence[int],
    canonical_size: float,
    canonical_stride: int,
) -> tf.Tensor:
    """Which pyramid level each box reads: the FPN rule `stride = canonical_stride * 2^floor(log2(size / canonical_size))`.

    `size` is the square root of the box's area in pixels. The stride is
    clipped to the strides available.

    Args:
        boxes: float tensor `(..., 4)` of normalized boxes.
        image_size: (height, width) of the images in pixels.
        strides: the pyramid's strides, increasing (e.g. `(4, 8, 16)`).
        canonical_size: box side (pixels) that maps to `canonical_stride`
            (224 on ImageNet-sized images in the FPN paper).
        canonical_stride: the stride a box of `canonical_size` reads.

    Returns:
        An int32 tensor `(...)`: the index into `strides` of each box's level.

    Raises:
        ValueError: if `strides` is not increasing powers of two, or a size is not positive.

    Example:

    >>> roi_levels([[0, 0, 0.25, 0.25], [0, 0, 1.0, 1.0]], (64, 64), (4, 8, 16), 32, 8).numpy().tolist()
    [0, 2]
    """
    strides = [int(s) for s in strides]
    if not strides or strides != sorted(set(strides)) or any(s < 1 or s & (s - 1) for s in strides):
        raise ValueError(f"strides={strides}: use increasing powers of two, one per pyramid level, e.g. (4, 8, 16).")
    if canonical_size <= 0 or canonical_stride < 1 or min(image_size) < 1:
        raise ValueError(
            f"canonical_size={canonical_size}, canonical_stride={canonical_stride}, image_size={image_size}: "
            "all must be positive."
        )
    ymin, xmin, ymax, xmax = tf.unstack(tf.cast(_as_boxes(boxes), tf.float32), 4, axis=-1)
    area = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0) * float(image_size[0] * image_size[1])
    size = tf.sqrt(tf.maximum(area, 1e-6))
    log_stride = tf.floor(tf.math.log(size / canonical_size) / math.log(2.0)) + math.log2(canonical_stride)
    log_strides = tf.constant(np.log2(strides), tf.float32)
    # The level whose stride is nearest the rule's (the rule gives exact powers of two, then clipped).
    return tf.argmin(tf.abs(log_stride[..., None] - log_strides), axis=-1, output_type=tf.int32)


def multilevel_roi_align(
    features: Sequence,
    boxes,
    strides: Sequence[int],
    image_size: tuple[int, int],
    output_size: int | tuple[int, int],
    sampling_ratio: int = 2,
    canonical_size: float = 32.0,
    canonical_stride: int | None = None,
) -> tf.Tensor:
    """RoI align on a feature pyramid, each box on the level `roi_levels` assigns it.

    Args:
        features: one float tensor `(B, H_l, W_l, C)` per level, finest first.
        boxes: float tensor `(B, N, 4)` of normalized boxes.
        strides: each level's stride, increasing.
        image_size: (height, width) of the images in pixels.
        output_size, sampling_ratio: as `roi_align`.
        canonical_size: box side in pixels read at `canonical_stride`.
            Defaults to 32.
        canonical_stride: None: the finest stride.

    Returns:
        A float tensor `(B, N, out_h, out_w, C)`.

    Raises:
        ValueError: if the levels and strides differ in number, the levels
            differ in channels, or an argument is out of range (see `roi_align`).

    Example:

    >>> levels = [tf.ones((1, 8, 8, 2)), 2 * tf.ones((1, 4, 4, 2))]
    >>> crops = multilevel_roi_align(levels, [[[0, 0, 0.25, 0.25], [0, 0, 1, 1]]], (8, 16), (64, 64), 2)
    >>> crops[0, :, 0, 0, 0].numpy().tolist()
    [1.0, 2.0]
    """
    features = list(features)
    if len(features) != len(strides) or not features:
        raise ValueError(
            f"multilevel_roi_align: {len(features)} feature levels but {len(strides)} strides; give one stride per level."
        )
    if len({f.shape[-1] for f in features}) != 1:
        raise ValueError(
            f"multilevel_roi_align: the levels have {[f.shape[-1] for f in features]} channels; they must be equal."
        )
    if len(features) == 1:
        return roi_align(features[0], boxes, output_size, sampling_ratio)
    boxes = _as_boxes(boxes, "boxes")
    levels = roi_levels(boxes, image_size, strides, canonical_size, canonical_stride or min(strides))
    crops = tf.stack([roi_align(f, boxes, output_size, sampling_ratio) for f in features], axis=2)  # (B, N, L, ...)
    return tf.gather(crops, levels, batch_dims=2)


def _sample_span(low, high, size, samples: int):
    """Normalized coordinates, in the padded map's crop_and_resize frame, of the first and last sample."""
    size = tf.cast(size, tf.float32)
    step = (high - low) * size / samples
    # Continuous pixel position of the first sample, minus 0.5 to index rows by centre, plus 1 for the padding.
    first = low * size + 0.5 * step - 0.5 + 1.0
    last = first + step * (samples - 1)
    # crop_and_resize maps 0 and 1 to the first and last row of the padded map, size + 2 rows.
    return first / (size + 1.0), last / (size + 1.0)


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name}={value!r}: use a positive int or a (height, width) pair of them.")
    return _positive_int(pair[0], name), _positive_int(pair[1], name)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r}: use a positive int.")
    return int(value)


def _check(features: tf.Tensor, boxes: tf.Tensor) -> None:
    if features.shape.rank != 4:
        raise ValueError(
            f"roi_align: features must be a batch of maps (B, H, W, C); got shape {features.shape}."
        )
    if boxes.shape.rank != 3:
        raise ValueError(
            f"roi_align: boxes must be (B, N, 4), N boxes per image of the batch; got shape {boxes.shape}. "
            "Add a leading batch axis for one image."
        )
    if not features.shape[:1].is_compatible_with(boxes.shape[:1]):
        raise ValueError(
            f"roi_align: features and boxes hold different batch sizes ({features.shape[0]} and {boxes.shape[0]})."
        )
