"""Anchor boxes: a grid of prior boxes over one or several feature maps, and k-means anchor shapes.

A detector's head predicts, for every cell of a feature map and every anchor
shape, a class score and offsets from that anchor (SSD, RetinaNet, YOLO,
Faster R-CNN's RPN). `grid_anchors` lays the anchors out in the order such a
head's outputs flatten to; `kmeans_anchors` picks anchor shapes from the
training boxes, as YOLOv2 does, when hand-set scales and aspect ratios fit the
data poorly.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np
import tensorflow as tf

FeatureSizes = Sequence[int | tuple[int, int]]


def grid_anchors(
    feature_sizes: FeatureSizes,
    scales: Sequence[float] | Sequence[Sequence[float]],
    aspect_ratios: Sequence[float] = (1.0,),
    *,
    clip: bool = False,
) -> tf.Tensor:
    """Anchors of every scale and aspect ratio centered on every cell of one or several feature maps.

    An anchor of scale `s` and aspect ratio `r` (width / height) has height
    `s / sqrt(r)` and width `s * sqrt(r)`, as fractions of the image height
    and width, so `s` is the side of the square of the same area. On a level
    of `H x W` cells, anchors are centered at `((i + 0.5) / H, (j + 0.5) / W)`.

    Order: level by level; within a level, cells in row-major order; within a
    cell, scale by scale and, for each scale, aspect ratio by aspect ratio.
    A head output `(batch, H, W, A * 4)` reshaped to `(batch, H * W * A, 4)`
    lines up with the level's anchors, `A = len(scales) * len(aspect_ratios)`.

    Args:
        feature_sizes: one entry per level, each an int (a square `H x H`
            map) or a pair `(H, W)`: `[8]` is one level, `[8, 4]` two.
        scales: anchor sizes, fractions of the image: a flat sequence used on
            every level, or one sequence per level (`[[0.1], [0.3]]`).
        aspect_ratios: widths over heights, used on every level. Defaults to
            `(1.0,)`.
        clip: clip anchors that cross the image border to [0, 1]. Defaults
            to False (the anchors keep their shape, as most detectors do).

    Returns:
        A float32 tensor `(total, 4)` of `[ymin, xmin, ymax, xmax]` anchors,
        `total = sum over levels of H * W * A`.

    Raises:
        ValueError: if a feature size is not a positive int or pair, a scale
            or aspect ratio is not positive, or per-level scales do not give
            one entry per level.

    Example:

    >>> grid_anchors([2], scales=[0.5]).numpy().tolist()
    [[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5], [0.5, 0.5, 1.0, 1.0]]
    """
    levels = _feature_sizes(feature_sizes)
    ratios = _positive_vector(aspect_ratios, "aspect_ratios")
    root = np.sqrt(ratios)
    sizes = []
    for level_scales in _per_level(scales, len(levels), 1, "scales"):
        level_scales = _positive_vector(level_scales, "scales")[:, None]
        sizes.append(np.stack([level_scales / root, level_scales * root], axis=-1).reshape(-1, 2))
    return _tile(levels, sizes, clip)


def grid_anchors_from_sizes(
    feature_sizes: FeatureSizes,
    sizes_hw,
    *,
    clip: bool = False,
) -> tf.Tensor:
    """Anchors of given `(height, width)` shapes centered on every cell of one or several feature maps.

    The shapes-first form of `grid_anchors`, for anchors from `kmeans_anchors`
    (YOLO assigns the k-means shapes to levels, small shapes to fine maps).
    Same centers and order, with the shapes in the order given.

    Args:
        feature_sizes: one entry per level, each an int or a pair `(H, W)`.
        sizes_hw: anchor `(height, width)` pairs as fractions of the image:
            an array `(A, 2)` used on every level, or one `(A_l, 2)` array
            per level.
        clip: clip anchors to [0, 1]. Defaults to False.

    Returns:
        A float32 tensor `(total, 4)` of `[ymin, xmin, ymax, xmax]` anchors.

    Raises:
        ValueError: if a feature size is not a positive int or pair, a size
            is not a positive `(height, width)` pair, or per-level sizes do
            not give one entry per level.

    Example:

    >>> grid_anchors_from_sizes([1], [[0.5, 0.25]]).numpy().tolist()
    [[0.25, 0.375, 0.75, 0.625]]
    """
    levels = _feature_sizes(feature_sizes)
    sizes = _per_level(sizes_hw, len(levels), 2, "sizes_hw")
    for level_sizes in sizes:
        if level_sizes.shape[-1] != 2 or not (np.isfinite(level_sizes).all() and (level_sizes > 0).all()):
            raise ValueError(
                f"sizes_hw must hold positive (height, width) pairs, shape (A, 2); got {level_sizes.tolist()}."
            )
    return _tile(levels, sizes, clip)


def kmeans_anchors(boxes_hw, k: int, seed: int = 0, max_iterations: int = 300) -> np.ndarray:
    """Anchor shapes from k-means over training box heights and widths with the distance 1 - IoU (YOLOv2).

    Boxes are compared by shape alone, as if they shared a center, so a
    cluster's distance does not grow with box size as a Euclidean one would.
    Seeding is k-means++ (with the same distance), then Lloyd iterations
    (assign each box to the centroid of highest IoU, move each centroid to
    its boxes' mean) until the assignment stops changing. A cluster left
    empty restarts at the box farthest from its centroid.

    Args:
        boxes_hw: array `(N, 2)` of box heights and widths (normalized, or
            in pixels: the centroids come back in the same unit).
        k: number of anchor shapes, at least 1 and at most the number of
            distinct shapes in `boxes_hw`.
        seed: seeds the k-means++ draws; the same seed gives the same
            anchors.
        max_iterations: cap on the Lloyd iterations. Defaults to 300.

    Returns:
        A float32 array `(k, 2)` of `(height, width)` centroids, smallest
        area first.

    Raises:
        ValueError: if `boxes_hw` is not `(N, 2)` of positive finite sizes,
            or `k` is not an int in [1, distinct shapes].

    Example:

    >>> shapes = [[0.1, 0.1], [0.11, 0.1], [0.5, 0.2], [0.52, 0.2]]
    >>> print(kmeans_anchors(shapes, k=2).round(3))
    [[0.105 0.1  ]
     [0.51  0.2  ]]
    """
    boxes = np.asarray(boxes_hw, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 2 or boxes.shape[0] == 0:
        raise ValueError(f"boxes_hw must be a non-empty array (N, 2) of (height, width); got shape {boxes.shape}.")
    if not (np.isfinite(boxes).all() and (boxes > 0).all()):
        row = int(np.argwhere(~(np.isfinite(boxes) & (boxes > 0)).all(axis=1))[0, 0])
        raise ValueError(
            f"boxes_hw[{row}] = {boxes[row].tolist()}: heights and widths must be positive and finite; "
            "drop zero-size (padding) boxes before clustering."
        )
    distinct = len(np.unique(boxes, axis=0))
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= distinct:
        raise ValueError(f"k={k!r}: use an int from 1 to {distinct}, the number of distinct box shapes given.")
    rng = np.random.default_rng(seed)
    centroids = _kmeans_plus_plus(boxes, int(k), rng)
    assignment = None
    for _ in range(max_iterations):
        overlaps = _shape_iou(boxes, centroids)
        new_assignment = overlaps.argmax(axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for j in range(len(centroids)):
            members = boxes[assignment == j]
            if len(members):
                centroids[j] = members.mean(axis=0)
            else:
                farthest = int((1.0 - overlaps.max(axis=1)).argmax())
                centroids[j] = boxes[farthest]
    order = np.argsort(centroids.prod(axis=1), kind="stable")
    return centroids[order].astype(np.float32)


def _shape_iou(boxes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU `(N, K)` of `(h, w)` shapes placed on a common center."""
    intersection = np.minimum(boxes[:, None, 0], centroids[None, :, 0]) * np.minimum(
        boxes[:, None, 1], centroids[None, :, 1]
    )
    union = boxes.prod(axis=1)[:, None] + centroids.prod(axis=1)[None, :] - intersection
    return intersection / union


def _kmeans_plus_plus(boxes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centroids = [boxes[rng.integers(len(boxes))]]
    for _ in range(1, k):
        distance = 1.0 - _shape_iou(boxes, np.array(centroids)).max(axis=1)
        weights = distance**2
        centroids.append(boxes[rng.choice(len(boxes), p=weights / weights.sum())])
    return np.array(centroids)


def _feature_sizes(feature_sizes) -> list[tuple[int, int]]:
    if isinstance(feature_sizes, numbers.Integral) or not isinstance(feature_sizes, Sequence) or not feature_sizes:
        raise ValueError(
            f"feature_sizes={feature_sizes!r}: pass a non-empty list with one entry per level, each an int or "
            "(height, width), e.g. [8] or [(8, 8), (4, 4)]."
        )
    levels = []
    for size in feature_sizes:
        pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
        if len(pair) != 2 or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in pair):
            raise ValueError(f"feature_sizes holds {size!r}: each level is a positive int or (height, width) of ints.")
        levels.append((int(pair[0]), int(pair[1])))
    return levels


def _per_level(values, num_levels: int, item_ndim: int, name: str) -> list[np.ndarray]:
    """`values` shared by every level (an array of `item_ndim` dims), or one entry per level."""
    try:
        shared = np.asarray(values, dtype=np.float64)
    except ValueError:  # ragged: entries of different lengths, one per level
        shared = None
    if shared is not None and shared.ndim == item_ndim:
        return [shared] * num_levels
    levels = [np.asarray(v, dtype=np.float64) for v in values]
    if len(levels) != num_levels or any(v.ndim != item_ndim for v in levels):
        raise ValueError(
            f"{name}: give one set for every level, or one per level ({num_levels} levels); got {values!r}."
        )
    return levels


def _positive_vector(values, name: str) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float64)
    if vector.ndim != 1 or vector.size == 0 or not (np.isfinite(vector).all() and (vector > 0).all()):
        raise ValueError(f"{name} must be a non-empty list of positive numbers; got {values!r}.")
    return vector


def _tile(levels: list[tuple[int, int]], sizes: list[np.ndarray], clip: bool) -> tf.Tensor:
    anchors = []
    for (height, width), level_sizes in zip(levels, sizes):
        cy = (np.arange(height) + 0.5) / height
        cx = (np.arange(width) + 0.5) / width
        centers = np.stack(np.meshgrid(cy, cx, indexing="ij"), axis=-1)[:, :, None, :]  # (H, W, 1, 2)
        half = level_sizes[None, None, :, :] / 2  # (1, 1, A, 2)
        anchors.append(np.concatenate([centers - half, centers + half], axis=-1).reshape(-1, 4))
    anchors = np.concatenate(anchors, axis=0)
    if clip:
        anchors = np.clip(anchors, 0.0, 1.0)
    return tf.constant(anchors, dtype=tf.float32)
