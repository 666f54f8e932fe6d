"""Augmentation of detection and segmentation examples in tf.data that keeps boxes and masks on the image.

A flip or a crop of the image must move its labels with it: boxes are
mirrored, clipped to the crop window and re-normalized; instance masks and
the semantic mask are flipped and cropped with the image and resized with
nearest neighbour, so they stay label maps; an object that the crop leaves
mostly outside the window is dropped. Colour jitter touches the image only.

It works on one example (before batching), a dict with `image` `[H, W, C]`,
`boxes` `[N, 4]` normalized `[ymin, xmin, ymax, xmax]`, `classes` `[N]`
(-1 marks a padded slot), and optionally `masks` `[N, H, W]` and
`semantic_mask` `[H, W]`; other keys pass through. The draws are stateless:
each example gets its own seed pair, so the output depends on the seed and
the example's position only, never on thread timing (`num_parallel_calls`).
`flip_example` and `crop_example` are the deterministic transforms that
`augment_example` draws parameters for.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Mapping

import tensorflow as tf

from tfdl.pipelines.errors import DataError

_BOX_RULE = (
    "boxes must be normalized [ymin, xmin, ymax, xmax] within [0, 1] with ymin <= ymax and xmin <= xmax; "
    "divide pixel boxes by the image height and width"
)
# Independent streams split from an example's seed pair, one per random draw.
_FLIP, _CROP_SCALE, _CROP_Y, _CROP_X, _BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(8)
_STREAMS = 8


def augment_example(
    example: Mapping[str, Any],
    seed_pair: Any,
    flip: bool = True,
    crop_scale: tuple[float, float] | None = (0.6, 1.0),
    color: bool = True,
    *,
    min_visible_fraction: float = 0.25,
    brightness: float = 0.1,
    contrast: float = 0.2,
    saturation: float = 0.2,
    hue: float = 0.02,
) -> dict[str, tf.Tensor]:
    """Randomly flip, crop and colour-jitter one example, keeping its boxes and masks on the image.

    In order: a horizontal flip with probability 1/2 (`flip_example`); a
    square-scaled crop whose side is a fraction drawn from `crop_scale` of
    the image side, at a uniform position, resized back to the image size
    (`crop_example`); then brightness, contrast, saturation and hue jitter of
    the image, clipped to [0, 1]. Each colour factor `f` draws from
    `[-f, f]` (brightness and hue: added; contrast and saturation: a factor
    `1 + [-f, f]`); 0 turns one off.

    Args:
        example: one example, see the module docstring. Integer images are
            scaled to float32 in [0, 1]; float images must be in [0, 1].
        seed_pair: shape-`[2]` integer seed (tuple or tensor); the same pair
            gives the same output.
        flip: whether to draw a horizontal flip.
        crop_scale: (low, high) within (0, 1] of the crop side as a fraction
            of the image side; None: no crop.
        color: whether to jitter colours (needs 3 channels).
        min_visible_fraction: an object keeping less than this fraction of
            its area inside the crop is dropped (see `crop_example`).
        brightness, contrast, saturation, hue: the jitter factors.

    Returns:
        A new example dict: float32 image, the other tensors in their dtypes
        and shapes, padded slots (class -1, zero box and mask) after the
        real objects, `num_objects` updated when present.

    Raises:
        DataError: for a missing key, a tensor of the wrong rank, an option
            out of range, or (called eagerly) boxes outside [0, 1]. Inside a
            tf.data graph, boxes outside [0, 1] raise
            `tf.errors.InvalidArgumentError` with the same message.

    >>> example = {"image": tf.zeros([8, 8, 3]), "boxes": [[0.0, 0.0, 0.5, 0.25]], "classes": [1]}
    >>> out = augment_example(example, (1, 2), crop_scale=None, color=False)
    >>> sorted(out), out["image"].shape.as_list()
    (['boxes', 'classes', 'image'], [8, 8, 3])
    """
    _check_options(crop_scale, min_visible_fraction, brightness, contrast, saturation, hue)
    example = _checked_example(example, need_rgb=color)
    seeds = tf.random.experimental.stateless_split(_seed_tensor(seed_pair), _STREAMS)
    if flip:
        example = _maybe_flip(example, tf.random.stateless_uniform([], seeds[_FLIP]) < 0.5)
    if crop_scale is not None:
        window = _random_window(tf.shape(example["image"])[:2], crop_scale, seeds)
        example = _crop(example, window, min_visible_fraction)
    if color:
        example["image"] = _jitter_colour(example["image"], seeds, brightness, contrast, saturation, hue)
    return example


def augment_dataset(dataset: tf.data.Dataset, seed: int, **options: Any) -> tf.data.Dataset:
    """Augment every example of a dataset with `augment_example`, reproducibly for `seed`.

    Each element is zipped with a seed pair from `tf.data.Dataset.random`, so
    the same seed gives the same examples on every run, the work runs in
    parallel without changing them, and each new pass over the dataset
    (epoch) draws new transforms.

    Args:
        dataset: unbatched example dicts (see the module docstring).
        seed: integer seed of the draws.
        **options: the keyword arguments of `augment_example` (`flip`,
            `crop_scale`, `color`, `min_visible_fraction`, the colour factors).

    Returns:
        The dataset of augmented example dicts, in the same order.

    Raises:
        DataError: for a non-integer seed, an unknown or out-of-range option,
            or elements that are not example dicts of the right ranks.
    """
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise DataError(f"seed={seed!r}: use an integer")
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(augment_example).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise DataError(f"unknown augmentation options {unknown}; use {', '.join(defaults)}")
    chosen = {**defaults, **options}
    # Checked here, not only inside `map`: there tf.data would wrap the error in a staging error.
    _check_options(
        chosen["crop_scale"], chosen["min_visible_fraction"],
        chosen["brightness"], chosen["contrast"], chosen["saturation"], chosen["hue"],
    )
    _check_structure(dataset.element_spec, need_rgb=chosen["color"])
    return tf.data.Dataset.zip((dataset, seed_pairs(int(seed)))).map(
        lambda example, seed_pair: augment_example(example, seed_pair, **options),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def seed_pairs(seed: int | None) -> tf.data.Dataset:
    """An endless dataset of int64 seed pairs for stateless draws, one per element it is zipped with.

    `tf.data.Dataset.random` is part of the iterator, not a variable beside
    it: a checkpointed iterator resumes it, and each new pass over a
    repeated dataset (epoch) gets new pairs. The same seed gives the same
    pairs; None gives fresh ones every run.
    """
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)


def flip_example(example: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """Mirror an example left to right: image, masks and boxes.

    A box `[ymin, xmin, ymax, xmax]` becomes `[ymin, 1 - xmax, ymax, 1 - xmin]`;
    padded slots (class -1) keep their zero box.

    Args:
        example: one example, see the module docstring.

    Returns:
        The flipped example dict.

    Raises:
        DataError: as `augment_example`.

    >>> out = flip_example({"image": tf.zeros([4, 4, 3]), "boxes": [[0.1, 0.2, 0.5, 0.6]], "classes": [0]})
    >>> [round(float(v), 6) for v in out["boxes"][0]]
    [0.1, 0.4, 0.5, 0.8]
    """
    return _maybe_flip(_checked_example(example, need_rgb=False), tf.constant(True))


def crop_example(
    example: Mapping[str, Any],
    window: Any,
    *,
    min_visible_fraction: float = 0.25,
) -> dict[str, tf.Tensor]:
    """Crop an example to a pixel window and resize it back to the image size.

    The image is resized bilinearly, the masks with nearest neighbour. Each
    box is clipped to the window and re-normalized to it. The fraction of an
    object that stays visible is measured on its instance mask when the
    example has `masks` (pixels inside the window over all its pixels), and
    on its box otherwise; an object keeping less than
    `min_visible_fraction` (or nothing) is dropped: class -1, zero box and
    mask, moved after the remaining objects. With masks, each kept box is
    then made tight around its resized mask, so boxes and masks agree
    exactly (the clipped box alone can be loose around an occluded shape).
    The semantic mask keeps every pixel, dropped objects' included.

    Args:
        example: one example, see the module docstring.
        window: `(top, left, height, width)` in pixels, integers with the
            window inside the image.
        min_visible_fraction: in [0, 1], see above.

    Returns:
        The cropped example dict, image and masks at the input size.

    Raises:
        DataError: as `augment_example`, or (eagerly) for a window outside
            the image.

    >>> example = {"image": tf.zeros([10, 10, 3]), "boxes": [[0.2, 0.2, 0.6, 0.4]], "classes": [2]}
    >>> [round(float(v), 6) for v in crop_example(example, (2, 0, 5, 5))["boxes"][0]]
    [0.0, 0.4, 0.8, 0.8]
    """
    _check_fraction("min_visible_fraction", min_visible_fraction, 1.0)
    example = _checked_example(example, need_rgb=False)
    return _crop(example, _checked_window(window, tf.shape(example["image"])[:2]), min_visible_fraction)


def _crop(example: dict, window: tuple, min_visible_fraction: float) -> dict:
    image = example["image"]
    size = _static_or_dynamic_size(image)
    top, left, height, width = window
    rows, cols = slice(top, top + height), slice(left, left + width)

    out = dict(example)
    out["image"] = tf.ensure_shape(tf.image.resize(image[rows, cols], size), image.shape)
    if "semantic_mask" in example:
        semantic = example["semantic_mask"][rows, cols, None]
        out["semantic_mask"] = tf.ensure_shape(
            tf.image.resize(semantic, size, method="nearest")[..., 0], example["semantic_mask"].shape
        )

    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    corner = tf.cast(tf.stack([top, left]), tf.float32) / hw
    extent = tf.cast(tf.stack([height, width]), tf.float32) / hw
    window_min, window_max = tf.tile(corner, [2]), tf.tile(corner + extent, [2])
    boxes = example["boxes"]
    clipped = tf.clip_by_value(boxes, window_min[None, :], window_max[None, :])
    out["boxes"] = (clipped - tf.tile(corner, [2])) / tf.tile(extent, [2])

    if "masks" in example:
        masks = example["masks"]
        cropped = masks[:, rows, cols]
        inside = tf.reduce_sum(tf.cast(cropped > 0, tf.float32), axis=[1, 2])
        visible = tf.math.divide_no_nan(inside, tf.reduce_sum(tf.cast(masks > 0, tf.float32), axis=[1, 2]))
        resized = tf.image.resize(cropped[..., None], size, method="nearest")[..., 0]
        out["masks"] = tf.ensure_shape(resized, masks.shape)
        out["boxes"] = _mask_boxes(out["masks"])
    else:
        visible = tf.math.divide_no_nan(_box_area(clipped), _box_area(boxes))
    keep = (example["classes"] >= 0) & (visible > 0) & (visible >= min_visible_fraction)
    return _keep_objects(out, keep)


def _maybe_flip(example: dict, do_flip: tf.Tensor) -> dict:
    out = dict(example)
    out["image"] = tf.where(do_flip, tf.reverse(example["image"], [1]), example["image"])
    if "masks" in example:
        out["masks"] = tf.where(do_flip, tf.reverse(example["masks"], [2]), example["masks"])
    if "semantic_mask" in example:
        out["semantic_mask"] = tf.where(do_flip, tf.reverse(example["semantic_mask"], [1]), example["semantic_mask"])
    ymin, xmin, ymax, xmax = tf.unstack(example["boxes"], axis=-1)
    mirrored = tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)
    real = (example["classes"] >= 0)[:, None] & do_flip
    out["boxes"] = tf.where(real, mirrored, example["boxes"])
    return out


def _random_window(image_size: tf.Tensor, crop_scale: tuple[float, float], seeds: tf.Tensor) -> tuple:
    # One scale for both sides keeps the aspect ratio, so circles stay circles.
    scale = tf.random.stateless_uniform([], seeds[_CROP_SCALE], crop_scale[0], crop_scale[1])
    side = tf.clip_by_value(tf.cast(tf.round(scale * tf.cast(image_size, tf.float32)), tf.int32), 1, image_size)
    room = image_size - side + 1
    top = tf.random.stateless_uniform([], seeds[_CROP_Y], 0, room[0], dtype=tf.int32)
    left = tf.random.stateless_uniform([], seeds[_CROP_X], 0, room[1], dtype=tf.int32)
    return top, left, side[0], side[1]


def _jitter_colour(image, seeds, brightness, contrast, saturation, hue) -> tf.Tensor:
    if brightness:
        image = tf.image.stateless_random_brightness(image, brightness, seeds[_BRIGHTNESS])
    if contrast:
        image = tf.image.stateless_random_contrast(image, 1.0 - contrast, 1.0 + contrast, seeds[_CONTRAST])
    # Saturation and hue work in HSV, which expects values in [0, 1].
    image = tf.clip_by_value(image, 0.0, 1.0)
    if saturation:
        image = tf.image.stateless_random_saturation(image, 1.0 - saturation, 1.0 + saturation, seeds[_SATURATION])
    if hue:
        image = tf.image.stateless_random_hue(image, hue, seeds[_HUE])
    return tf.clip_by_value(image, 0.0, 1.0)


def _keep_objects(example: dict, keep: tf.Tensor) -> dict:
    """Blank the dropped objects' slots and move them after the kept ones, order otherwise unchanged."""
    order = tf.argsort(tf.cast(~keep, tf.int32), stable=True)
    keep = tf.gather(keep, order)
    out = dict(example)
    out["classes"] = tf.where(keep, tf.gather(example["classes"], order), tf.constant(-1, example["classes"].dtype))
    out["boxes"] = tf.where(keep[:, None], tf.gather(example["boxes"], order), 0.0)
    if "masks" in example:
        masks = tf.gather(example["masks"], order)
        out["masks"] = tf.where(keep[:, None, None], masks, tf.zeros_like(masks))
    if "num_objects" in example:
        out["num_objects"] = tf.reduce_sum(tf.cast(keep, example["num_objects"].dtype))
    return out


def _mask_boxes(masks: tf.Tensor) -> tf.Tensor:
    """float32 `[N, 4]` normalized boxes tight around masks `[N, H, W]`; 0 for empty masks."""
    present = masks > 0
    rows, cols = tf.reduce_any(present, axis=2), tf.reduce_any(present, axis=1)

    def span(occupied):
        size = tf.shape(occupied)[1]
        first = tf.argmax(tf.cast(occupied, tf.int32), axis=1, output_type=tf.int32)
        last = size - tf.argmax(tf.cast(occupied[:, ::-1], tf.int32), axis=1, output_type=tf.int32)
        size = tf.cast(size, tf.float32)
        return tf.cast(first, tf.float32) / size, tf.cast(last, tf.float32) / size

    (ymin, ymax), (xmin, xmax) = span(rows), span(cols)
    boxes = tf.stack([ymin, xmin, ymax, xmax], axis=-1)
    return tf.where(tf.reduce_any(rows, axis=1)[:, None], boxes, 0.0)


def _box_area(boxes: tf.Tensor) -> tf.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _static_or_dynamic_size(image: tf.Tensor):
    static = image.shape[:2]
    return static.as_list() if static.is_fully_defined() else tf.shape(image)[:2]


def _seed_tensor(seed_pair) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed_pair)
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] != 2:
        raise DataError(f"seed_pair={seed_pair!r}: use two integers, e.g. (0, 1)")
    return tf.cast(seed, tf.int64)


def _checked_example(example, need_rgb: bool) -> dict:
    """The example as tensors of checked ranks: float32 image and boxes, int32 classes."""
    _check_keys(example)
    out = {key: tf.convert_to_tensor(value) for key, value in example.items()}
    _check_structure(out, need_rgb)
    image = out["image"]
    # Colour jitter and its clipping work in [0, 1], so integer images are scaled into it.
    if image.dtype.is_integer:
        out["image"] = tf.image.convert_image_dtype(image, tf.float32)
    else:
        out["image"] = tf.cast(image, tf.float32)
    out["classes"] = tf.cast(out["classes"], tf.int32)
    out["boxes"] = _checked_boxes(tf.cast(out["boxes"], tf.float32), out["classes"])
    return out


def _check_keys(example) -> None:
    if not isinstance(example, Mapping):
        raise DataError(f"an example must be a dict with image, boxes and classes; got {example!r:.200}")
    missing = [key for key in ("image", "boxes", "classes") if key not in example]
    if missing:
        raise DataError(f"example has no {', '.join(missing)}; its keys are {sorted(example)}")


def _check_structure(example, need_rgb: bool) -> None:
    """Keys and ranks of an example: a dict of tensors, or a dataset's element spec."""
    _check_keys(example)
    image_size = example["image"].shape[:2]
    _check_rank("image", example["image"], 3, "[height, width, channels] for one example; augment before batching")
    if need_rgb and example["image"].shape[-1] != 3:
        channels = example["image"].shape[-1]
        raise DataError(f"image has {channels} channels; colour jitter needs 3 (RGB): pass color=False")
    _check_rank("boxes", example["boxes"], 2, "[num_objects, 4] of [ymin, xmin, ymax, xmax]")
    if example["boxes"].shape[-1] not in (None, 4):
        raise DataError(f"boxes have shape {example['boxes'].shape}; use [num_objects, 4] of [ymin, xmin, ymax, xmax]")
    _check_rank("classes", example["classes"], 1, "[num_objects] with -1 for padded slots")
    if "masks" in example:
        _check_rank("masks", example["masks"], 3, "[num_objects, height, width], one mask per box")
        _check_same_size("masks", example["masks"].shape[1:], image_size)
    if "semantic_mask" in example:
        _check_rank("semantic_mask", example["semantic_mask"], 2, "[height, width] of class ids")
        _check_same_size("semantic_mask", example["semantic_mask"].shape, image_size)


def _checked_boxes(boxes: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    # Padded slots (class -1) may hold anything; only real boxes must be normalized.
    real = tf.boolean_mask(boxes, classes >= 0)
    ordered = (real[:, 0] <= real[:, 2]) & (real[:, 1] <= real[:, 3])
    ok = tf.reduce_all((real >= 0.0) & (real <= 1.0)) & tf.reduce_all(ordered)
    if tf.executing_eagerly():
        if not bool(ok):
            raise DataError(f"{_BOX_RULE}; got {real.numpy().tolist()}")
        return boxes
    with tf.control_dependencies([tf.debugging.Assert(ok, [_BOX_RULE, real], summarize=16)]):
        return tf.identity(boxes)


def _check_rank(name: str, tensor: tf.Tensor, rank: int, shape_rule: str) -> None:
    if tensor.shape.rank is not None and tensor.shape.rank != rank:
        raise DataError(f"{name} has rank {tensor.shape.rank} (shape {tensor.shape}); use {shape_rule}")


def _check_same_size(name: str, size: tf.TensorShape, image_size: tf.TensorShape) -> None:
    if not size.is_compatible_with(image_size):
        raise DataError(
            f"{name} is {size.as_list()} pixels but the image is {image_size.as_list()}; give masks at the image size"
        )


def _checked_window(window, image_size: tf.Tensor) -> tuple:
    try:
        top, left, height, width = (tf.cast(value, tf.int32) for value in window)
    except (TypeError, ValueError):
        raise DataError(f"window={window!r}: give (top, left, height, width) in pixels") from None
    fits = (top >= 0) & (left >= 0) & (height > 0) & (width > 0)
    fits = fits & (top + height <= image_size[0]) & (left + width <= image_size[1])
    if tf.executing_eagerly() and not bool(fits):
        raise DataError(
            f"window={tuple(int(v) for v in (top, left, height, width))} is not inside the "
            f"{image_size.numpy().tolist()} image; use 0 <= top, top + height <= image height (and so for width)"
        )
    return top, left, height, width


def _check_options(crop_scale, min_visible_fraction, brightness, contrast, saturation, hue) -> None:
    if crop_scale is not None:
        try:
            low, high = (float(v) for v in crop_scale)
        except (TypeError, ValueError):
            raise DataError(f"crop_scale={crop_scale!r}: give (low, high) fractions of the side, or None") from None
        if not 0.0 < low <= high <= 1.0:
            raise DataError(f"crop_scale={crop_scale!r}: use 0 < low <= high <= 1, e.g. (0.6, 1.0), or None")
    _check_fraction("min_visible_fraction", min_visible_fraction, 1.0)
    _check_fraction("brightness", brightness, 1.0)
    _check_fraction("contrast", contrast, 1.0)
    _check_fraction("saturation", saturation, 1.0)
    _check_fraction("hue", hue, 0.5)


def _check_fraction(name: str, value, highest: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= highest:
        raise DataError(f"{name}={value!r}: use a number in [0, {highest}], 0 to turn it off")
