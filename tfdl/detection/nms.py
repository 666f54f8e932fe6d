"""Detection post-processing: decode a head's offsets against the anchors, then batched per-class NMS.

This is the last step of a detector's serving graph, so a served model returns
final boxes, scores and classes rather than raw anchor outputs. It is one
`tf.image.combined_non_max_suppression` over the batch, with fixed-size
padded outputs, so it traces inside a `tf.function` with a fixed input
signature and lives in an exported SavedModel (and the TF Serving image).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfdl.detection.box_coding import DEFAULT_SCALE_FACTORS, decode_boxes
from tfdl.detection.boxes import _as_boxes


def postprocess_detections(
    box_deltas,
    class_scores,
    anchors,
    max_detections: int = 100,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    *,
    max_detections_per_class: int | None = None,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
) -> dict[str, tf.Tensor]:
    """Final detections of a batch: decoded boxes, per-class non-maximum suppression, top `max_detections`.

    For each image and each class, boxes scoring above `score_threshold` are
    kept greedily by score, dropping any box whose IoU with a kept box of the
    same class exceeds `iou_threshold`; the survivors of all classes are
    ranked by score and the best `max_detections` returned. Boxes are
    clipped to [0, 1] after suppression. Unused slots are zero-padded;
    `num_detections` says how many are real.

    Args:
        box_deltas: float tensor `(B, A, 4)`, the box head's offsets
            `(ty, tx, th, tw)` from each anchor (see `encode_boxes`).
        class_scores: float tensor `(B, A, C)` of per-class probabilities
            (after sigmoid or softmax; drop a softmax background column
            first).
        anchors: float tensor `(A, 4)`, `[ymin, xmin, ymax, xmax]`.
        max_detections: detections returned per image. Defaults to 100.
        score_threshold: minimum score of a detection. Defaults to 0.05.
        iou_threshold: IoU above which a lower-scoring box of the same class
            is suppressed. Defaults to 0.5.
        max_detections_per_class: cap per class and image before the
            classes are merged; None: `max_detections`.
        scale_factors: the box coding scale factors. Defaults to
            `(10, 10, 5, 5)`.

    Returns:
        A dict of tensors: `boxes` float32 `(B, max_detections, 4)`,
        `scores` float32 `(B, max_detections)`, `classes` int32
        `(B, max_detections)` and `num_detections` int32 `(B,)`.

    Raises:
        ValueError: if the shapes do not agree (ranks, anchor counts), or a
            threshold or count is out of range.

    Example:

    >>> anchors = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.05, 0.5, 0.55], [0.5, 0.5, 1.0, 1.0]]
    >>> scores = [[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]]]
    >>> out = postprocess_detections(tf.zeros((1, 3, 4)), scores, anchors, max_detections=5)
    >>> out["num_detections"].numpy().tolist(), out["classes"].numpy()[0, :2].tolist()
    ([2], [0, 1])
    """
    _check_settings(max_detections, max_detections_per_class, score_threshold, iou_threshold)
    box_deltas = tf.cast(_as_boxes(box_deltas, "box_deltas"), tf.float32)
    class_scores = tf.cast(tf.convert_to_tensor(class_scores), tf.float32)
    anchors = tf.cast(_as_boxes(anchors, "anchors"), tf.float32)
    _check_shapes(box_deltas, class_scores, anchors)
    boxes = decode_boxes(box_deltas, anchors, scale_factors)
    nmsed_boxes, nmsed_scores, nmsed_classes, valid = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :],  # one box per anchor, shared by every class
        class_scores,
        max_output_size_per_class=max_detections_per_class or max_detections,
        max_total_size=max_detections,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        pad_per_class=False,
        clip_boxes=True,
    )
    return {
        "boxes": nmsed_boxes,
        "scores": nmsed_scores,
        "classes": tf.cast(nmsed_classes, tf.int32),
        "num_detections": tf.cast(valid, tf.int32),
    }


def _check_settings(max_detections, max_detections_per_class, score_threshold, iou_threshold) -> None:
    for name, count in (("max_detections", max_detections), ("max_detections_per_class", max_detections_per_class)):
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"postprocess_detections: {name}={count!r}; use a positive int.")
    for name, threshold in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold)):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"postprocess_detections: {name}={threshold!r}; use a number in [0, 1].")


def _check_shapes(box_deltas: tf.Tensor, class_scores: tf.Tensor, anchors: tf.Tensor) -> None:
    if box_deltas.shape.rank != 3 or class_scores.shape.rank != 3 or anchors.shape.rank != 2:
        raise ValueError(
            "postprocess_detections takes box_deltas (B, A, 4), class_scores (B, A, C) and anchors (A, 4); "
            f"got shapes {box_deltas.shape}, {class_scores.shape} and {anchors.shape}."
        )
    counts = {"box_deltas": box_deltas.shape[1], "class_scores": class_scores.shape[1], "anchors": anchors.shape[0]}
    known = {n for n in counts.values() if n is not None}
    if len(known) > 1:
        raise ValueError(
            f"postprocess_detections: the anchor counts differ ({counts}); the head's outputs must hold one row "
            "per anchor, in the order of grid_anchors."
        )
    if not box_deltas.shape[:1].is_compatible_with(class_scores.shape[:1]):
        raise ValueError(
            f"postprocess_detections: box_deltas and class_scores hold different batch sizes "
            f"({box_deltas.shape[0]} and {class_scores.shape[0]})."
        )
