"""COCO-style average precision for detected boxes and instance masks, in numpy.

It reproduces pycocotools' `COCOeval` for area range "all", up to 100
detections per image and class, and no crowd annotations: detections are
matched greedily per image and class in order of score, each to the unmatched
ground truth of highest IoU at or above the threshold; precision is made
monotone and read at 101 recall points. So the figures equal what any COCO
tool computes from the JSON files `tfdl.evaluation.coco_json` writes.

Objects are given per image, as tfdl's pipelines and detectors hold them:

- ground truth: `{"boxes": [K, 4], "classes": [K], "image_size": (height,
  width)}` and `"masks": [K, H, W]` for mask AP;
- detections: `{"boxes": [D, 4], "scores": [D], "classes": [D]}` and
  `"masks": [D, H, W]` for mask AP (slice padded NMS output to the valid
  detections first).

Boxes are normalized `[ymin, xmin, ymax, xmax]` in [0, 1]; they are turned
into COCO's pixel `[x, y, width, height]` before any IoU, as COCO scores them.
Masks are binary and image-sized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

# COCO's own definitions (pycocotools `Params`), not np.arange, so that the
# thresholds are bit-identical to the ones COCOeval compares IoUs against.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_MAX_DETECTIONS = 100
KINDS = ("box", "mask")


@dataclass(frozen=True)
class ImageObjects:
    """The objects of one image, validated and in COCO's pixel coordinates.

    `boxes` are `[x, y, width, height]` in pixels; `scores` is None for ground
    truth; `masks` is None when masks are not used.
    """

    height: int
    width: int
    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray | None = None
    masks: np.ndarray | None = None


@dataclass(frozen=True)
class DetectionMetrics:
    """COCO average precision per IoU threshold and class.

    `average_precision[t, c]` is the AP of class c at `iou_thresholds[t]`
    (101-point interpolated); NaN for a class with no ground truth, which
    COCO leaves out of every mean.
    """

    kind: str
    class_names: tuple[str, ...]
    iou_thresholds: np.ndarray
    average_precision: np.ndarray
    num_ground_truth: np.ndarray

    def ap_at(self, iou_threshold: float) -> np.ndarray:
        """Per-class AP at one of the evaluated IoU thresholds (NaN: no ground truth).

        Raises:
            ValueError: if `iou_threshold` was not evaluated.
        """
        hits = np.flatnonzero(np.isclose(self.iou_thresholds, iou_threshold))
        if hits.size == 0:
            raise ValueError(
                f"IoU threshold {iou_threshold} was not evaluated; the thresholds are "
                f"{np.round(self.iou_thresholds, 4).tolist()}"
            )
        return self.average_precision[hits[0]]

    @property
    def map_50(self) -> float:
        """mAP@0.5: AP at IoU 0.5, averaged over the classes with ground truth."""
        return float(np.nanmean(self.ap_at(0.5)))

    @property
    def map_50_95(self) -> float:
        """mAP@[.5:.95]: AP averaged over all `iou_thresholds` (COCO's by default) and classes."""
        return float(np.nanmean(self.average_precision))

    def to_dict(self) -> dict:
        """JSON-ready figures; a class with no ground truth has AP None."""
        has_50 = bool(np.isclose(self.iou_thresholds, 0.5).any())
        per_class_50_95 = np.mean(self.average_precision, axis=0)

        def number(value: float) -> float | None:
            return None if np.isnan(value) else float(value)

        per_class = {}
        for i, name in enumerate(self.class_names):
            entry = {"num_ground_truth": int(self.num_ground_truth[i])}
            if has_50:
                entry["ap_50"] = number(self.ap_at(0.5)[i])
            entry["ap_50_95"] = number(per_class_50_95[i])
            per_class[name] = entry
        summary = {"kind": self.kind, "iou_thresholds": [round(float(t), 4) for t in self.iou_thresholds]}
        if has_50:
            summary["map_50"] = self.map_50
        summary["map_50_95"] = self.map_50_95
        summary["per_class"] = per_class
        return summary


def normalized_to_pixel_xywh(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalized `[ymin, xmin, ymax, xmax]` boxes to COCO's pixel `[x, y, width, height]`.

    Example:
        >>> normalized_to_pixel_xywh(np.array([[0.25, 0.5, 0.75, 1.0]]), 40, 80).tolist()
        [[40.0, 10.0, 40.0, 20.0]]
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.stack(
        [
            boxes[:, 1] * width,
            boxes[:, 0] * height,
            (boxes[:, 3] - boxes[:, 1]) * width,
            (boxes[:, 2] - boxes[:, 0]) * height,
        ],
        axis=1,
    )


def _image_size(where: str, value) -> tuple[int, int]:
    size = np.asarray(value)
    if size.shape != (2,) or size.dtype.kind not in "iuf" or np.any(size < 1) or np.any(size != np.round(size)):
        raise ValueError(f"{where} is {value!r}; expected (height, width) in pixels, positive integers")
    return int(size[0]), int(size[1])


def _boxes(where: str, item: Mapping) -> np.ndarray:
    if "boxes" not in item:
        raise ValueError(f"{where} has no 'boxes'; give [K, 4] normalized [ymin, xmin, ymax, xmax]")
    boxes = np.asarray(item["boxes"], dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"{where}['boxes'] has shape {boxes.shape}; expected [K, 4] normalized [ymin, xmin, ymax, xmax]"
        )
    if not np.all(np.isfinite(boxes)) or boxes.min() < 0 or boxes.max() > 1:
        raise ValueError(
            f"{where}['boxes'] holds values in [{boxes.min()}, {boxes.max()}], outside [0, 1]; "
            "boxes must be normalized [ymin, xmin, ymax, xmax] (divide pixel boxes by the image size)"
        )
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(
            f"{where}['boxes'] has a box with ymax < ymin or xmax < xmin; expected [ymin, xmin, ymax, xmax]"
        )
    return boxes


def _vector(where: str, item: Mapping, key: str, count: int) -> np.ndarray:
    if key not in item:
        raise ValueError(f"{where} has no '{key}'; give one per box")
    values = np.asarray(item[key]).reshape(-1) if np.size(item[key]) else np.zeros(0)
    if values.shape[0] != count:
        raise ValueError(f"{where}['{key}'] has {values.shape[0]} values but 'boxes' has {count}; give one per box")
    return values


def _classes(where: str, item: Mapping, count: int, num_classes: int | None) -> np.ndarray:
    classes = _vector(where, item, "classes", count)
    # Detectors (tf.image.combined_non_max_suppression) return classes as floats.
    if classes.size and (classes.dtype.kind not in "iufb" or np.any(classes != np.round(classes))):
        raise ValueError(f"{where}['classes'] holds non-integer values; expected class indices")
    classes = classes.astype(np.int64)
    if classes.size and classes.min() < 0:
        raise ValueError(f"{where}['classes'] holds {classes.min()}; class indices start at 0")
    if num_classes is not None and classes.size and classes.max() >= num_classes:
        raise ValueError(
            f"{where}['classes'] holds {classes.max()}, outside [0, {num_classes}) for {num_classes} class names"
        )
    return classes


def _masks(where: str, item: Mapping, count: int, height: int, width: int) -> np.ndarray:
    masks = np.asarray(item["masks"])
    if masks.size == 0 and count == 0:
        return np.zeros((0, height, width), dtype=bool)
    if masks.shape != (count, height, width):
        raise ValueError(
            f"{where}['masks'] has shape {masks.shape}; expected [{count}, {height}, {width}] "
            "(one image-sized binary mask per box)"
        )
    if masks.dtype != bool and not np.all((masks == 0) | (masks == 1)):
        raise ValueError(f"{where}['masks'] holds values other than 0 and 1; threshold soft masks first")
    return masks.astype(bool)


def _use_masks(what: str, items: Sequence[Mapping], masks: bool | None) -> bool:
    present = ["masks" in item for item in items]
    if masks is None:
        if any(present) and not all(present):
            raise ValueError(
                f"{what}[{present.index(False)}] has no 'masks' but other images do; give masks for all or none"
            )
        return bool(present) and all(present)
    if masks and not all(present):
        raise ValueError(
            f"{what}[{present.index(False)}] has no 'masks'; mask AP needs [K, H, W] masks for every image"
        )
    return masks


def _image_objects(
    where: str, item: Mapping, size: tuple[int, int], num_classes: int | None, use_masks: bool, with_scores: bool
) -> ImageObjects:
    height, width = size
    boxes = _boxes(where, item)
    scores = None
    if with_scores:
        scores = _vector(where, item, "scores", len(boxes)).astype(np.float64)
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{where}['scores'] holds NaN or infinity; scores must be finite")
    return ImageObjects(
        height=height,
        width=width,
        boxes=normalized_to_pixel_xywh(boxes, height, width),
        classes=_classes(where, item, len(boxes), num_classes),
        scores=scores,
        masks=_masks(where, item, len(boxes), height, width) if use_masks else None,
    )


def parse_ground_truth(
    ground_truth: Sequence[Mapping], num_classes: int | None = None, masks: bool | None = False
) -> list[ImageObjects]:
    """Validate per-image ground truth and convert its boxes to pixels.

    Args:
        ground_truth: per image, a mapping with "boxes", "classes",
            "image_size" and optionally "masks" (see the module docstring).
        num_classes: if given, class indices must lie below it.
        masks: True requires masks, False ignores them, None keeps them
            when every image has them.

    Returns:
        One `ImageObjects` per image.

    Raises:
        ValueError: naming the image and field that is missing or wrong.
    """
    if len(ground_truth) == 0:
        raise ValueError("ground_truth is empty; give one entry per evaluated image")
    use_masks = _use_masks("ground_truth", ground_truth, masks)
    images = []
    for i, item in enumerate(ground_truth):
        where = f"ground_truth[{i}]"
        if "image_size" not in item:
            raise ValueError(f"{where} has no 'image_size'; give (height, width) in pixels")
        size = _image_size(f"{where}['image_size']", item["image_size"])
        images.append(_image_objects(where, item, size, num_classes, use_masks, with_scores=False))
    return images


def parse_detections(
    detections: Sequence[Mapping],
    image_sizes: Sequence[tuple[int, int]],
    num_classes: int | None = None,
    masks: bool | None = False,
) -> list[ImageObjects]:
    """Validate per-image detections and convert their boxes to pixels.

    Args:
        detections: per image, a mapping with "boxes", "scores", "classes"
            and optionally "masks" (see the module docstring).
        image_sizes: (height, width) of each image, in the same order.
        num_classes: if given, class indices must lie below it.
        masks: True requires masks, False ignores them, None keeps them
            when every image has them.

    Returns:
        One `ImageObjects` per image, with scores.

    Raises:
        ValueError: naming the image and field that is missing or wrong.
    """
    if len(detections) != len(image_sizes):
        raise ValueError(
            f"detections has {len(detections)} images but there are {len(image_sizes)} image sizes, one per "
            "ground-truth image; "
            "give one entry per image, in the same order (an empty one for an image without detections)"
        )
    use_masks = _use_masks("detections", detections, masks)
    images = []
    for i, (item, size) in enumerate(zip(detections, image_sizes)):
        size = _image_size(f"image_sizes[{i}]", size)
        images.append(_image_objects(f"detections[{i}]", item, size, num_classes, use_masks, with_scores=True))
    return images


def _box_iou(detected: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of pixel xywh boxes [D, 4] x [G, 4], with the float operations of COCO's bbIou."""
    width = np.minimum((detected[:, 0] + detected[:, 2])[:, None], (truth[:, 0] + truth[:, 2])[None]) - np.maximum(
        detected[:, 0][:, None], truth[:, 0][None]
    )
    height = np.minimum((detected[:, 1] + detected[:, 3])[:, None], (truth[:, 1] + truth[:, 3])[None]) - np.maximum(
        detected[:, 1][:, None], truth[:, 1][None]
    )
    overlaps = (width > 0) & (height > 0)
    intersection = np.where(overlaps, width * height, 0.0)
    union = (detected[:, 2] * detected[:, 3])[:, None] + (truth[:, 2] * truth[:, 3])[None] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=overlaps)


def _mask_iou(detected: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of binary masks [D, H, W] x [G, H, W]."""
    pixels = detected.shape[1] * detected.shape[2]
    detected = detected.reshape(len(detected), pixels)
    truth = truth.reshape(len(truth), pixels)
    # A float matmul counts overlapping pixels fast; float32 counts are exact
    # below 2**24 pixels and take half the memory of float64.
    dtype = np.float32 if pixels < 2**24 else np.float64
    intersection = (detected.astype(dtype) @ truth.T.astype(dtype)).astype(np.float64)
    union = detected.sum(axis=1)[:, None] + truth.sum(axis=1)[None] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _greedy_match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Which detections (rows of `ious`, best score first) match a ground truth, per threshold: [T, D]."""
    num_detected, num_truth = ious.shape
    matched = np.zeros((len(thresholds), num_detected), dtype=bool)
    if num_truth == 0:
        return matched
    taken = np.zeros((len(thresholds), num_truth), dtype=bool)
    # COCO caps the threshold just below 1 so that a perfect IoU of 1.0 still matches at 1.0.
    limits = np.minimum(thresholds, 1 - 1e-10)
    rows = np.arange(len(thresholds))
    for d in range(num_detected):
        candidates = np.where(taken, -1.0, ious[d][None, :])
        # Among equal IoUs COCO keeps the last ground truth, so search from the end.
        best = num_truth - 1 - np.argmax(candidates[:, ::-1], axis=1)
        hit = candidates[rows, best] >= limits
        matched[hit, d] = True
        taken[rows[hit], best[hit]] = True
    return matched


def _average_precision(scores: np.ndarray, matched: np.ndarray, num_truth: int) -> np.ndarray:
    """101-point interpolated AP per threshold from all detections of one class: [T]."""
    if scores.size == 0:
        return np.zeros(matched.shape[0])
    order = np.argsort(-scores, kind="mergesort")
    matched = matched[:, order]
    true_positives = np.cumsum(matched, axis=1, dtype=np.float64)
    false_positives = np.cumsum(~matched, axis=1, dtype=np.float64)
    recall = true_positives / num_truth
    precision = true_positives / (true_positives + false_positives + np.spacing(1))
    # Interpolated precision at recall r is the best precision at any recall >= r.
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    ap = np.zeros(matched.shape[0])
    for t in range(matched.shape[0]):
        index = np.searchsorted(recall[t], COCO_RECALL_POINTS, side="left")
        reached = index < scores.size
        ap[t] = np.where(reached, precision[t, np.minimum(index, scores.size - 1)], 0.0).mean()
    return ap


def _class_names(class_names: Sequence[str] | None, images: list[ImageObjects]) -> tuple[str, ...]:
    if class_names is not None:
        if len(class_names) == 0:
            raise ValueError("class_names is empty; give a name per class")
        return tuple(class_names)
    largest = max((int(image.classes.max()) for image in images if image.classes.size), default=0)
    return tuple(str(i) for i in range(largest + 1))


def _check_thresholds(iou_thresholds: Sequence[float]) -> np.ndarray:
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    if thresholds.size == 0 or np.any(thresholds <= 0) or np.any(thresholds > 1):
        raise ValueError(f"iou_thresholds is {list(thresholds)}; expected one or more values in (0, 1]")
    return thresholds


def detection_map(
    ground_truth: Sequence[Mapping],
    detections: Sequence[Mapping],
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    kind: str = "box",
    class_names: Sequence[str] | None = None,
    max_detections: int = COCO_MAX_DETECTIONS,
) -> DetectionMetrics:
    """COCO average precision of detections against ground truth, for boxes or masks.

    Args:
        ground_truth: per image, "boxes" (normalized [ymin, xmin, ymax, xmax]),
            "classes", "image_size" (height, width) and, for kind="mask", "masks".
        detections: per image, in the same order, "boxes", "scores", "classes"
            and, for kind="mask", "masks".
        iou_thresholds: the IoU thresholds to score at; COCO's 0.50:0.05:0.95
            by default.
        kind: "box" scores box IoU, "mask" scores mask IoU (COCO's "segm").
        class_names: a name per class index; defaults to "0", "1", ... up to
            the largest index seen.
        max_detections: the highest-scoring detections kept per image and
            class (COCO's maxDets).

    Returns:
        The per-class, per-threshold AP with `map_50` and `map_50_95`.

    Raises:
        ValueError: on an unknown `kind`, different numbers of images,
            boxes outside [0, 1], lengths that disagree with the boxes,
            missing masks for kind="mask", or ground truth without objects.

    Example:
        >>> truth = [{"boxes": [[0.1, 0.1, 0.5, 0.5]], "classes": [0], "image_size": (64, 64)}]
        >>> found = [{"boxes": [[0.1, 0.1, 0.5, 0.5]], "scores": [0.9], "classes": [0]}]
        >>> round(detection_map(truth, found).map_50_95, 6)
        1.0
    """
    if kind not in KINDS:
        raise ValueError(f"kind is {kind!r}; expected one of {KINDS}")
    if int(max_detections) != max_detections or max_detections < 1:
        raise ValueError(f"max_detections is {max_detections!r}; expected a positive integer")
    thresholds = _check_thresholds(iou_thresholds)
    num_classes = None if class_names is None else len(class_names)
    with_masks = kind == "mask"
    truth = parse_ground_truth(ground_truth, num_classes, masks=with_masks)
    found = parse_detections(detections, [(t.height, t.width) for t in truth], num_classes, masks=with_masks)
    names = _class_names(class_names, truth + found)

    num_ground_truth = np.bincount(np.concatenate([t.classes for t in truth]), minlength=len(names))
    if num_ground_truth.sum() == 0:
        raise ValueError("ground_truth holds no objects in any image; average precision is undefined")

    scores_per_class = [[] for _ in names]
    matched_per_class = [[] for _ in names]
    for image_truth, image_found in zip(truth, found):
        for c in np.union1d(image_truth.classes, image_found.classes):
            in_truth = np.flatnonzero(image_truth.classes == c)
            # COCO sorts an image's detections of a class by score, stably, and keeps the best ones.
            in_found = np.flatnonzero(image_found.classes == c)
            in_found = in_found[np.argsort(-image_found.scores[in_found], kind="mergesort")][:max_detections]
            if with_masks:
                ious = _mask_iou(image_found.masks[in_found], image_truth.masks[in_truth])
            else:
                ious = _box_iou(image_found.boxes[in_found], image_truth.boxes[in_truth])
            scores_per_class[c].append(image_found.scores[in_found])
            matched_per_class[c].append(_greedy_match(ious, thresholds))

    average_precision = np.full((len(thresholds), len(names)), np.nan)
    for c in np.flatnonzero(num_ground_truth):
        average_precision[:, c] = _average_precision(
            np.concatenate(scores_per_class[c]), np.concatenate(matched_per_class[c], axis=1), num_ground_truth[c]
        )
    return DetectionMetrics(
        kind=kind,
        class_names=names,
        iou_thresholds=thresholds,
        average_precision=average_precision,
        num_ground_truth=num_ground_truth,
    )
