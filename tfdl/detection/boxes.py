"""Box formats for detection: normalized corners `[ymin, xmin, ymax, xmax]`, and the center form.

The canonical format in tfdl is corners normalized by the image height and
width, the format of `tf.image` (`crop_and_resize`, `draw_bounding_boxes`,
`combined_non_max_suppression`). The center form `[cy, cx, h, w]` is what box
coding and anchor generation reason in. The conversions are TensorFlow ops on
the last axis, so they work on any leading shape, inside a `tf.function`, under
XLA and in an exported SavedModel. `validate_boxes` is the eager check at the
edge, where user data comes in.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _as_boxes(boxes, name: str = "boxes") -> tf.Tensor:
    """`boxes` as a float tensor whose last axis is 4 (float64 kept, anything else float32)."""
    boxes = tf.convert_to_tensor(boxes)
    if not boxes.dtype.is_floating:
        boxes = tf.cast(boxes, tf.float32)
    if boxes.shape.rank is not None and (boxes.shape.rank == 0 or boxes.shape[-1] not in (None, 4)):
        raise ValueError(
            f"{name} must have 4 coordinates on its last axis, shape (..., 4); got shape {boxes.shape}."
        )
    return boxes


def corners_to_center(boxes) -> tf.Tensor:
    """Convert `[ymin, xmin, ymax, xmax]` boxes to `[cy, cx, h, w]`.

    Args:
        boxes: float tensor or array of shape `(..., 4)`, corner format.

    Returns:
        A tensor of the same shape, center format.

    Raises:
        ValueError: if the last axis is not of size 4.

    Example:

    >>> print(corners_to_center([[0.1, 0.2, 0.5, 0.8]]).numpy().round(3))
    [[0.3 0.5 0.4 0.6]]
    """
    ymin, xmin, ymax, xmax = tf.unstack(_as_boxes(boxes), 4, axis=-1)
    return tf.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=-1)


def center_to_corners(boxes) -> tf.Tensor:
    """Convert `[cy, cx, h, w]` boxes to `[ymin, xmin, ymax, xmax]`.

    Args:
        boxes: float tensor or array of shape `(..., 4)`, center format.

    Returns:
        A tensor of the same shape, corner format.

    Raises:
        ValueError: if the last axis is not of size 4.

    Example:

    >>> print(center_to_corners([[0.3, 0.5, 0.4, 0.6]]).numpy().round(3))
    [[0.1 0.2 0.5 0.8]]
    """
    cy, cx, h, w = tf.unstack(_as_boxes(boxes), 4, axis=-1)
    return tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def box_area(boxes) -> tf.Tensor:
    """Area of `[ymin, xmin, ymax, xmax]` boxes; an inverted box has area 0, not a negative one.

    Args:
        boxes: float tensor or array of shape `(..., 4)`, corner format.

    Returns:
        A tensor of shape `(...)`.

    Raises:
        ValueError: if the last axis is not of size 4.

    Example:

    >>> box_area([[0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 0.2, 0.9]]).numpy().tolist()
    [0.25, 0.0]
    """
    ymin, xmin, ymax, xmax = tf.unstack(_as_boxes(boxes), 4, axis=-1)
    return tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)


def validate_boxes(boxes, name: str = "boxes") -> None:
    """Check eagerly that boxes are normalized corners: finite, within [0, 1], ymin <= ymax, xmin <= xmax.

    Zero-size boxes (such as all-zero padding) pass. Call it where boxes enter
    tfdl (a data loader, a config), not inside a graph: it reads the values.

    Args:
        boxes: array or eager tensor of shape `(..., 4)`, corner format.
        name: what to call the boxes in the error message.

    Returns:
        None.

    Raises:
        ValueError: naming the first bad box by its index and coordinates,
            when the last axis is not 4, a coordinate is not finite or lies
            outside [0, 1], or a box has ymax < ymin or xmax < xmin.

    Example:

    >>> validate_boxes([[0.1, 0.1, 0.5, 0.5]])
    >>> validate_boxes([[0.1, 0.1, 0.5, 0.5], [0.2, 0.0, 1.5, 0.4]])
    Traceback (most recent call last):
    ...
    ValueError: boxes[1] = [0.2, 0.0, 1.5, 0.4] has a coordinate outside [0, 1]; boxes are normalized [ymin, xmin, ymax, xmax]: divide pixel coordinates by the image height and width.
    """
    values = np.asarray(boxes, dtype=np.float64)
    if values.ndim == 0 or values.shape[-1] != 4:
        raise ValueError(f"{name} must have 4 coordinates on its last axis, shape (..., 4); got shape {values.shape}.")
    not_finite = ~np.isfinite(values).all(axis=-1)
    outside = ((values < 0) | (values > 1)).any(axis=-1)
    inverted = (values[..., 2] < values[..., 0]) | (values[..., 3] < values[..., 1])
    bad = not_finite | outside | inverted
    if not bad.any():
        return
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    if not_finite[index]:
        what = "has a coordinate that is not finite"
    elif outside[index]:
        what = (
            "has a coordinate outside [0, 1]; boxes are normalized [ymin, xmin, ymax, xmax]: "
            "divide pixel coordinates by the image height and width"
        )
    else:
        what = (
            "has ymax < ymin or xmax < xmin; boxes are [ymin, xmin, ymax, xmax], "
            "not [xmin, ymin, xmax, ymax] or [cy, cx, h, w]"
        )
    where = ", ".join(str(i) for i in index)
    coordinates = [round(float(c), 6) for c in values[index]]
    raise ValueError(f"{name}[{where}] = {coordinates} {what}.")
