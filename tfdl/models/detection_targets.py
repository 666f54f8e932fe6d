"""Training targets of the one-stage detector: ground-truth boxes turned into per-anchor labels and offsets.

`encode_targets` makes a function for `tf.data.Dataset.map` that turns the
detection examples of tfdl's pipelines, `(image, {"boxes": (G, 4),
"classes": (G,)})` padded with class -1, into the targets of the detector's
two outputs, keyed like them so `compile(loss={...})` pairs them up:

- `class_logits`: int32 `(A,)`, per anchor the class id of its matched box
  if positive, `BACKGROUND` (-1) if negative, `IGNORED` (-2) if its overlap
  is between the thresholds (no loss at all);
- `box_deltas`: float32 `(A, 5)`, the `encode_boxes` offsets of the matched
  box (zeros off positives) and a last column 1.0 on positive anchors.

Matching is `tfdl.detection.match_anchors` (with its force match, so every
box gets at least one anchor); it runs in the input pipeline, once per
example, so the training step only runs the model and the losses.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from tfdl.detection import DEFAULT_SCALE_FACTORS, POSITIVE, IGNORE, match_anchors, validate_boxes

BACKGROUND = -1
IGNORED = -2


def encode_targets(
    anchors,
    positive_iou: float = 0.5,
    negative_iou: float = 0.4,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
) -> Callable:
    """A `tf.data` map function from `(image, {"boxes", "classes"})` to `(image, detector targets)`.

    Args:
        anchors: float `(A, 4)` `[ymin, xmin, ymax, xmax]` anchors, e.g.
            `detector_anchors(config)`.
        positive_iou: IoU from which an anchor learns a box. Defaults to 0.5.
        negative_iou: IoU below which an anchor learns background; between
            the two it is ignored. Defaults to 0.4.
        scale_factors: box coding scale factors, as the detector decodes with.
            Defaults to `(10, 10, 5, 5)`.

    Returns:
        `encode(image, targets) -> (image, {"box_deltas", "class_logits"})`
        for one example (image `(H, W, C)`, boxes `(G, 4)`) or a batch
        (`(B, H, W, C)`, `(B, G, 4)`). Called eagerly it checks the boxes'
        values and raises ValueError; inside a `tf.data` map, boxes outside
        [0, 1] stop the iteration with an InvalidArgumentError naming them.

    Raises:
        ValueError: if the anchors are not `(A, 4)`, the thresholds are not
            `0 <= negative_iou <= positive_iou <= 1` (when the function is
            made); if the image is not of rank 3 or 4, `targets` lacks
            "boxes" or "classes", or (eagerly) a box lies outside [0, 1]
            (when it is called).

    Example:

    >>> encode = encode_targets([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    >>> _, y = encode(tf.zeros((8, 8, 3)), {"boxes": [[0.0, 0.0, 0.5, 0.4]], "classes": [2]})
    >>> y["class_logits"].numpy().tolist(), y["box_deltas"].numpy()[:, 4].tolist()
    ([2, -1], [1.0, 0.0])
    """
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    if anchors.shape.rank != 2 or anchors.shape[-1] != 4:
        raise ValueError(f"encode_targets: anchors must be (A, 4) [ymin, xmin, ymax, xmax]; got shape {anchors.shape}.")
    if not 0.0 <= negative_iou <= positive_iou <= 1.0:
        raise ValueError(
            f"encode_targets: need 0 <= negative_iou <= positive_iou <= 1; got negative_iou={negative_iou}, "
            f"positive_iou={positive_iou}."
        )
    scale_factors = tuple(scale_factors)

    def encode(image, targets):
        image = tf.convert_to_tensor(image)
        if image.shape.rank not in (3, 4):
            raise ValueError(
                f"encode_targets: image must be (height, width, channels), or a batch of them; got shape "
                f"{image.shape}. Map before batching, or pass a batch with boxes (B, G, 4)."
            )
        if not {"boxes", "classes"} <= set(targets):
            raise ValueError(
                f"encode_targets: targets must hold 'boxes' and 'classes' (shapes_dataset(task='detection') "
                f"gives them); got keys {sorted(targets)}."
            )
        boxes = _checked_boxes(targets["boxes"])
        matched = match_anchors(anchors, boxes, targets["classes"], positive_iou, negative_iou, scale_factors)
        labels = matched["labels"]
        classes = tf.where(labels == POSITIVE, matched["class_targets"],
                           tf.where(labels == IGNORE, IGNORED, BACKGROUND))
        positive = tf.cast(labels == POSITIVE, tf.float32)[..., None]
        box_deltas = tf.concat([tf.cast(matched["box_targets"], tf.float32), positive], axis=-1)
        return image, {"box_deltas": box_deltas, "class_logits": tf.cast(classes, tf.int32)}

    return encode


def _checked_boxes(boxes) -> tf.Tensor:
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if tf.executing_eagerly():
        validate_boxes(boxes.numpy(), "targets['boxes']")
        return boxes
    inside = tf.reduce_all((boxes >= 0.0) & (boxes <= 1.0))
    check = tf.debugging.Assert(
        # No quotes in the message: the runtime error would show them escaped.
        inside, ["encode_targets: boxes of the targets hold coordinates outside [0, 1]; boxes are normalized "
                 "[ymin, xmin, ymax, xmax]: divide pixel coordinates by the image height and width. Boxes:", boxes],
    )
    with tf.control_dependencies([check]):
        return tf.identity(boxes)
