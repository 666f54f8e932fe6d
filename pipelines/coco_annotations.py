"""Images plus a COCO annotations JSON as a detection or instance-segmentation dataset.

COCO's format is what most labelling tools export and most detection data
ships in. `load_coco_detection` reads the JSON, checks every image entry and
annotation before training starts (a bad one raises a `DataError` that names
the file and the annotation id, or is skipped and counted), and serves the
examples in the structure of `shapes_dataset(task="detection"|"instance")`,
so a vision config moves from the synthetic shapes to real data by changing
its source only.

Conventions, as in the synthetic shapes: an image is float32 in [0, 1]; a box
is `[ymin, xmin, ymax, xmax]` normalized by the image's width and height in
the JSON; class `i` is the `i`-th category in order of category id. A polygon
covers a pixel when the pixel's centre lies inside it (even-odd rule); it is
drawn straight at the output size, while an RLE mask is decoded at the image's
own size and resized with nearest neighbour, both sampling the same points
of the original image. pycocotools draws polygons with its own rule, so its
masks can differ from these on boundary pixels.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.image_directory import _check_image_size, image_loader

TASKS = ("detection", "instance")

# Labelling tools round box corners to whole or half pixels, so a box may
# poke out of its image by up to a pixel; it is clipped. Past that the box
# belongs to another image or another size: bad data.
_EDGE_TOLERANCE_PX = 1.0
# The image formats TensorFlow's decoder reads, as PIL names them.
# MPO is the multi-picture JPEG of some cameras; its first picture decodes as a JPEG.
_DECODABLE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF")
# Examples of each problem shown in an error message or a report entry.
_SHOWN = 5


def load_coco_detection(
    images_dir: str | os.PathLike,
    annotations_json: str | os.PathLike,
    image_size: tuple[int, int],
    task: Literal["detection", "instance"] = "detection",
    max_objects: int | None = None,
    on_bad_data: Literal["error", "skip"] = "error",
    report: DataReport | None = None,
    *,
    include_crowd: bool = False,
) -> tuple[tf.data.Dataset, tuple[str, ...]]:
    """Load images and their COCO annotations as a dataset of `(image, targets)`.

    The JSON holds `images` (`id`, `file_name` relative to `images_dir`,
    `width`, `height`), `categories` (`id`, `name`) and `annotations` (`id`,
    `image_id`, `category_id`, `bbox` `[x, y, width, height]` in pixels,
    optional `iscrowd`, and for the instance task a `segmentation`: a list of
    polygons `[x1, y1, x2, y2, ...]` in pixels, or RLE `{"counts", "size":
    [height, width]}`, the counts a list of run lengths or COCO's compressed
    string, read down the columns). Everything is checked here, including
    that each image file exists, is a PNG, JPEG, BMP or GIF, and has the size
    the JSON gives; images are decoded later, in the tf.data map.

    Elements follow the JSON's image order, one per image (images without
    annotations included, with only padding); objects follow the annotation
    order. Each element is `(image, targets)`: the image float32 `[H, W, 3]`
    in [0, 1] (bilinear resize with antialiasing; grayscale repeated to RGB),
    and targets, a dict of `boxes` float32 `[max_objects, 4]` and `classes`
    int32 `[max_objects]`, padded with 0 and -1, plus for `instance` `masks`,
    uint8 `[max_objects, H, W]`, padded with 0.

    Args:
        images_dir: the folder the images' `file_name` paths are relative to.
        annotations_json: the COCO annotations file.
        image_size: (height, width) of every output image and mask.
        task: `detection` (boxes and classes) or `instance` (also masks).
        max_objects: the padded number of objects per image; None: the most
            any image has (after bad annotations are skipped).
        on_bad_data: `error` raises on any bad image or annotation; `skip`
            leaves them out and counts them in `report` (without a report, in
            a warning). An image that is skipped takes its annotations with it.
        report: where skipped images and annotations, left-out crowd
            annotations and objects over `max_objects` are counted.
        include_crowd: keep `iscrowd` annotations as objects; by default they
            are left out (counted in `report`), as COCO training usually does:
            a crowd region is not one object.

    Returns:
        The unbatched dataset, and the class names (category names in order
        of category id).

    Raises:
        DataError: for a bad argument; an annotations file that cannot be
            read, is not JSON or lacks the `images`, `annotations` or
            `categories` lists; malformed or duplicate categories, or
            duplicate image ids; with `on_bad_data="error"`, naming the file
            and annotation ids, for any image entry that is malformed, whose
            file is missing, unreadable or of another size, any annotation
            that is malformed, refers to an unknown image or category, has a
            box outside its image or with no area, lacks a usable
            segmentation (instance task), or an image with more than
            `max_objects` objects; and when no image or no object is left.

    Example:
        >>> ds, class_names = load_coco_detection("images/", "instances.json", (256, 256))  # doctest: +SKIP
        >>> image, targets = next(iter(ds))  # doctest: +SKIP
        >>> image.shape, targets["boxes"].shape  # doctest: +SKIP
        (TensorShape([256, 256, 3]), TensorShape([12, 4]))
    """
    size = _check_image_size(image_size)
    _check_options(task, max_objects, on_bad_data)
    source = Path(annotations_json)
    folder = Path(images_dir)
    if not folder.is_dir():
        raise DataError(f"images folder {folder} does not exist; give the folder the 'file_name's of {source} are relative to")
    coco = _read_json(source)
    class_ids = _category_indices(coco["categories"], source)
    problems = _Problems()
    images = _read_images(coco["images"], folder, source, problems)
    crowd = _attach_annotations(coco["annotations"], images, class_ids, task, include_crowd, problems)
    kept = [image for image in images.values() if image is not None]
    if max_objects is not None:
        _check_object_counts(kept, max_objects, problems)
    problems.settle(source, on_bad_data, report)
    if report is not None:
        report.add("COCO annotations left out: iscrowd", len(crowd), crowd)
    if not kept:
        raise DataError(f"no usable image is left in {source} after skipping bad ones; fix the images or the file")
    max_objects = max_objects or _most_objects(kept, source)
    return _dataset(kept, size, max_objects, task), tuple(class_ids.values())


@dataclass
class _Object:
    box: np.ndarray  # normalized [ymin, xmin, ymax, xmax]
    class_index: int
    segmentation: tuple | None  # ("polygons", [points]) or ("rle", counts), parsed and checked


@dataclass
class _Image:
    id: int
    path: str
    height: int
    width: int
    objects: list[_Object] = field(default_factory=list)


class _Problems:
    """Bad images and annotations by kind, and what skipping them also drops."""

    def __init__(self) -> None:
        self.bad: dict[str, list[str]] = {}
        self.dropped: dict[str, list[str]] = {}

    def add(self, kind: str, example: str) -> None:
        self.bad.setdefault(kind, []).append(example)

    def drop(self, kind: str, example: str) -> None:
        self.dropped.setdefault(kind, []).append(example)

    def settle(self, source: Path, on_bad_data: str, report: DataReport | None) -> None:
        """Raise on bad data under `error`; under `skip` count it in `report` or a warning."""
        if not self.bad:
            return
        details = "; ".join(
            f"{kind}: {len(examples)} (e.g. {'; '.join(examples[:_SHOWN])})" for kind, examples in self.bad.items()
        )
        if on_bad_data == "error":
            total = sum(len(examples) for examples in self.bad.values())
            raise DataError(
                f"{source}: {total} bad images or annotations. {details}. Fix them, or set "
                "on_bad_data='skip' to leave them out"
            )
        if report is None:
            warnings.warn(f"{source}: skipped bad images or annotations. {details}", stacklevel=3)
            return
        for kind, examples in [*self.bad.items(), *self.dropped.items()]:
            report.add(kind, len(examples), examples)


def _check_options(task: str, max_objects: int | None, on_bad_data: str) -> None:
    if task not in TASKS:
        raise DataError(f"task={task!r}: use one of {', '.join(TASKS)} (COCO annotations hold boxes and masks)")
    if max_objects is not None and (
        not isinstance(max_objects, numbers.Integral) or isinstance(max_objects, bool) or max_objects < 1
    ):
        raise DataError(f"max_objects={max_objects!r}: give a positive integer, or None for the most any image has")
    if on_bad_data not in ("error", "skip"):
        raise DataError(f"on_bad_data={on_bad_data!r} is not a policy; use 'error' or 'skip'")


def _read_json(source: Path) -> dict:
    try:
        text = source.read_text()
    except OSError as err:
        raise DataError(f"cannot read COCO annotations {source}: {err.strerror or err}; check the path") from err
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{source} is not valid JSON ({err}); give a COCO annotations file") from err
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(coco, dict) or not isinstance(coco.get(key), list)]
    if missing:
        raise DataError(
            f"{source} is not a COCO annotations file: {', '.join(repr(k) for k in missing)} missing or not a list; "
            "it needs the lists 'images', 'annotations' and 'categories'"
        )
    return coco


def _category_indices(categories: list, source: Path) -> dict[int, str]:
    """{category id: name} in order of id, so class i is the i-th entry."""
    names: dict[int, str] = {}
    for i, category in enumerate(categories):
        if not isinstance(category, dict) or not _is_int(category.get("id")) or not isinstance(category.get("name"), str):
            raise DataError(f"{source}, categories[{i}] = {category!r}: a category needs an integer 'id' and a string 'name'")
        if category["id"] in names:
            raise DataError(f"{source}: category id {category['id']} appears twice; give each category its own id")
        names[category["id"]] = category["name"]
    if not names:
        raise DataError(f"{source} has no categories; list the classes under 'categories'")
    return dict(sorted(names.items()))


def _read_images(entries: list, folder: Path, source: Path, problems: _Problems) -> dict[int, _Image | None]:
    """{image id: image, or None when it is skipped}, in the JSON's order."""
    images: dict[int, _Image | None] = {}
    for i, entry in enumerate(entries):
        image_id = entry.get("id") if isinstance(entry, dict) else None
        if _is_int(image_id) and image_id in images:
            raise DataError(f"{source}: image id {image_id} appears twice (images[{i}]); give each image its own id")
        reason = _malformed_image(entry)
        if reason:
            problems.add("COCO images skipped: malformed entry", f"images[{i}]: {reason}")
            if _is_int(image_id):
                images[image_id] = None
            continue
        path = folder / entry["file_name"]
        reason = _image_file_problem(path, entry)
        if reason:
            problems.add(f"COCO images skipped: {reason[0]}", f"{path} (image id {image_id}){reason[1]}")
            images[image_id] = None
            continue
        images[image_id] = _Image(image_id, str(path.absolute()), entry["height"], entry["width"])
    return images


def _malformed_image(entry: Any) -> str:
    if not isinstance(entry, dict):
        return f"{entry!r} is not an object"
    if not _is_int(entry.get("id")):
        return f"'id' {entry.get('id')!r} is not an integer"
    if not isinstance(entry.get("file_name"), str) or not entry["file_name"]:
        return f"'file_name' {entry.get('file_name')!r} is not a file name"
    for key in ("width", "height"):
        if not _is_int(entry.get(key)) or entry[key] < 1:
            return f"'{key}' {entry.get(key)!r} is not a positive integer"
    return ""


def _image_file_problem(path: Path, entry: dict) -> tuple[str, str] | None:
    """(kind, detail) when the file cannot serve as this image; only its header is read."""
    # PIL comes with matplotlib, a dependency; imported here as only this loader needs it.
    from PIL import Image

    if not path.is_file():
        return ("missing file", "")
    try:
        with Image.open(path) as image:
            file_format, (width, height) = image.format, image.size
    except OSError:
        return ("not a readable image", "")
    if file_format not in _DECODABLE_FORMATS:
        return ("not a readable image", f": {file_format}, use PNG, JPEG, BMP or GIF")
    if (width, height) != (entry["width"], entry["height"]):
        return (
            "size differs from the JSON",
            f": the file is {width}x{height} (width x height), the JSON says {entry['width']}x{entry['height']}",
        )
    return None


def _attach_annotations(
    entries: list,
    images: dict[int, _Image | None],
    class_ids: dict[int, str],
    task: str,
    include_crowd: bool,
    problems: _Problems,
) -> list[str]:
    """Check each annotation and add it to its image's objects; returns the crowd ones left out."""
    class_index = {category_id: i for i, category_id in enumerate(class_ids)}
    crowd = []
    for i, annotation in enumerate(entries):
        has_id = isinstance(annotation, dict) and _is_int(annotation.get("id"))
        label = f"annotation id {annotation['id']}" if has_id else f"annotations[{i}]"
        reason = _malformed_annotation(annotation)
        if reason:
            problems.add("COCO annotations skipped: malformed", f"{label}: {reason}")
            continue
        image_id = annotation["image_id"]
        if image_id not in images:
            problems.add("COCO annotations skipped: unknown image", f"{label}: image_id {image_id} is not in 'images'")
            continue
        image = images[image_id]
        if image is None:
            problems.drop("COCO annotations skipped: their image was skipped", f"{label} (image id {image_id})")
            continue
        label = f"{label} ({image.path})"
        if annotation["category_id"] not in class_index:
            problems.add(
                "COCO annotations skipped: unknown category",
                f"{label}: category_id {annotation['category_id']} is not in 'categories'",
            )
            continue
        if annotation.get("iscrowd") and not include_crowd:
            crowd.append(label)
            continue
        box, reason = _normalized_box(annotation["bbox"], image)
        if reason:
            problems.add("COCO annotations skipped: box outside the image or empty", f"{label}: {reason}")
            continue
        segmentation = None
        if task == "instance":
            segmentation, reason = _parse_segmentation(annotation.get("segmentation"), image)
            if reason:
                problems.add("COCO annotations skipped: no usable segmentation", f"{label}: {reason}")
                continue
        image.objects.append(_Object(box, class_index[annotation["category_id"]], segmentation))
    return crowd


def _malformed_annotation(annotation: Any) -> str:
    if not isinstance(annotation, dict):
        return f"{annotation!r} is not an object"
    for key in ("id", "image_id", "category_id"):
        if not _is_int(annotation.get(key)):
            return f"'{key}' {annotation.get(key)!r} is not an integer"
    bbox = annotation.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_finite(v) for v in bbox):
        return f"'bbox' {bbox!r} is not [x, y, width, height] in pixels"
    return ""


def _normalized_box(bbox: list, image: _Image) -> tuple[np.ndarray | None, str]:
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        return None, f"bbox {bbox} has no area (width and height must be positive)"
    tol = _EDGE_TOLERANCE_PX
    if x < -tol or y < -tol or x + w > image.width + tol or y + h > image.height + tol:
        return None, f"bbox {bbox} reaches outside the {image.width}x{image.height} (width x height) image"
    box = np.array([y / image.height, x / image.width, (y + h) / image.height, (x + w) / image.width], np.float32)
    return np.clip(box, 0.0, 1.0), ""


def _parse_segmentation(segmentation: Any, image: _Image) -> tuple[tuple | None, str]:
    """("polygons", [points [V, 2] as (x, y)]) or ("rle", counts), checked against the image."""
    if segmentation is None:
        return None, "no 'segmentation'; the instance task needs a polygon or RLE mask per annotation"
    if isinstance(segmentation, list):
        if not segmentation:
            return None, "'segmentation' is an empty list of polygons"
        polygons = []
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2 or not all(_is_finite(v) for v in polygon):
                return None, f"polygon {str(polygon)[:80]} is not [x1, y1, x2, y2, x3, y3, ...] with 3 or more points"
            polygons.append(np.asarray(polygon, np.float64).reshape(-1, 2))
        return ("polygons", polygons), ""
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if segmentation["size"] != [image.height, image.width]:
            return None, f"RLE size {segmentation['size']!r} is not the image's [height, width] [{image.height}, {image.width}]"
        counts, reason = _rle_counts(segmentation["counts"])
        if reason:
            return None, reason
        if counts.sum() != image.height * image.width:
            return None, f"RLE counts add up to {counts.sum()} pixels, not the image's {image.height * image.width}"
        return ("rle", counts), ""
    return None, f"'segmentation' {str(segmentation)[:80]} is neither a list of polygons nor RLE {{'counts', 'size'}}"


def _rle_counts(counts: Any) -> tuple[np.ndarray | None, str]:
    if isinstance(counts, str):
        return _decode_rle_string(counts)
    if isinstance(counts, list) and all(_is_int(c) and c >= 0 for c in counts):
        return np.asarray(counts, np.int64), ""
    return None, f"RLE counts {str(counts)[:80]} are neither run lengths (non-negative integers) nor a COCO RLE string"


def _decode_rle_string(text: str) -> tuple[np.ndarray | None, str]:
    """COCO's compressed RLE: each count in 5-bit groups, 6 bits per character with a 'more' bit, from '0' (48).

    From the third count on, a count is stored as its difference from the
    count two before, with a sign bit in the last group (pycocotools'
    `rleFrString`).
    """
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                return None, "RLE string ends inside a count"
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                return None, f"RLE string holds {text[position]!r}, not a COCO RLE character"
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    if any(c < 0 for c in counts):
        return None, "RLE string decodes to a negative run length"
    return np.asarray(counts, np.int64), ""


def _check_object_counts(images: list[_Image], max_objects: int, problems: _Problems) -> None:
    most = max((len(image.objects) for image in images), default=0)
    for image in images:
        if len(image.objects) > max_objects:
            problems.add(
                f"COCO images cut to max_objects={max_objects} (their extra objects dropped)",
                f"{image.path} (image id {image.id}) has {len(image.objects)} objects; raise max_objects to {most}",
            )


def _most_objects(images: list[_Image], source: Path) -> int:
    most = max(len(image.objects) for image in images)
    if most == 0:
        raise DataError(
            f"{source} has no usable annotation (after skipping bad and crowd ones); a detection dataset "
            "needs objects: fix the annotations, or pass max_objects to load images without any"
        )
    return most


def _dataset(images: list[_Image], size: tuple[int, int], max_objects: int, task: str) -> tf.data.Dataset:
    """One element per image; targets are stored ragged (memory per object, not per slot) and padded in the map."""
    objects = [image.objects[:max_objects] for image in images]
    lengths = [len(kept) for kept in objects]
    boxes = np.array([o.box for kept in objects for o in kept], np.float32).reshape(-1, 4)
    classes = np.array([o.class_index for kept in objects for o in kept], np.int32)
    columns = {
        "path": np.array([image.path for image in images]),
        "index": np.arange(len(images), dtype=np.int64),
        "boxes": tf.RaggedTensor.from_row_lengths(boxes, lengths),
        "classes": tf.RaggedTensor.from_row_lengths(classes, lengths),
    }
    load = image_loader(size)
    rasterize = _mask_rasterizer(images, size, max_objects)

    def example(row: dict) -> tuple:
        padding = max_objects - tf.shape(row["classes"])[0]
        targets = {
            "boxes": tf.ensure_shape(tf.pad(row["boxes"], [[0, padding], [0, 0]]), (max_objects, 4)),
            "classes": tf.ensure_shape(tf.pad(row["classes"], [[0, padding]], constant_values=-1), (max_objects,)),
        }
        if task == "instance":
            masks = tf.numpy_function(rasterize, [row["index"]], tf.uint8, stateful=False)
            targets["masks"] = tf.ensure_shape(masks, (max_objects, *size))
        return load(row["path"]) / 255.0, targets

    return tf.data.Dataset.from_tensor_slices(columns).map(example, num_parallel_calls=tf.data.AUTOTUNE)


def _mask_rasterizer(images: list[_Image], size: tuple[int, int], max_objects: int):
    """index -> uint8 `[max_objects, H, W]`: masks are drawn when an image is read, so none wait in memory."""

    def rasterize(index: np.ndarray) -> np.ndarray:
        image = images[int(index)]
        masks = np.zeros((max_objects, *size), np.uint8)
        for k, item in enumerate(image.objects[:max_objects]):
            masks[k] = _object_mask(item.segmentation, image, size)
        return masks

    return rasterize


def _object_mask(segmentation: tuple, image: _Image, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    kind, value = segmentation
    if kind == "polygons":
        scale = np.array([width / image.width, height / image.height])
        mask = np.zeros(size, bool)
        for points in value:
            mask |= _polygon_mask(points * scale, height, width)
        return mask
    # Column-major runs, starting with background.
    flat = np.repeat(np.arange(len(value)) % 2, value).astype(bool)
    full = flat.reshape(image.width, image.height).T
    return full[np.ix_(_nearest(height, image.height), _nearest(width, image.width))]


def _nearest(out_size: int, in_size: int) -> np.ndarray:
    """The input index each output index samples: the one under its centre, as `tf.image.resize` nearest."""
    return np.minimum(((np.arange(out_size) + 0.5) * in_size / out_size).astype(np.int64), in_size - 1)


def _polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool `[height, width]`: the pixels whose centres lie inside the polygon (even-odd rule).

    Each edge toggles the pixels left of where it crosses a row's centre
    line; an edge spans the rows whose centre is in [its lower y, its upper
    y), so a vertex on a centre line is counted once.
    """
    centre_y = np.arange(height) + 0.5
    centre_x = np.arange(width) + 0.5
    inside = np.zeros((height, width), bool)
    for (x0, y0), (x1, y1) in zip(points, np.roll(points, -1, axis=0)):
        if y0 == y1:
            continue
        rows = np.flatnonzero((min(y0, y1) <= centre_y) & (centre_y < max(y0, y1)))
        if rows.size:
            crossing = x0 + (centre_y[rows] - y0) * (x1 - x0) / (y1 - y0)
            inside[rows] ^= centre_x[None, :] < crossing[:, None]
    return inside


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
