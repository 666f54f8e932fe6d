"""The synthetic shapes dataset: labels agree with each other and with the image, seeding, balance, task datasets."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import tensorflow as tf

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.synthetic_shapes import TASKS, make_shapes, shapes_dataset

SIZE = 64
DATA = make_shapes(600, image_size=SIZE, seed=0)
# Clean images: each object is one flat colour, so the image can be checked against the masks.
CLEAN = make_shapes(40, image_size=SIZE, seed=11, noise_std=0.0)


def _objects(data, i):
    """(class, box, mask) of the real objects of image i."""
    count = data["num_objects"][i]
    return data["classes"][i, :count], data["boxes"][i, :count], data["instance_masks"][i, :count]


def _tight_box(mask):
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return np.array([rows.min() / height, cols.min() / width, (rows.max() + 1) / height, (cols.max() + 1) / width])


def test_arrays_have_the_documented_shapes_dtypes_and_ranges():
    data = make_shapes(5, image_size=32, seed=3, max_objects=3)
    expected = {
        "image": ((5, 32, 32, 3), np.float32),
        "classes": ((5, 3), np.int32),
        "boxes": ((5, 3, 4), np.float32),
        "semantic_mask": ((5, 32, 32), np.int32),
        "instance_masks": ((5, 3, 32, 32), np.uint8),
        "num_objects": ((5,), np.int32),
        "largest_class": ((5,), np.int32),
    }
    assert {key: (value.shape, value.dtype) for key, value in data.items()} == expected
    assert DATA["image"].min() >= 0.0 and DATA["image"].max() <= 1.0
    assert set(np.unique(DATA["instance_masks"])) == {0, 1}
    assert set(np.unique(DATA["semantic_mask"])) == {0, 1, 2, 3}


def test_each_box_is_exactly_the_tight_box_of_its_instance_mask():
    checked = 0
    for i in range(len(DATA["image"])):
        _, boxes, masks = _objects(DATA, i)
        for box, mask in zip(boxes, masks):
            np.testing.assert_array_equal(box, _tight_box(mask).astype(np.float32))
            checked += 1
    assert checked > 1000


def test_padded_slots_are_minus_one_zero_box_empty_mask_and_real_slots_are_not():
    slots = np.arange(DATA["classes"].shape[1])
    padded = slots[None, :] >= DATA["num_objects"][:, None]
    assert np.all(DATA["classes"][padded] == -1)
    assert np.all(DATA["boxes"][padded] == 0)
    assert np.all(DATA["instance_masks"][padded] == 0)
    assert np.all(np.isin(DATA["classes"][~padded], [0, 1, 2]))
    assert np.all(DATA["instance_masks"][~padded].sum(axis=(1, 2)) > 0)


def test_semantic_mask_is_the_union_of_the_instance_masks_labelled_class_plus_one():
    assert DATA["instance_masks"].sum(axis=1).max() == 1  # visible parts never overlap
    for i in range(len(DATA["image"])):
        expected = np.zeros((SIZE, SIZE), np.int32)
        for cls, _, mask in zip(*_objects(DATA, i)):
            expected[mask == 1] = cls + 1
        np.testing.assert_array_equal(DATA["semantic_mask"][i], expected)


def test_the_image_shows_each_instance_mask_in_one_flat_colour_over_a_flat_background():
    for i in range(len(CLEAN["image"])):
        image = CLEAN["image"][i]
        _, _, masks = _objects(CLEAN, i)
        regions = list(masks.astype(bool)) + [CLEAN["semantic_mask"][i] == 0]
        colours = []
        for region in regions:
            if region.any():
                pixels = image[region]
                np.testing.assert_allclose(pixels, np.broadcast_to(pixels[0], pixels.shape), atol=1e-6)
                colours.append(pixels[0])
        # Objects are bright and the background dark, so they are told apart.
        assert colours[-1].max() <= 0.25 and all(c.max() >= 0.35 for c in colours[:-1])


def test_object_counts_stay_within_min_and_max():
    counts = np.bincount(DATA["num_objects"], minlength=5)
    assert counts[0] == 0 and counts[1:].min() > 50
    exact = make_shapes(60, seed=2, min_objects=3, max_objects=3, size_range=(0.1, 0.2))
    assert np.all(exact["num_objects"] == 3)
    few = make_shapes(60, seed=2, min_objects=2, max_objects=6)
    assert few["classes"].shape == (60, 6) and few["num_objects"].min() >= 2 and few["num_objects"].max() <= 6


def test_largest_class_is_the_class_of_the_largest_visible_mask():
    for i in range(len(DATA["image"])):
        classes, _, masks = _objects(DATA, i)
        assert DATA["largest_class"][i] == classes[np.argmax(masks.sum(axis=(1, 2)))]


def test_same_seed_gives_identical_arrays_and_another_seed_different_ones():
    first, again, other = (make_shapes(20, seed=s) for s in (4, 4, 5))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["image"], other["image"])
    assert not np.array_equal(first["classes"], other["classes"])


def test_classes_are_roughly_balanced_over_600_images():
    real = DATA["classes"][DATA["classes"] >= 0]
    shares = np.bincount(real, minlength=3) / real.size
    np.testing.assert_allclose(shares, 1 / 3, atol=0.05)
    # Equal-area shapes: no class dominates the classification label either.
    label_shares = np.bincount(DATA["largest_class"], minlength=3) / len(DATA["largest_class"])
    np.testing.assert_allclose(label_shares, 1 / 3, atol=0.06)


def test_one_object_of_a_fixed_size_has_the_area_and_box_of_its_shape():
    data = make_shapes(90, image_size=SIZE, seed=6, min_objects=1, max_objects=1, size_range=(0.2, 0.2), noise_std=0.0)
    radius = 0.2 * SIZE
    area = data["instance_masks"][:, 0].sum(axis=(1, 2))
    side = (data["boxes"][:, 0, 2:] - data["boxes"][:, 0, :2]) * SIZE
    classes = data["classes"][:, 0]
    assert set(classes) == {0, 1, 2}
    # Circles: pi r^2 and a box 2r wide; the pixel grid costs at most a couple of percent.
    np.testing.assert_allclose(area[classes == 0], math.pi * radius**2, rtol=0.03)
    np.testing.assert_allclose(side[classes == 0], 2 * radius, atol=1.0)
    # Squares and triangles are drawn with the circle's area.
    np.testing.assert_allclose(area[classes == 1], math.pi * radius**2, rtol=0.08)
    np.testing.assert_allclose(area[classes == 2], math.pi * radius**2, rtol=0.08)
    np.testing.assert_allclose(side[classes == 1], math.sqrt(math.pi) * radius, atol=1.0)


def test_a_thousand_images_take_well_under_five_seconds():
    start = time.perf_counter()
    make_shapes(1000, seed=1)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    "task, target_spec",
    [
        ("classification", tf.TensorSpec([], tf.int32)),
        ("segmentation", tf.TensorSpec([32, 32], tf.int32)),
        ("detection", {"boxes": tf.TensorSpec([3, 4], tf.float32), "classes": tf.TensorSpec([3], tf.int32)}),
        (
            "instance",
            {
                "boxes": tf.TensorSpec([3, 4], tf.float32),
                "classes": tf.TensorSpec([3], tf.int32),
                "masks": tf.TensorSpec([3, 32, 32], tf.uint8),
            },
        ),
    ],
)
def test_each_task_dataset_has_its_element_spec_and_the_generated_values(task, target_spec):
    ds = shapes_dataset(6, image_size=32, seed=9, max_objects=3, task=task)
    assert ds.element_spec == (tf.TensorSpec([32, 32, 3], tf.float32), target_spec)
    data = make_shapes(6, image_size=32, seed=9, max_objects=3)
    expected = {
        "classification": data["largest_class"],
        "segmentation": data["semantic_mask"],
        "detection": {"boxes": data["boxes"], "classes": data["classes"]},
        "instance": {"boxes": data["boxes"], "classes": data["classes"], "masks": data["instance_masks"]},
    }[task]
    elements = list(ds.as_numpy_iterator())
    assert len(elements) == 6
    for i, (image, target) in enumerate(elements):
        np.testing.assert_array_equal(image, data["image"][i])
        if isinstance(expected, dict):
            for key in expected:
                np.testing.assert_array_equal(target[key], expected[key][i])
        else:
            np.testing.assert_array_equal(target, expected[i])


def test_an_augmented_instance_dataset_keeps_boxes_tight_around_masks():
    ds = shapes_dataset(12, image_size=32, seed=1, task="instance", augment={"seed": 3, "crop_scale": (0.6, 0.8)})
    assert ds.element_spec[1]["masks"].shape == (4, 32, 32)
    plain = make_shapes(12, image_size=32, seed=1)
    changed = 0
    for i, (image, target) in enumerate(ds.as_numpy_iterator()):
        changed += not np.array_equal(image, plain["image"][i])
        for cls, box, mask in zip(target["classes"], target["boxes"], target["masks"]):
            if cls >= 0:
                np.testing.assert_allclose(box, _tight_box(mask), atol=1e-6)
    assert changed == 12


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"n": 0}, "n=0"),
        ({"n": 4, "image_size": 8}, "image_size=8"),
        ({"n": 4, "min_objects": 0}, "min_objects=0"),
        ({"n": 4, "min_objects": 3, "max_objects": 2}, "max_objects=2"),
        ({"n": 4, "size_range": (0.3, 0.1)}, "size_range"),
        ({"n": 4, "size_range": (0.2, 0.5)}, "size_range"),
        ({"n": 4, "image_size": 16, "size_range": (0.05, 0.2)}, "2 pixels"),
        ({"n": 4, "noise_std": -0.1}, "noise_std"),
        ({"n": 4, "min_visible_fraction": 1.5}, "min_visible_fraction"),
        ({"n": 4, "seed": -1}, "seed=-1"),
    ],
)
def test_bad_generator_arguments_raise_a_value_error_naming_them(kwargs, named):
    with pytest.raises(ValueError, match=named):
        make_shapes(**kwargs)


def test_impossible_minimum_count_says_what_to_lower():
    with pytest.raises(DataError, match="lower min_objects"):
        make_shapes(3, min_objects=4, max_objects=4, size_range=(0.39, 0.39), min_visible_fraction=1.0)


def test_unknown_task_and_augment_without_seed_are_refused():
    with pytest.raises(ValueError, match="task='boxes'.*classification, segmentation, detection, instance"):
        shapes_dataset(2, task="boxes")
    with pytest.raises(ValueError, match="seed"):
        shapes_dataset(2, task="detection", augment={"flip": True})
    assert TASKS == ("classification", "segmentation", "detection", "instance")
