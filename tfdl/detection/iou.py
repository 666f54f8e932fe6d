"""Pairwise intersection over union (IoU) of two sets of boxes, the overlap measure of detection.

Anchor matching, non-maximum suppression and detection metrics all rank
boxes by IoU. `iou` computes the full matrix with broadcasting (no loops), so
it runs batched, under XLA and inside an exported SavedModel.
"""

from __future__ import annotations

import tensorflow as tf

from tfdl.detection.boxes import _as_boxes, box_area


def _pairwise_iou(boxes_a: tf.Tensor, boxes_b: tf.Tensor) -> tf.Tensor:
    """IoU of every box of `boxes_a (..., N, 4)` with every box of `boxes_b (..., M, 4)` -> `(..., N, M)`.

    The leading axes broadcast against each other (anchors `(A, 4)` against a
    batch of ground truth `(B, G, 4)` give `(B, A, G)`). This is the unchecked
    form that `iou` and the matcher share; prefer `iou` for user data.
    """
    ymin_a, xmin_a, ymax_a, xmax_a = tf.unstack(boxes_a[..., :, None, :], 4, axis=-1)
    ymin_b, xmin_b, ymax_b, xmax_b = tf.unstack(boxes_b[..., None, :, :], 4, axis=-1)
    height = tf.maximum(tf.minimum(ymax_a, ymax_b) - tf.maximum(ymin_a, ymin_b), 0.0)
    width = tf.maximum(tf.minimum(xmax_a, xmax_b) - tf.maximum(xmin_a, xmin_b), 0.0)
    intersection = height * width
    union = box_area(boxes_a)[..., :, None] + box_area(boxes_b)[..., None, :] - intersection
    # Two zero-area boxes have a zero union: their IoU is 0, not NaN.
    return tf.math.divide_no_nan(intersection, union)


def iou(boxes_a, boxes_b) -> tf.Tensor:
    """Intersection over union of every box of `boxes_a` with every box of `boxes_b`.

    Boxes are `[ymin, xmin, ymax, xmax]`. A zero-area box has IoU 0 with every
    box, itself included (never NaN); an inverted box counts as zero-area.

    Args:
        boxes_a: float tensor `(N, 4)`, or `(B, N, 4)` for a batch.
        boxes_b: float tensor `(M, 4)`, or `(B, M, 4)` with the same `B`.

    Returns:
        A tensor `(N, M)` (or `(B, N, M)`) of IoUs in [0, 1], in the float
        dtype of the boxes.

    Raises:
        ValueError: if the boxes are not of rank 2 or 3 with 4 coordinates,
            the two ranks differ, or the batch sizes differ.

    Example:

    >>> a = [[0.0, 0.0, 0.5, 0.5]]
    >>> b = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.25, 0.5, 0.75], [0.6, 0.6, 1.0, 1.0]]
    >>> print(iou(a, b).numpy().round(4))
    [[1.     0.3333 0.    ]]
    """
    boxes_a = _as_boxes(boxes_a, "boxes_a")
    boxes_b = tf.cast(_as_boxes(boxes_b, "boxes_b"), boxes_a.dtype)
    rank_a, rank_b = boxes_a.shape.rank, boxes_b.shape.rank
    if rank_a not in (2, 3) or rank_a != rank_b:
        raise ValueError(
            f"iou takes boxes_a (N, 4) and boxes_b (M, 4), or a batch (B, N, 4) and (B, M, 4); "
            f"got shapes {boxes_a.shape} and {boxes_b.shape}."
        )
    if rank_a == 3 and not boxes_a.shape[:1].is_compatible_with(boxes_b.shape[:1]):
        raise ValueError(
            f"iou: boxes_a and boxes_b hold different batch sizes, {boxes_a.shape[0]} and {boxes_b.shape[0]}; "
            "pass one set of boxes per image for the same images."
        )
    return _pairwise_iou(boxes_a, boxes_b)
