"""The synthetic shapes dataset: seeded images of circles, squares and triangles with every vision label.

Every vision config of tfdl (classification, semantic segmentation,
detection, instance segmentation) runs offline on a fresh machine on this
data. Each RGB image holds a few objects of three classes (0 circle,
1 square, 2 triangle) with random colours, sizes and positions over a noisy
background; later objects occlude earlier ones. The labels describe what is
visible: an instance mask is the visible part of its object, a box is tight
around that visible mask, and an object hidden below a fraction of its area
is left out of the labels and of the image.

`make_shapes` draws the arrays with numpy (vectorized over many images at
once; 1000 images take well under a second); `shapes_dataset` serves them as
a `tf.data.Dataset` of `(x, y)` for one task.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, Mapping

import numpy as np
import tensorflow as tf

from tfdl.pipelines.errors import DataError

CLASS_NAMES = ("circle", "square", "triangle")
TASKS = ("classification", "segmentation", "detection", "instance")
Task = Literal["classification", "segmentation", "detection", "instance"]

# A size is the radius of a circle; squares and triangles of the same size
# get the same area (pi * size**2), so no class is systematically the
# largest object or the easiest to hide.
_SQUARE_HALF_SIDE = math.sqrt(math.pi) / 2
# A triangle points up, its base as long as its height: area base**2 / 2.
_TRIANGLE_HALF_BASE = math.sqrt(2 * math.pi) / 2
_HALF_EXTENT = np.array([1.0, _SQUARE_HALF_SIDE, _TRIANGLE_HALF_BASE], np.float32)

# Objects are bright on a dark background, so every object stands out.
_OBJECT_COLOUR_RANGE = (0.35, 1.0)
_BACKGROUND_COLOUR_RANGE = (0.0, 0.25)
# Scenes drawn per numpy pass: bounds the memory of the [scenes, objects, H, W] masks.
_CHUNK = 256
# Redraws of the scenes left with fewer than `min_objects` visible objects.
_MAX_REDRAWS = 100


def make_shapes(
    n: int,
    image_size: int = 64,
    seed: int = 0,
    min_objects: int = 1,
    max_objects: int = 4,
    *,
    size_range: tuple[float, float] = (0.1, 0.25),
    noise_std: float = 0.05,
    min_visible_fraction: float = 0.25,
) -> dict[str, np.ndarray]:
    """Draw `n` images of shapes with their labels, padded to `max_objects` per image.

    Each image draws its object count uniformly from `[min_objects,
    max_objects]`, then per object a class, a size (a fraction of the image
    side drawn from `size_range`; the radius of a circle, squares and
    triangles get the same area), a position that keeps the object inside
    the image, and a colour. Objects are painted in order, each over the
    ones before. An object whose visible area is under
    `min_visible_fraction` of its own area is removed (from the image too),
    and an image left with fewer than `min_objects` objects is drawn again.
    Gaussian noise of `noise_std` covers the whole image, clipped to [0, 1].

    A pixel belongs to a shape when its centre does. A box is
    `[ymin, xmin, ymax, xmax]` normalized by the image size, with pixel row
    `r` spanning `[r / size, (r + 1) / size)`: tight around the visible mask.

    Args:
        n: number of images, at least 1.
        image_size: height and width in pixels, at least 16.
        seed: seeds numpy's generator; the same seed gives the same arrays.
        min_objects: fewest objects per image, at least 1.
        max_objects: most objects per image, and the padded length of the
            per-object arrays.
        size_range: (low, high) of the object size as a fraction of the
            image side, within (0, 0.39] (a larger triangle would not fit).
        noise_std: standard deviation of the pixel noise; 0 for clean images.
        min_visible_fraction: an object showing less than this fraction of
            its area is removed.

    Returns:
        A dict of numpy arrays, first axis `n`, objects in painting order
        (later ones on top), padded slots after the real ones:
        `image` float32 `[n, S, S, 3]` in [0, 1];
        `classes` int32 `[n, max_objects]`, padding -1;
        `boxes` float32 `[n, max_objects, 4]`, padding 0;
        `semantic_mask` int32 `[n, S, S]`, 0 background, class + 1 elsewhere;
        `instance_masks` uint8 `[n, max_objects, S, S]`, padding 0;
        `num_objects` int32 `[n]`;
        `largest_class` int32 `[n]`: the class of the object with the largest
        visible area (the first of equals), the classification label.

    Raises:
        DataError: naming the argument, for a count, size or fraction out of
            range, or when the sizes leave too few objects visible.

    >>> data = make_shapes(2, image_size=32, seed=1)
    >>> data["image"].shape, data["boxes"].shape, data["instance_masks"].shape
    ((2, 32, 32, 3), (2, 4, 4), (2, 4, 32, 32))
    """
    _check_shape_options(n, image_size, seed, min_objects, max_objects, size_range, noise_std, min_visible_fraction)
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        chunks.append(
            _draw_scenes(rng, count, image_size, min_objects, max_objects, size_range, noise_std, min_visible_fraction)
        )
    return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}


def shapes_dataset(
    n: int,
    image_size: int = 64,
    seed: int = 0,
    min_objects: int = 1,
    max_objects: int = 4,
    *,
    task: Task = "classification",
    augment: Mapping[str, Any] | None = None,
    **shape_options: Any,
) -> tf.data.Dataset:
    """The shapes of `make_shapes` as a `tf.data.Dataset` of `(x, y)` for one task.

    Elements are single examples (batch them yourself); `x` is the image,
    float32 `[S, S, 3]` in [0, 1], and `y` is:

    - `classification`: the int32 class of the largest visible object;
    - `segmentation`: the int32 semantic mask `[S, S]`;
    - `detection`: `{"boxes": float32 [max_objects, 4], "classes": int32
      [max_objects]}`, padded with 0 and -1;
    - `instance`: the detection targets plus `"masks"`, uint8
      `[max_objects, S, S]`.

    Args:
        n, image_size, seed, min_objects, max_objects: as in `make_shapes`.
        task: which targets `y` holds, one of `TASKS`.
        augment: keyword arguments of
            `tfdl.pipelines.geometric_augmentation.augment_dataset`
            (`seed` required, e.g. `{"seed": 1, "crop_scale": (0.8, 1.0)}`),
            applied before the targets are taken, so boxes and masks follow
            the image; None: no augmentation. The classification label stays
            the class of the scene's largest object: keep `crop_scale` near 1
            (or None) for classification, or a crop may cut it away.
        **shape_options: the other keyword arguments of `make_shapes`
            (`size_range`, `noise_std`, `min_visible_fraction`).

    Returns:
        A dataset of `n` elements `(x, y)`, the same for the same arguments.

    Raises:
        DataError: for an unknown `task`, bad `augment` options, or any
            argument `make_shapes` refuses.

    >>> ds = shapes_dataset(3, image_size=32, task="segmentation")
    >>> [tuple(spec.shape) for spec in ds.element_spec]
    [(32, 32, 3), (32, 32)]
    """
    if task not in TASKS:
        raise DataError(f"task={task!r}: use one of {', '.join(TASKS)}")
    if augment is not None and (not isinstance(augment, Mapping) or "seed" not in augment):
        raise DataError(f"augment={augment!r}: give the options of augment_dataset with a seed, e.g. {{'seed': 1}}")
    data = make_shapes(n, image_size, seed, min_objects, max_objects, **shape_options)
    examples = tf.data.Dataset.from_tensor_slices(
        {
            "image": data["image"],
            "boxes": data["boxes"],
            "classes": data["classes"],
            "masks": data["instance_masks"],
            "semantic_mask": data["semantic_mask"],
            "largest_class": data["largest_class"],
        }
    )
    if augment is not None:
        # Imported here: the augmentation is optional for this dataset.
        from tfdl.pipelines.geometric_augmentation import augment_dataset

        options = dict(augment)
        examples = augment_dataset(examples, options.pop("seed"), **options)
    return examples.map(lambda example: _task_pair(example, task), num_parallel_calls=tf.data.AUTOTUNE)


def _task_pair(example: dict, task: str) -> tuple:
    image = example["image"]
    if task == "classification":
        return image, example["largest_class"]
    if task == "segmentation":
        return image, example["semantic_mask"]
    targets = {"boxes": example["boxes"], "classes": example["classes"]}
    if task == "instance":
        targets["masks"] = example["masks"]
    return image, targets


def _draw_scenes(
    rng: np.random.Generator,
    count: int,
    size: int,
    min_objects: int,
    max_objects: int,
    size_range: tuple[float, float],
    noise_std: float,
    min_visible_fraction: float,
) -> dict[str, np.ndarray]:
    scenes = _draw_layouts(rng, count, size, min_objects, max_objects, size_range, min_visible_fraction)
    for _ in range(_MAX_REDRAWS):
        short = np.flatnonzero(scenes["keep"].sum(axis=1) < min_objects)
        if short.size == 0:
            break
        redrawn = _draw_layouts(rng, short.size, size, min_objects, max_objects, size_range, min_visible_fraction)
        for key, value in redrawn.items():
            scenes[key][short] = value
    else:
        if (scenes["keep"].sum(axis=1) < min_objects).any():
            raise DataError(
                f"min_objects={min_objects}: after {_MAX_REDRAWS} draws some images still hide objects under "
                f"min_visible_fraction={min_visible_fraction}; lower min_objects, size_range or min_visible_fraction"
            )
    return _render(rng, scenes, size, noise_std)


def _draw_layouts(rng, count, size, min_objects, max_objects, size_range, min_visible_fraction) -> dict:
    """Classes, geometry and colours of `count` scenes, and which objects stay visible enough."""
    k = max_objects
    drawn = np.arange(k) < rng.integers(min_objects, max_objects + 1, count)[:, None]
    classes = rng.integers(0, len(CLASS_NAMES), (count, k)).astype(np.int32)
    radius = (rng.uniform(*size_range, (count, k)) * size).astype(np.float32)
    half_extent = _HALF_EXTENT[classes] * radius
    centre = half_extent[..., None] + rng.uniform(0.0, 1.0, (count, k, 2)) * (size - 2 * half_extent[..., None])
    colours = rng.uniform(*_OBJECT_COLOUR_RANGE, (count, k, 3)).astype(np.float32)
    shapes = _shape_masks(classes, radius, centre.astype(np.float32), size) & drawn[..., None, None]

    area = shapes.sum(axis=(2, 3))
    visible_area = _visible(shapes).sum(axis=(2, 3))
    # Removing an object only uncovers the ones below it, so every object
    # kept here stays visible enough once the removed ones are gone.
    keep = drawn & (visible_area > 0) & (visible_area >= min_visible_fraction * area)
    return {"keep": keep, "classes": classes, "shapes": shapes, "colours": colours}


def _shape_masks(classes: np.ndarray, radius: np.ndarray, centre: np.ndarray, size: int) -> np.ndarray:
    """bool `[count, k, size, size]`: the pixels whose centres lie in each object's shape."""
    pixels = np.arange(size, dtype=np.float32) + 0.5
    dy = pixels[None, None, :, None] - centre[..., 0, None, None]
    dx = pixels[None, None, None, :] - centre[..., 1, None, None]
    r = radius[..., None, None]
    circle = dy**2 + dx**2 <= r**2
    half_side = _SQUARE_HALF_SIDE * r
    square = (np.abs(dy) <= half_side) & (np.abs(dx) <= half_side)
    half_base = _TRIANGLE_HALF_BASE * r
    # Apex at the top, base at the bottom; the half-width grows from 0 to
    # half_base over the height 2 * half_base.
    from_apex = dy + half_base
    triangle = (from_apex >= 0) & (from_apex <= 2 * half_base) & (np.abs(dx) <= from_apex / 2)
    kind = classes[..., None, None]
    return np.where(kind == 0, circle, np.where(kind == 1, square, triangle))


def _visible(shapes: np.ndarray) -> np.ndarray:
    """Each object's pixels not covered by a later object (objects on axis 1, painting order)."""
    visible = np.empty_like(shapes)
    covered = np.zeros_like(shapes[:, 0])
    for k in reversed(range(shapes.shape[1])):
        visible[:, k] = shapes[:, k] & ~covered
        covered |= shapes[:, k]
    return visible


def _render(rng: np.random.Generator, scenes: dict, size: int, noise_std: float) -> dict[str, np.ndarray]:
    keep = scenes["keep"]
    count = keep.shape[0]
    # Kept objects first, in painting order; the removed ones become padding.
    order = np.argsort(~keep, axis=1, kind="stable")
    scene = np.arange(count)[:, None]
    keep = keep[scene, order]
    classes = np.where(keep, scenes["classes"][scene, order], -1).astype(np.int32)
    colours = scenes["colours"][scene, order]
    shapes = scenes["shapes"][scene, order] & keep[..., None, None]
    visible = _visible(shapes)

    image = np.broadcast_to(rng.uniform(*_BACKGROUND_COLOUR_RANGE, (count, 1, 1, 3)), (count, size, size, 3))
    image = image.astype(np.float32)
    semantic_mask = np.zeros((count, size, size), np.int32)
    # The visible masks are disjoint, so each pixel is painted at most once.
    for k in range(keep.shape[1]):
        image = np.where(visible[:, k, ..., None], colours[:, k, None, None, :], image)
        semantic_mask += visible[:, k] * (classes[:, k, None, None] + 1)
    if noise_std > 0:
        image += noise_std * rng.standard_normal(image.shape, dtype=np.float32)
    area = visible.sum(axis=(2, 3))
    return {
        "image": np.clip(image, 0.0, 1.0, out=image),
        "classes": classes,
        "boxes": _mask_boxes(visible),
        "semantic_mask": semantic_mask,
        "instance_masks": visible.view(np.uint8),
        "num_objects": keep.sum(axis=1).astype(np.int32),
        "largest_class": np.take_along_axis(classes, area.argmax(axis=1)[:, None], axis=1)[:, 0],
    }


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    """float32 `[..., 4]` normalized boxes tight around bool masks `[..., H, W]`; 0 for empty masks."""
    height, width = masks.shape[-2:]
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)
    boxes = np.stack(
        [
            rows.argmax(axis=-1) / height,
            cols.argmax(axis=-1) / width,
            (height - rows[..., ::-1].argmax(axis=-1)) / height,
            (width - cols[..., ::-1].argmax(axis=-1)) / width,
        ],
        axis=-1,
    )
    return np.where(rows.any(axis=-1)[..., None], boxes, 0.0).astype(np.float32)


def _check_shape_options(n, image_size, seed, min_objects, max_objects, size_range, noise_std, min_visible_fraction):
    for name, value, lowest in (
        ("n", n, 1),
        ("image_size", image_size, 16),
        ("seed", seed, 0),
        ("min_objects", min_objects, 1),
    ):
        if not _is_int(value) or value < lowest:
            raise DataError(f"{name}={value!r}: use an integer of at least {lowest}")
    if not _is_int(max_objects) or max_objects < min_objects:
        raise DataError(f"max_objects={max_objects!r}: use an integer of at least min_objects={min_objects}")
    try:
        low, high = (float(v) for v in size_range)
    except (TypeError, ValueError):
        raise DataError(
            f"size_range={size_range!r}: give (low, high) fractions of the image side, e.g. (0.1, 0.25)"
        ) from None
    if not 0.0 < low <= high <= 0.39:
        raise DataError(f"size_range={size_range!r}: use 0 < low <= high <= 0.39 (a fraction of the image side)")
    if low * image_size < 2.0:
        raise DataError(
            f"size_range={size_range!r} with image_size={image_size}: objects would be under 2 pixels in "
            f"radius; raise the low end to at least {2.0 / image_size:.3f}"
        )
    if not _is_fraction(noise_std, 0.5):
        raise DataError(f"noise_std={noise_std!r}: use a number in [0, 0.5], 0 for clean images")
    if not _is_fraction(min_visible_fraction, 1.0):
        raise DataError(f"min_visible_fraction={min_visible_fraction!r}: use a fraction in [0, 1]")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_fraction(value, highest: float) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= value <= highest
