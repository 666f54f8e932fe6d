"""Anchor matching: which anchors learn which ground-truth box, and the targets they learn.

Each anchor takes the ground-truth box it overlaps most. With IoU at least
`positive_iou` it is positive (it learns that box's class and offsets), below
`negative_iou` negative (it learns background), in between ignored (no loss:
neither clearly object nor clearly background). A box that no anchor reaches
`positive_iou` with would never be learned, so each box also claims the
anchor(s) it overlaps most (the force match of the TensorFlow Object Detection
API, Detectron's low-quality matches). This is the assignment of SSD,
RetinaNet and the region proposal network of Faster R-CNN.

Images hold different numbers of boxes, so ground truth comes padded to a
fixed count with class -1; padded boxes match nothing. Everything is
TensorFlow ops on fixed shapes, so matching runs in a `tf.data` map, batched
in a train step, and under XLA.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfdl.detection.box_coding import DEFAULT_SCALE_FACTORS, encode_boxes
from tfdl.detection.boxes import _as_boxes
from tfdl.detection.iou import _pairwise_iou

POSITIVE = 1
NEGATIVE = 0
IGNORE = -1


def match_anchors(
    anchors,
    gt_boxes,
    gt_classes,
    positive_iou: float = 0.5,
    negative_iou: float = 0.4,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
) -> dict[str, tf.Tensor]:
    """Assign ground-truth boxes to anchors and compute each anchor's training targets.

    Rules, per image:

    1. Each anchor's candidate is the valid box of highest IoU with it (the
       first such box on a tie).
    2. Its label is `POSITIVE` (1) if that IoU >= `positive_iou`, `NEGATIVE`
       (0) if < `negative_iou`, `IGNORE` (-1) otherwise.
    3. Force match: every valid box with some overlap claims the anchors
       whose IoU with it equals its highest IoU over all anchors; those become
       positive and matched to it, even below `negative_iou`. An anchor
       claimed by several boxes goes to the one it overlaps most.

    An image without valid boxes gets all anchors negative.

    Args:
        anchors: float tensor `(A, 4)`, `[ymin, xmin, ymax, xmax]`.
        gt_boxes: float tensor `(G, 4)` for one image, or `(B, G, 4)` for a
            batch, `[ymin, xmin, ymax, xmax]`; rows of padding may hold
            anything (zeros are usual).
        gt_classes: int tensor `(G,)` or `(B, G)`: the class index of each
            box, -1 (any negative value) for padding.
        positive_iou: IoU from which an anchor is positive. Defaults to 0.5.
        negative_iou: IoU below which an anchor is negative; at most
            `positive_iou` (equal: nothing is ignored). Defaults to 0.4.
        scale_factors: box coding scale factors for the regression targets.
            Defaults to `(10, 10, 5, 5)`.

    Returns:
        A dict of tensors, with a leading `B` axis when the input had one:
        - `labels` int32 `(A,)`: 1 positive, 0 negative, -1 ignore;
        - `matched_gt` int32 `(A,)`: index of the matched box for positive
          anchors, -1 for the others;
        - `matched_iou` float `(A,)`: IoU with the matched box for positive
          anchors, with the candidate box for the others (0 without valid
          boxes);
        - `class_targets` int32 `(A,)`: the matched box's class for positive
          anchors, -1 for the others;
        - `box_targets` float `(A, 4)`: `encode_boxes` of the matched box
          against the anchor for positive anchors, zeros for the others.

    Raises:
        ValueError: if the shapes do not fit the above, or the thresholds are
            not `0 <= negative_iou <= positive_iou <= 1`.

    Example:

    >>> anchors = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5]]
    >>> out = match_anchors(anchors, [[0.0, 0.0, 0.5, 0.4], [0.0, 0.0, 0.0, 0.0]], [3, -1])
    >>> out["labels"].numpy().tolist(), out["class_targets"].numpy().tolist()
    ([1, 0, 0], [3, -1, -1])
    """
    if not 0.0 <= negative_iou <= positive_iou <= 1.0:
        raise ValueError(
            f"match_anchors: need 0 <= negative_iou <= positive_iou <= 1; got negative_iou={negative_iou}, "
            f"positive_iou={positive_iou}."
        )
    anchors = _as_boxes(anchors, "anchors")
    gt_boxes = tf.cast(_as_boxes(gt_boxes, "gt_boxes"), anchors.dtype)
    gt_classes = tf.convert_to_tensor(gt_classes)
    _check_shapes(anchors, gt_boxes, gt_classes)
    batched = gt_boxes.shape.rank == 3
    if not batched:
        gt_boxes, gt_classes = gt_boxes[None], gt_classes[None]
    targets = _match_batch(anchors, gt_boxes, tf.cast(gt_classes, tf.int32), positive_iou, negative_iou, scale_factors)
    if not batched:
        targets = {name: value[0] for name, value in targets.items()}
    return targets


def _match_batch(anchors, gt_boxes, gt_classes, positive_iou, negative_iou, scale_factors) -> dict[str, tf.Tensor]:
    # One extra padding box keeps every argmax defined when an image comes with no boxes at all (G = 0).
    gt_boxes = tf.pad(gt_boxes, [[0, 0], [0, 1], [0, 0]])
    gt_classes = tf.pad(gt_classes, [[0, 0], [0, 1]], constant_values=-1)
    valid = gt_classes >= 0  # (B, G)
    # Padded boxes get IoU -1, below any real one, so argmax never picks them.
    overlaps = tf.where(valid[:, None, :], _pairwise_iou(anchors, gt_boxes), -1.0)  # (B, A, G)
    best_gt = tf.argmax(overlaps, axis=-1, output_type=tf.int32)
    best_iou = tf.reduce_max(overlaps, axis=-1)
    labels = tf.where(best_iou >= positive_iou, POSITIVE, tf.where(best_iou < negative_iou, NEGATIVE, IGNORE))

    gt_best_iou = tf.reduce_max(overlaps, axis=1, keepdims=True)  # (B, 1, G)
    claims = valid[:, None, :] & (gt_best_iou > 0) & tf.equal(overlaps, gt_best_iou)  # (B, A, G)
    forced = tf.reduce_any(claims, axis=-1)
    forced_gt = tf.argmax(tf.where(claims, overlaps, -1.0), axis=-1, output_type=tf.int32)
    matched = tf.where(forced, forced_gt, best_gt)
    labels = tf.where(forced, POSITIVE, labels)
    positive = labels == POSITIVE

    matched_boxes = tf.gather(gt_boxes, matched, batch_dims=1)
    box_targets = encode_boxes(matched_boxes, anchors, scale_factors)
    return {
        "labels": tf.cast(labels, tf.int32),
        "matched_gt": tf.where(positive, matched, -1),
        "matched_iou": tf.maximum(tf.gather(overlaps, matched, batch_dims=2), 0.0),
        "class_targets": tf.where(positive, tf.gather(gt_classes, matched, batch_dims=1), -1),
        "box_targets": tf.where(positive[..., None], box_targets, tf.zeros_like(box_targets)),
    }


def _check_shapes(anchors: tf.Tensor, gt_boxes: tf.Tensor, gt_classes: tf.Tensor) -> None:
    if anchors.shape.rank != 2:
        raise ValueError(f"match_anchors: anchors must be (A, 4); got shape {anchors.shape}.")
    if gt_boxes.shape.rank not in (2, 3):
        raise ValueError(
            f"match_anchors: gt_boxes must be (G, 4) for one image or (B, G, 4) for a batch; "
            f"got shape {gt_boxes.shape}."
        )
    if not gt_classes.dtype.is_integer:
        raise ValueError(
            f"match_anchors: gt_classes must hold int class indices (-1 for padding); got dtype {gt_classes.dtype.name}."
        )
    if not gt_classes.shape.is_compatible_with(gt_boxes.shape[:-1]):
        raise ValueError(
            f"match_anchors: gt_classes must hold one class per box, shape {gt_boxes.shape[:-1]}; "
            f"got shape {gt_classes.shape}."
        )
