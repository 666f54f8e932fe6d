"""Training targets of the two-stage detector, computed inside its train step from the padded ground truth.

The second stage learns on regions the first stage proposes, so its targets
cannot be made once in the input pipeline as the one-stage detector's are.
Ground truth comes per image padded to `G` objects (`boxes (B, G, 4)`,
`classes (B, G)` with -1 for padding, `masks (B, G, H, W)`), as
`shapes_dataset(task="instance")` gives it, and three functions make:

- `rpn_targets`: per anchor, objectness (class 0 for an object, -1
  background, -2 ignored) and encoded box offsets, in the form the
  one-stage detector's `AnchorFocalLoss` / `AnchorHuberLoss` read;
- `sample_rois`: Fast R-CNN's minibatch of regions per image: the proposals
  plus the ground-truth boxes, labelled by their best IoU, a random subset
  of at most `positive_fraction` positives filled up with negatives, each
  with its class (0 background, class + 1 objects) and box offsets;
- `mask_targets`: each positive region's ground-truth mask, RoI-aligned to
  the mask head's `mask_size x mask_size` grid and binarized at 0.5.

All TensorFlow ops on fixed shapes, so they trace in a `tf.function`.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from tfdl.detection import DEFAULT_SCALE_FACTORS, IGNORE, POSITIVE, encode_boxes, match_anchors
from tfdl.detection.iou import _pairwise_iou
from tfdl.detection.roi_align import roi_align
from tfdl.models.detection_targets import BACKGROUND, IGNORED


def rpn_targets(
    anchors, gt_boxes, gt_classes, positive_iou: float = 0.7, negative_iou: float = 0.3,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Objectness and box targets of the region proposal network for a batch.

    Args:
        anchors: float `(A, 4)` anchors.
        gt_boxes: float `(B, G, 4)` normalized boxes, padded.
        gt_classes: int `(B, G)` classes, -1 for padding (any class counts
            as "object").
        positive_iou, negative_iou: the matching thresholds (Faster R-CNN:
            0.7 and 0.3); every box also claims its best anchor.
        scale_factors: box coding scale factors.

    Returns:
        `(class_targets, box_targets)`: int32 `(B, A)` with 0 for an object,
        `BACKGROUND` (-1) and `IGNORED` (-2); float32 `(B, A, 5)`, offsets
        and a positive flag.

    Raises:
        ValueError: if the shapes do not fit (see `match_anchors`).

    Example:

    >>> classes, boxes = rpn_targets([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]],
    ...                              [[[0.0, 0.0, 0.5, 0.5]]], [[2]])
    >>> classes.numpy().tolist(), boxes.numpy()[0, :, 4].tolist()
    ([[0, -1]], [1.0, 0.0])
    """
    objects = tf.where(tf.convert_to_tensor(gt_classes) >= 0, 0, -1)
    matched = match_anchors(anchors, gt_boxes, objects, positive_iou, negative_iou, scale_factors)
    labels = matched["labels"]
    classes = tf.where(labels == POSITIVE, 0, tf.where(labels == IGNORE, IGNORED, BACKGROUND))
    positive = tf.cast(labels == POSITIVE, tf.float32)[..., None]
    return tf.cast(classes, tf.int32), tf.concat([tf.cast(matched["box_targets"], tf.float32), positive], axis=-1)


def sample_rois(
    proposals,
    proposal_valid,
    gt_boxes,
    gt_classes,
    num_rois: int,
    positive_fraction: float = 0.25,
    positive_iou: float = 0.5,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
    seed=None,
) -> dict[str, tf.Tensor]:
    """Fast R-CNN's sampled regions and their second-stage targets, per image.

    Candidates are the proposals and the valid ground-truth boxes (so every
    object has a positive region from the first step on). A candidate whose
    best IoU with a ground-truth box is at least `positive_iou` is positive
    for that box, any other valid candidate negative. Up to
    `round(positive_fraction * num_rois)` positives are drawn at random, then
    negatives at random fill the rest; when an image has too few candidates,
    the left-over slots get weight 0.

    Args:
        proposals: float `(B, P, 4)` boxes from the region proposal network.
        proposal_valid: bool `(B, P)`: which proposals are real (NMS pads).
        gt_boxes: float `(B, G, 4)`; gt_classes: int `(B, G)`, -1 padding.
        num_rois: regions per image, at most `P + G`.
        positive_fraction: the largest share of positives, in (0, 1].
        positive_iou: IoU from which a region is positive. Defaults to 0.5.
        scale_factors: box coding scale factors.
        seed: a `keras.random.SeedGenerator` (or int / None) for the draws.

    Returns:
        A dict: `rois` float `(B, R, 4)`; `weights` float `(B, R)` (1 for a
        sampled region, 0 for an empty slot); `classes` int32 `(B, R)` (0
        background, class + 1 for positives); `box_targets` float `(B, R, 5)`
        (offsets of the matched box from the region and a positive flag);
        `matched` int32 `(B, R)` (index of the matched box, 0 for negatives).

    Raises:
        ValueError: if `num_rois` exceeds `P + G` or a setting is out of range.
    """
    proposals = tf.convert_to_tensor(proposals, tf.float32)
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    gt_classes = tf.cast(gt_classes, tf.int32)
    candidates_count = proposals.shape[1] + gt_boxes.shape[1]
    if not 1 <= num_rois <= candidates_count:
        raise ValueError(
            f"sample_rois: num_rois={num_rois} must be in [1, proposals + ground-truth slots = {candidates_count}]; "
            "lower rois_per_image or raise train_proposals."
        )
    if not 0.0 < positive_fraction <= 1.0:
        raise ValueError(f"sample_rois: positive_fraction={positive_fraction}; use a number in (0, 1].")
    gt_valid = gt_classes >= 0
    candidates = tf.concat([proposals, gt_boxes], axis=1)
    valid = tf.concat([tf.cast(proposal_valid, tf.bool), gt_valid], axis=1)
    overlaps = tf.where(gt_valid[:, None, :], _pairwise_iou(candidates, gt_boxes), -1.0)  # (B, P + G, G)
    best_iou = tf.reduce_max(overlaps, axis=-1)
    best_gt = tf.argmax(overlaps, axis=-1, output_type=tf.int32)
    positive = valid & (best_iou >= positive_iou)
    negative = valid & ~positive

    max_positives = max(1, round(positive_fraction * num_rois))
    draws = keras.random.uniform(tf.shape(best_iou), seed=seed)
    # Rank among the positives by the random draw, so at most max_positives of them are kept.
    positive_draws = tf.where(positive, draws, -1.0)
    rank = tf.argsort(tf.argsort(positive_draws, axis=-1, direction="DESCENDING"), axis=-1)
    kept_positive = positive & (rank < max_positives)
    # Kept positives first, then negatives, both in random order; everything else last.
    priority = tf.where(kept_positive, 2.0 + draws, tf.where(negative, 1.0 + draws, 0.0))
    top, order = tf.math.top_k(priority, k=num_rois)
    weights = tf.cast(top > 0.0, tf.float32)
    rois = tf.gather(candidates, order, batch_dims=1)
    chosen_positive = top >= 2.0
    matched = tf.where(chosen_positive, tf.gather(best_gt, order, batch_dims=1), 0)
    matched_boxes = tf.gather(gt_boxes, matched, batch_dims=1)
    offsets = encode_boxes(matched_boxes, rois, scale_factors)
    flag = tf.cast(chosen_positive, tf.float32)
    return {
        "rois": tf.stop_gradient(rois),
        "weights": weights,
        "classes": tf.where(chosen_positive, tf.gather(gt_classes, matched, batch_dims=1) + 1, 0),
        "box_targets": tf.concat([offsets * flag[..., None], flag[..., None]], axis=-1),
        "matched": matched,
    }


def mask_targets(gt_masks, rois, matched, mask_size: int) -> tf.Tensor:
    """Each region's ground-truth mask on the mask head's grid: 1.0 where the object covers a cell centre.

    The matched object's image-sized mask is RoI-aligned to `mask_size x
    mask_size` (one bilinear sample per cell) and binarized at 0.5, as Mask
    R-CNN makes its targets.

    Args:
        gt_masks: `(B, G, H, W)` binary masks (any numeric dtype), padded.
        rois: float `(B, R, 4)` regions.
        matched: int `(B, R)` index into `G` of each region's object.
        mask_size: side of the target grid.

    Returns:
        float32 `(B, R, mask_size, mask_size)` of 0.0 and 1.0.

    Raises:
        ValueError: if `gt_masks` is not `(B, G, H, W)`.

    Example:

    >>> masks = tf.constant([[[[1, 1, 0, 0]] * 4]], tf.uint8)  # one object: the left half of a 4x4 image
    >>> mask_targets(masks, [[[0.0, 0.0, 1.0, 1.0]]], [[0]], 2).numpy()[0, 0].tolist()
    [[1.0, 0.0], [1.0, 0.0]]
    """
    gt_masks = tf.convert_to_tensor(gt_masks)
    if gt_masks.shape.rank != 4:
        raise ValueError(
            f"mask_targets: gt_masks must be (batch, objects, height, width); got shape {gt_masks.shape}. "
            "shapes_dataset(task='instance') gives them."
        )
    # Objects as channels: one crop per region reads every object's mask, then each keeps its own.
    as_channels = tf.transpose(tf.cast(gt_masks, tf.float32), (0, 2, 3, 1))
    crops = roi_align(as_channels, rois, mask_size, sampling_ratio=1)  # (B, R, M, M, G)
    own = tf.gather(tf.transpose(crops, (0, 1, 4, 2, 3)), tf.cast(matched, tf.int32), batch_dims=2)
    return tf.cast(own >= 0.5, tf.float32)
