"""COCO JSON files for a detection run: the ground truth as an annotations file, the detections as a results file.

With both beside `metrics.json`, any COCO tool (pycocotools' `COCOeval`
among them) can re-score a run. Objects come per image in the structure
`tfdl.evaluation.detection_map` reads; image i gets COCO id i + 1 and class c
category id c + 1, because COCO ids start at 1 (pycocotools treats an
annotation id of 0 as "unmatched"). Masks are written as uncompressed RLE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tfdl.evaluation.detection_map import ImageObjects, parse_detections, parse_ground_truth


def mask_to_rle(mask: np.ndarray) -> dict:
    """Encode a binary mask as COCO's uncompressed RLE.

    COCO reads a mask in column-major order (down each column, then the next
    column) as alternating runs of 0s and 1s, starting with 0s, so a mask
    whose first pixel is set starts with a run of length 0.

    Args:
        mask: a binary [H, W] array.

    Returns:
        `{"counts": [run lengths], "size": [H, W]}`.

    Raises:
        ValueError: if `mask` is not a non-empty 2-D array of 0s and 1s.

    Example:
        >>> mask_to_rle(np.array([[1, 0], [1, 1]]))
        {'counts': [0, 2, 1, 1], 'size': [2, 2]}
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask has shape {mask.shape}; expected a non-empty [H, W] array")
    if mask.dtype != bool and not np.all((mask == 0) | (mask == 1)):
        raise ValueError("mask holds values other than 0 and 1; threshold it first")
    flat = mask.astype(np.int8).ravel(order="F")
    starts = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], starts, [flat.size]]))
    if flat[0] == 1:
        counts = np.concatenate([[0], counts])
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _write_json(path: str | Path, content: dict | list) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def _categories(class_names: Sequence[str] | None, images: list[ImageObjects]) -> list[dict]:
    if class_names is None:
        largest = max((int(image.classes.max()) for image in images if image.classes.size), default=0)
        class_names = [str(i) for i in range(largest + 1)]
    return [{"id": i + 1, "name": str(name)} for i, name in enumerate(class_names)]


def write_coco_ground_truth(
    path: str | Path, ground_truth: Sequence[Mapping], class_names: Sequence[str] | None = None
) -> Path:
    """Write per-image ground truth as a COCO annotations JSON.

    Each object becomes an annotation with a pixel `bbox` [x, y, width,
    height], `iscrowd` 0, and, when the images carry masks, a `segmentation`
    in uncompressed RLE whose pixel count is the `area` (COCO's convention;
    without masks the area is the box's).

    Args:
        path: the file to write; missing parent folders are created.
        ground_truth: per image, "boxes" (normalized [ymin, xmin, ymax, xmax]),
            "classes", "image_size" (height, width) and optionally "masks"
            (all images or none).
        class_names: a name per class index, written as the categories;
            defaults to "0", "1", ... up to the largest index present.

    Returns:
        The path written.

    Raises:
        ValueError: on malformed ground truth (see `detection_map`).

    Example:
        >>> truth = [{"boxes": [[0.0, 0.5, 0.5, 1.0]], "classes": [0], "image_size": (10, 20)}]
        >>> import tempfile, os
        >>> path = write_coco_ground_truth(os.path.join(tempfile.mkdtemp(), "gt.json"), truth, ["circle"])
        >>> json.loads(path.read_text())["annotations"][0]["bbox"]
        [10.0, 0.0, 10.0, 5.0]
    """
    num_classes = None if class_names is None else len(class_names)
    images = parse_ground_truth(ground_truth, num_classes, masks=None)
    annotations = []
    for image_id, image in enumerate(images, start=1):
        for k in range(len(image.classes)):
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(image.classes[k]) + 1,
                "bbox": [float(v) for v in image.boxes[k]],
                "area": float(image.boxes[k, 2] * image.boxes[k, 3]),
                "iscrowd": 0,
            }
            if image.masks is not None:
                annotation["segmentation"] = mask_to_rle(image.masks[k])
                annotation["area"] = float(image.masks[k].sum())
            annotations.append(annotation)
    return _write_json(
        path,
        {
            "info": {"description": "ground truth written by tfdl"},
            "images": [
                {"id": image_id, "height": image.height, "width": image.width}
                for image_id, image in enumerate(images, start=1)
            ],
            "categories": _categories(class_names, images),
            "annotations": annotations,
        },
    )


def write_coco_detections(
    path: str | Path, detections: Sequence[Mapping], image_sizes: Sequence[tuple[int, int]]
) -> Path:
    """Write per-image detections as a COCO results JSON.

    Each detection becomes `{"image_id", "category_id", "bbox", "score"}`,
    plus `segmentation` (uncompressed RLE) when the detections carry masks.
    Image ids and category ids follow `write_coco_ground_truth`, so the two
    files load together (`COCO(gt).loadRes(results)`). With no detections at
    all the file holds `[]`, which pycocotools' `loadRes` cannot load: it
    has no results to score.

    Args:
        path: the file to write; missing parent folders are created.
        detections: per image, in the ground truth's order, "boxes"
            (normalized [ymin, xmin, ymax, xmax]), "scores", "classes" and
            optionally "masks" (all images or none).
        image_sizes: (height, width) of each image, to turn boxes into pixels.

    Returns:
        The path written.

    Raises:
        ValueError: on malformed detections or a count of images that
            differs from `image_sizes`.

    Example:
        >>> found = [{"boxes": [[0.0, 0.5, 0.5, 1.0]], "scores": [0.75], "classes": [2]}]
        >>> import tempfile, os
        >>> path = write_coco_detections(os.path.join(tempfile.mkdtemp(), "dt.json"), found, [(10, 20)])
        >>> json.loads(path.read_text())
        [{'image_id': 1, 'category_id': 3, 'bbox': [10.0, 0.0, 10.0, 5.0], 'score': 0.75}]
    """
    images = parse_detections(detections, image_sizes, masks=None)
    results = []
    for image_id, image in enumerate(images, start=1):
        for k in range(len(image.classes)):
            result = {
                "image_id": image_id,
                "category_id": int(image.classes[k]) + 1,
                "bbox": [float(v) for v in image.boxes[k]],
                "score": float(image.scores[k]),
            }
            if image.masks is not None:
                result["segmentation"] = mask_to_rle(image.masks[k])
            results.append(result)
    return _write_json(path, results)


def pycocotools_maps(ground_truth_json: str | Path, detections_json: str | Path,
                     kind: str = "bbox") -> tuple[float, float] | None:
    """(mAP@0.5, mAP@[.5:.95]) as pycocotools computes them from the two files; None when it is not installed.

    A cross-check of `tfdl.evaluation.detection_map` by the reference
    implementation (`kind`: "bbox" or "segm").
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    import contextlib
    import io

    if not json.loads(Path(detections_json).read_text()):
        return 0.0, 0.0  # loadRes cannot read an empty results file; with no detections every AP is 0
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and tables
        truth = COCO(str(ground_truth_json))
        evaluation = COCOeval(truth, truth.loadRes(str(detections_json)), kind)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[1]), float(evaluation.stats[0])
