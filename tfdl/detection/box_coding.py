"""Box coding: boxes as offsets from anchors (Faster R-CNN style), the targets a detector's box head regresses.

A box `(cy, cx, h, w)` relative to an anchor `(acy, acx, ah, aw)` is coded as

    ty = sy * (cy - acy) / ah        tx = sx * (cx - acx) / aw
    th = sh * log(h / ah)            tw = sw * log(w / aw)

with scale factors `(sy, sx, sh, sw)`, `(10, 10, 5, 5)` by default (as in
the TensorFlow Object Detection API and Detectron), which bring the offsets
of matched boxes to about unit variance so one regression loss suits all four.
Decoding inverts this exactly, so `decode_boxes(encode_boxes(b, a), a) == b`
up to float rounding.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from tfdl.detection.boxes import _as_boxes, center_to_corners, corners_to_center

DEFAULT_SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)
# Detectron's bound on a decoded log size ratio: a wild early prediction
# would otherwise overflow exp() to inf and poison the loss and NMS.
DEFAULT_MAX_LOG_SCALE = math.log(1000.0 / 16)
# Zero-size boxes (padding) would give log(0); any real box is far larger.
_MIN_SIZE = 1e-8


def encode_boxes(boxes, anchors, scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS) -> tf.Tensor:
    """Offsets `(ty, tx, th, tw)` of `[ymin, xmin, ymax, xmax]` boxes from their anchors.

    Args:
        boxes: float tensor `(..., N, 4)`, corner format; the leading axes
            broadcast against `anchors` (a batch `(B, N, 4)` with anchors
            `(N, 4)` works). Heights and widths below 1e-8 count as 1e-8.
        anchors: float tensor `(N, 4)` (or broadcastable), corner format,
            with positive heights and widths.
        scale_factors: `(sy, sx, sh, sw)` multiplying the four offsets.
            Defaults to `(10, 10, 5, 5)`.

    Returns:
        A tensor of the broadcast shape `(..., N, 4)` of offsets.

    Raises:
        ValueError: if a last axis is not 4, or `scale_factors` is not four
            positive numbers.

    Example:

    >>> anchors = [[0.0, 0.0, 0.5, 0.5]]
    >>> print(encode_boxes([[0.1, 0.0, 0.6, 1.0]], anchors).numpy().round(4))
    [[2.     5.     0.     3.4657]]
    """
    factors = _scale_factors(scale_factors)
    boxes = _as_boxes(boxes)
    anchors = tf.cast(_as_boxes(anchors, "anchors"), boxes.dtype)
    cy, cx, h, w = tf.unstack(corners_to_center(boxes), 4, axis=-1)
    acy, acx, ah, aw = tf.unstack(corners_to_center(anchors), 4, axis=-1)
    ah, aw = tf.maximum(ah, _MIN_SIZE), tf.maximum(aw, _MIN_SIZE)
    h, w = tf.maximum(h, _MIN_SIZE), tf.maximum(w, _MIN_SIZE)
    offsets = tf.stack([(cy - acy) / ah, (cx - acx) / aw, tf.math.log(h / ah), tf.math.log(w / aw)], axis=-1)
    return offsets * tf.constant(factors, dtype=boxes.dtype)


def decode_boxes(
    offsets,
    anchors,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
    max_log_scale: float = DEFAULT_MAX_LOG_SCALE,
) -> tf.Tensor:
    """`[ymin, xmin, ymax, xmax]` boxes from offsets `(ty, tx, th, tw)` relative to anchors (the inverse of `encode_boxes`).

    Args:
        offsets: float tensor `(..., N, 4)`, such as a box head's output;
            the leading axes broadcast against `anchors`.
        anchors: float tensor `(N, 4)` (or broadcastable), corner format.
        scale_factors: the `(sy, sx, sh, sw)` the offsets were encoded with.
            Defaults to `(10, 10, 5, 5)`.
        max_log_scale: bound on `th / sh` and `tw / sw`, so a box is never
            more than `exp(max_log_scale)` (62.5 by default) times its anchor.
            Defaults to `log(1000 / 16)`.

    Returns:
        A tensor of the broadcast shape `(..., N, 4)` of boxes (not clipped
        to the image).

    Raises:
        ValueError: if a last axis is not 4, or `scale_factors` is not four
            positive numbers.

    Example:

    >>> anchors = [[0.0, 0.0, 0.5, 0.5]]
    >>> print(decode_boxes([[2.0, 5.0, 0.0, 3.4657359]], anchors).numpy().round(4))
    [[0.1 0.  0.6 1. ]]
    """
    factors = _scale_factors(scale_factors)
    offsets = _as_boxes(offsets, "offsets")
    anchors = tf.cast(_as_boxes(anchors, "anchors"), offsets.dtype)
    ty, tx, th, tw = tf.unstack(offsets / tf.constant(factors, dtype=offsets.dtype), 4, axis=-1)
    acy, acx, ah, aw = tf.unstack(corners_to_center(anchors), 4, axis=-1)
    th, tw = tf.minimum(th, max_log_scale), tf.minimum(tw, max_log_scale)
    centers = tf.stack([ty * ah + acy, tx * aw + acx, tf.exp(th) * ah, tf.exp(tw) * aw], axis=-1)
    return center_to_corners(centers)


def _scale_factors(scale_factors: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        factors = tuple(float(f) for f in scale_factors)
    except (TypeError, ValueError):
        factors = ()
    if len(factors) != 4 or not all(math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(
            f"scale_factors={scale_factors!r}: use four positive numbers (sy, sx, sh, sw), e.g. (10, 10, 5, 5)."
        )
    return factors
