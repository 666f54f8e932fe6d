"""TFDS vision datasets (cifar10, oxford_iiit_pet, voc and their kin) in the structure of the synthetic shapes.

A TFDS dataset yields a dict of features whose names and meaning vary from
dataset to dataset; tfdl's vision models take `(image, targets)` exactly as
`shapes_dataset` gives them. `load_tfds_vision` reads a prepared dataset
offline through `load_tfds` (so a missing one fails with the same message,
naming the folder and the `tfds build` command) and maps it, by the feature
names the TFDS catalog uses:

- classification, `image` + `label` (cifar10, mnist, ...): `(image, class)`;
- segmentation, `image` + `segmentation_mask` (oxford_iiit_pet): `(image,
  semantic_mask)`, the pet trimap mapped to classes by `PET_TRIMAP_CLASSES`;
- detection, `image` + `objects: {bbox, label}` (voc, ...): `(image,
  {"boxes", "classes"})`, boxes normalized `[ymin, xmin, ymax, xmax]` as
  TFDS stores them, padded to `max_objects` with 0 and class -1.

Images come as float32 in [0, 1], resized with bilinear antialiasing as the
image-folder loader does; masks are resized with nearest neighbour.
"""

from __future__ import annotations

import numbers
import os
from typing import TYPE_CHECKING, Literal

import tensorflow as tf

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.image_directory import _check_image_size
from tfdl.pipelines.tfds_source import load_tfds, tfds_class_names

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

TASKS = ("classification", "segmentation", "detection")

# oxford_iiit_pet's trimap marks each pixel 1 (pet), 2 (background) or
# 3 (border, the uncertain outline); background becomes class 0, as in the
# synthetic shapes' semantic masks.
PET_TRIMAP_CLASSES = {1: 1, 2: 0, 3: 2}
SEGMENTATION_CLASS_NAMES = ("background", "pet", "border")

# What each task reads, and a catalog dataset that has it, for messages.
_NEEDS = {
    "classification": ("'image' and a ClassLabel 'label'", "cifar10"),
    "segmentation": ("'image' and an Image 'segmentation_mask' (a trimap)", "oxford_iiit_pet"),
    "detection": ("'image' and a Sequence 'objects' of BBoxFeature 'bbox' and ClassLabel 'label'", "voc"),
}


def load_tfds_vision(
    name: str,
    data_dir: str | os.PathLike,
    split: str,
    task: Literal["classification", "segmentation", "detection"],
    image_size: tuple[int, int],
    max_objects: int | None = None,
) -> tuple[tf.data.Dataset, tuple[str, ...]]:
    """Load a split of a prepared TFDS vision dataset as `(image, targets)` for one task.

    Elements are single examples, in the split's file order: the image
    float32 `[H, W, 3]` in [0, 1] (grayscale repeated to RGB), and

    - `classification`: the int32 class (`label`);
    - `segmentation`: the int32 semantic mask `[H, W]` of `segmentation_mask`
      mapped by `PET_TRIMAP_CLASSES` (1 pet -> 1, 2 background -> 0,
      3 border -> 2);
    - `detection`: `{"boxes": float32 [max_objects, 4], "classes": int32
      [max_objects]}` from `objects` (`bbox`, `label`), every object kept
      (VOC's `is_difficult` ones too), padded with 0 and -1.

    Args:
        name: the TFDS name, with config and version if wanted
            (`cifar10`, `oxford_iiit_pet:4.0.0`, `voc/2007`).
        data_dir: the folder that holds the prepared `NAME/VERSION/`.
        split: a TFDS split, slicing allowed (`train`, `test[:10%]`).
        task: which targets to yield, one of `TASKS`.
        image_size: (height, width) of every output image and mask.
        max_objects: detection only: the padded number of objects; an image
            with more keeps its first `max_objects`. None: the most any
            image of the split has, found by one pass over the split (which
            decodes it; pass the number for a large split).

    Returns:
        The unbatched dataset, and the class names: the `label` names for
        classification and detection, `SEGMENTATION_CLASS_NAMES` for
        segmentation.

    Raises:
        DataError: as `load_tfds` does (unknown name, not prepared in
            `data_dir`, unknown split); for an unknown task, a bad
            `image_size` or `max_objects`; if the dataset lacks the features
            the task reads (the message lists the ones it has); or if a
            detection split holds no object and `max_objects` is None.
        tf.errors.InvalidArgumentError: while iterating, if a segmentation
            mask holds a value other than 1, 2 or 3 (not a pet trimap).

    Example:
        >>> ds, names = load_tfds_vision("cifar10", "~/tensorflow_datasets", "train", "classification", (32, 32))  # doctest: +SKIP
        >>> [tuple(spec.shape) for spec in ds.element_spec]  # doctest: +SKIP
        [(32, 32, 3), ()]
    """
    size = _check_image_size(image_size)
    if task not in TASKS:
        raise DataError(
            f"task={task!r}: use one of {', '.join(TASKS)}; for instance masks load images and a COCO "
            "annotations JSON with load_coco_detection"
        )
    if max_objects is not None and (
        not isinstance(max_objects, numbers.Integral) or isinstance(max_objects, bool) or max_objects < 1
    ):
        raise DataError(f"max_objects={max_objects!r}: give a positive integer, or None for the most in the split")
    dataset, info = load_tfds(name, data_dir=data_dir, split=split, as_supervised=False)
    _check_features(info, task)
    resize = _image_resizer(size, channels=info.features["image"].shape[-1])
    if task == "classification":
        pairs = dataset.map(lambda ex: (resize(ex["image"]), tf.cast(ex["label"], tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
        return pairs, tfds_class_names(info)
    if task == "segmentation":
        pairs = dataset.map(
            lambda ex: (resize(ex["image"]), _trimap_classes(ex["segmentation_mask"], size, info.full_name)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return pairs, SEGMENTATION_CLASS_NAMES
    max_objects = max_objects or _most_objects(dataset, info.full_name, split)
    pairs = dataset.map(
        lambda ex: (resize(ex["image"]), _padded_objects(ex["objects"], max_objects)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return pairs, tuple(info.features["objects"]["label"].names)


def _check_features(info: "tfds.core.DatasetInfo", task: str) -> None:
    import tensorflow_datasets as tfds

    features = info.features
    keys = list(features.keys())

    def has(key: str, kind: type) -> bool:
        return key in keys and isinstance(features[key], kind)

    ok = has("image", tfds.features.Image)
    if task == "classification":
        ok = ok and has("label", tfds.features.ClassLabel)
    elif task == "segmentation":
        ok = ok and has("segmentation_mask", tfds.features.Image)
    else:
        objects = features["objects"] if has("objects", tfds.features.Sequence) else None
        inner = objects.feature if objects is not None else {}
        ok = (
            ok
            and "bbox" in inner
            and isinstance(inner["bbox"], tfds.features.BBoxFeature)
            and "label" in inner
            and isinstance(inner["label"], tfds.features.ClassLabel)
        )
    if not ok:
        needs, example = _NEEDS[task]
        listed = ", ".join(f"{key} ({type(features[key]).__name__})" for key in keys)
        raise DataError(
            f"TFDS dataset {info.full_name} cannot serve the {task} task: it needs {needs}, "
            f"as {example} has; its features are: {listed}. Pick the task its features hold, or another dataset"
        )


def _image_resizer(size: tuple[int, int], channels: int | None):
    """uint8 image `[h, w, C]` -> float32 `[H, W, 3]` in [0, 1]."""

    def resize(image: tf.Tensor) -> tf.Tensor:
        if channels == 1:
            image = tf.image.grayscale_to_rgb(image)
        resized = tf.image.resize(image, size, method="bilinear", antialias=True) / 255.0
        return tf.ensure_shape(resized, (*size, 3))

    return resize


def _trimap_classes(mask: tf.Tensor, size: tuple[int, int], dataset_name: str) -> tf.Tensor:
    values = tf.cast(tf.image.resize(mask, size, method="nearest")[..., 0], tf.int32)
    message = f"{dataset_name}: segmentation_mask holds a value outside 1, 2, 3; it is not an oxford_iiit_pet trimap"
    checks = [
        tf.debugging.assert_greater_equal(values, 1, message=message),
        tf.debugging.assert_less_equal(values, 3, message=message),
    ]
    # Index 0 is never read (the checks refuse 0); it keeps the lookup a plain gather.
    lookup = tf.constant([0] + [PET_TRIMAP_CLASSES[v] for v in (1, 2, 3)], tf.int32)
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.gather(lookup, values), size)


def _padded_objects(objects: dict, max_objects: int) -> dict[str, tf.Tensor]:
    boxes = tf.cast(objects["bbox"], tf.float32)[:max_objects]
    classes = tf.cast(objects["label"], tf.int32)[:max_objects]
    padding = max_objects - tf.shape(classes)[0]
    return {
        "boxes": tf.ensure_shape(tf.pad(boxes, [[0, padding], [0, 0]]), (max_objects, 4)),
        "classes": tf.ensure_shape(tf.pad(classes, [[0, padding]], constant_values=-1), (max_objects,)),
    }


def _most_objects(dataset: tf.data.Dataset, dataset_name: str, split: str) -> int:
    counts = dataset.map(lambda ex: tf.shape(ex["objects"]["label"])[0], num_parallel_calls=tf.data.AUTOTUNE)
    most = int(counts.reduce(tf.constant(0, tf.int32), tf.maximum))
    if most == 0:
        raise DataError(f"split {split!r} of TFDS dataset {dataset_name} holds no object; pass max_objects, or use a split with objects")
    return most
