"""Geometric augmentation: boxes and masks move with the image, exactly where hand-computable, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfdl.pipelines.geometric_augmentation import augment_dataset, augment_example, crop_example, flip_example
from tfdl.pipelines.synthetic_shapes import make_shapes

NO_RANDOM = {"flip": False, "crop_scale": None, "color": False}


def _tight_box(mask):
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return np.array([rows.min() / height, cols.min() / width, (rows.max() + 1) / height, (cols.max() + 1) / width])


def _rectangle_mask(height, width, box):
    """The mask of the pixels inside a normalized box that lies on the pixel grid."""
    mask = np.zeros((height, width), np.uint8)
    top, left, bottom, right = np.round(np.asarray(box) * [height, width, height, width]).astype(int)
    mask[top:bottom, left:right] = 1
    return mask


def _eroded(mask):
    """The pixels of a mask whose 8 neighbours are in it too."""
    padded = np.pad(mask.astype(bool), 1)
    height, width = mask.shape
    shifted = [padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.all(shifted, axis=0)


def _shapes_examples(n, seed, noise_std=0.0):
    data = make_shapes(n, image_size=32, seed=seed, noise_std=noise_std)
    return data, tf.data.Dataset.from_tensor_slices(
        {
            "image": data["image"],
            "boxes": data["boxes"],
            "classes": data["classes"],
            "masks": data["instance_masks"],
            "semantic_mask": data["semantic_mask"],
            "num_objects": data["num_objects"],
        }
    )


def _arrays(ds):
    return list(ds.as_numpy_iterator())


def test_flip_mirrors_a_known_box_exactly_and_the_image_and_masks_with_it():
    image = np.random.default_rng(0).uniform(size=(4, 5, 3)).astype(np.float32)
    masks = np.zeros((2, 4, 5), np.uint8)
    masks[0, 1:3, 0:2] = 1
    semantic = masks[0].astype(np.int32) * 2
    example = {
        "image": image,
        "boxes": [[0.25, 0.0, 0.75, 0.4], [0.0, 0.0, 0.0, 0.0]],
        "classes": [1, -1],
        "masks": masks,
        "semantic_mask": semantic,
    }
    out = flip_example(example)
    np.testing.assert_allclose(out["boxes"].numpy(), [[0.25, 0.6, 0.75, 1.0], [0, 0, 0, 0]], atol=1e-6)
    np.testing.assert_array_equal(out["image"].numpy(), image[:, ::-1])
    np.testing.assert_array_equal(out["masks"].numpy(), masks[:, :, ::-1])
    np.testing.assert_array_equal(out["semantic_mask"].numpy(), semantic[:, ::-1])
    np.testing.assert_allclose(out["boxes"].numpy()[0], _tight_box(out["masks"].numpy()[0]), atol=1e-6)
    assert out["classes"].numpy().tolist() == [1, -1]
    twice = flip_example(out)
    np.testing.assert_allclose(twice["boxes"].numpy(), example["boxes"], atol=1e-6)


BOXES = [
    [0.2, 0.2, 0.6, 0.4],  # inside the window
    [0.0, 0.6, 0.3, 1.0],  # right of the window: dropped
    [0.5, 0.3, 0.9, 0.5],  # half inside
    [0.6, 0.3, 0.8, 0.6],  # 1/3 inside: 0.1 of its 0.2 height, 0.2 of its 0.3 width
    [0.0, 0.0, 0.0, 0.0],  # padding
]
CLASSES = [0, 1, 2, 1, -1]
WINDOW = (2, 0, 5, 5)  # rows 2..6, columns 0..4 of a 10x10 image: [0.2, 0.0, 0.7, 0.5]


def _box_example(with_masks=False):
    ramp = np.broadcast_to(np.arange(10, dtype=np.float32)[None, :, None], (10, 10, 3)) / 10
    example = {"image": ramp.copy(), "boxes": BOXES, "classes": CLASSES}
    if with_masks:
        example["masks"] = np.stack([_rectangle_mask(10, 10, box) for box in BOXES])
    return example


def test_crop_with_a_fixed_window_gives_the_hand_computed_boxes():
    out = crop_example(_box_example(), WINDOW)
    # Clipped to the window [0.2, 0.0, 0.7, 0.5], shifted by its corner, divided by its 0.5 side.
    np.testing.assert_allclose(
        out["boxes"].numpy(),
        [[0.0, 0.4, 0.8, 0.8], [0.6, 0.6, 1.0, 1.0], [0.8, 0.6, 1.0, 1.0], [0, 0, 0, 0], [0, 0, 0, 0]],
        atol=1e-6,
    )
    # The box cropped out is dropped and the survivors close up, in their order.
    assert out["classes"].numpy().tolist() == [0, 2, 1, -1, -1]


def test_a_box_keeping_less_than_the_visible_fraction_is_dropped():
    strict = crop_example(_box_example(), WINDOW, min_visible_fraction=0.4)
    assert strict["classes"].numpy().tolist() == [0, 2, -1, -1, -1]
    np.testing.assert_array_equal(strict["boxes"].numpy()[2:], 0)
    everything_inside = crop_example(_box_example(), WINDOW, min_visible_fraction=0.0)
    assert everything_inside["classes"].numpy().tolist() == [0, 2, 1, -1, -1]  # 0 visible is still dropped


def test_crop_moves_image_and_masks_with_the_boxes():
    out = crop_example(_box_example(with_masks=True), WINDOW)
    masks = out["masks"].numpy()
    # Twice the size: nearest neighbour repeats every pixel of the window twice each way.
    window_masks = np.stack([_rectangle_mask(10, 10, box) for box in BOXES])[[0, 2, 3], 2:7, 0:5]
    np.testing.assert_array_equal(masks[:3], np.kron(window_masks, np.ones((1, 2, 2), np.uint8)))
    np.testing.assert_array_equal(masks[3:], 0)
    # Rectangles on the pixel grid: the boxes from the masks equal the clipped boxes.
    np.testing.assert_allclose(
        out["boxes"].numpy()[:3], [[0.0, 0.4, 0.8, 0.8], [0.6, 0.6, 1.0, 1.0], [0.8, 0.6, 1.0, 1.0]], atol=1e-6
    )
    # The image of column ramp x/10 over columns 0..4, resized bilinearly (half-pixel centres, edges clamped).
    source_column = np.clip((np.arange(10) + 0.5) * 5 / 10 - 0.5, 0, 4)
    np.testing.assert_allclose(out["image"].numpy()[3, :, 0], source_column / 10, atol=1e-6)


def test_with_masks_boxes_are_tight_around_the_visible_part_inside_the_window():
    # A square whose top right corner is hidden by another object: its mask is an L of 27 pixels.
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 2:8] = 1
    mask[2:5, 5:8] = 0
    example = {
        "image": np.zeros((10, 10, 3), np.float32), "boxes": [_tight_box(mask)], "classes": [1], "masks": mask[None]
    }
    window = (0, 3, 5, 5)  # rows 0..4, columns 3..7: only the L's rows 2..4, columns 3..4 (6 pixels)
    out = crop_example(example, window, min_visible_fraction=0.2)
    np.testing.assert_allclose(out["boxes"].numpy(), [[0.4, 0.0, 1.0, 0.4]], atol=1e-6)
    # The clipped box alone would be loose: [0.2, 0.3, 0.5, 0.8] in the window [0.0, 0.3, 0.5, 0.8].
    without_masks = crop_example({key: example[key] for key in ("image", "boxes", "classes")}, window)
    np.testing.assert_allclose(without_masks["boxes"].numpy(), [[0.4, 0.0, 1.0, 1.0]], atol=1e-6)
    # Visibility is counted on the mask: 6 of 27 pixels is under 0.25 (the box keeps 0.42 of its area).
    assert crop_example(example, window, min_visible_fraction=0.25)["classes"].numpy().tolist() == [-1]


def test_random_augmentation_keeps_boxes_masks_semantic_mask_and_image_consistent():
    data, examples = _shapes_examples(48, seed=5)
    augmented = _arrays(augment_dataset(examples, seed=7, color=False))
    cropped_or_flipped = interior_pixels = 0
    for i, out in enumerate(augmented):
        cropped_or_flipped += not np.array_equal(out["image"], data["image"][i])
        real = out["classes"] >= 0
        assert out["num_objects"] == real.sum() and np.all(real[: real.sum()])
        for slot in np.flatnonzero(real):
            mask = out["masks"][slot]
            np.testing.assert_allclose(out["boxes"][slot], _tight_box(mask), atol=2 / 32)
            assert np.all(out["semantic_mask"][mask == 1] == out["classes"][slot] + 1)
            # Away from its edge (where resizing blends colours) the mask covers the object's flat
            # colour, taken where an original object of its class was.
            interior = _eroded(mask)
            original = data["instance_masks"][i][data["classes"][i] == out["classes"][slot]]
            colours = [data["image"][i][m == 1][0] for m in original]
            pixels = out["image"][interior]
            assert max(np.sum(np.all(np.abs(pixels - c) < 1e-4, axis=-1)) for c in colours) == len(pixels)
            interior_pixels += len(pixels)
        assert np.all(out["masks"][~real] == 0) and np.all(out["boxes"][~real] == 0)
    assert cropped_or_flipped > 40 and interior_pixels > 5000


def test_flip_alone_keeps_the_generators_tight_boxes_exact():
    _, examples = _shapes_examples(16, seed=2)
    for out in _arrays(augment_dataset(examples, seed=1, crop_scale=None, color=False)):
        for slot in np.flatnonzero(out["classes"] >= 0):
            np.testing.assert_allclose(out["boxes"][slot], _tight_box(out["masks"][slot]), atol=1e-6)


def test_same_seed_gives_identical_output_and_each_epoch_new_draws():
    _, examples = _shapes_examples(12, seed=3, noise_std=0.05)
    ds = augment_dataset(examples, seed=21)
    first, second = _arrays(ds), _arrays(ds)
    again = _arrays(augment_dataset(examples, seed=21))
    other = _arrays(augment_dataset(examples, seed=22))
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, other))
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, second))
    example = next(iter(examples))
    one, two = augment_example(example, (3, 4)), augment_example(example, (3, 4))
    for key in one:
        np.testing.assert_array_equal(one[key].numpy(), two[key].numpy())


def test_colour_jitter_changes_only_the_image_and_keeps_it_in_unit_range():
    data, examples = _shapes_examples(24, seed=4, noise_std=0.05)
    strong = {"flip": False, "crop_scale": None, "brightness": 0.5, "contrast": 0.5, "saturation": 0.9, "hue": 0.3}
    outputs = _arrays(augment_dataset(examples, seed=2, **strong))
    images = np.stack([out["image"] for out in outputs])
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.min() == 0.0 or images.max() == 1.0  # strong jitter reaches the clip
    assert np.abs(images - data["image"]).mean() > 0.05
    np.testing.assert_array_equal(np.stack([out["masks"] for out in outputs]), data["instance_masks"])
    np.testing.assert_array_equal(np.stack([out["boxes"] for out in outputs]), data["boxes"])
    full = _arrays(augment_dataset(examples, seed=2))
    assert min(out["image"].min() for out in full) >= 0.0 and max(out["image"].max() for out in full) <= 1.0


def test_nothing_random_asked_returns_the_example_and_uint8_images_are_scaled():
    image = np.full((6, 6, 3), 255, np.uint8)
    out = augment_example({"image": image, "boxes": [[0.0, 0.0, 0.5, 0.5]], "classes": [0]}, (0, 0), **NO_RANDOM)
    assert out["image"].dtype == tf.float32 and np.all(out["image"].numpy() == 1.0)
    np.testing.assert_array_equal(out["boxes"].numpy(), [[0.0, 0.0, 0.5, 0.5]])


@pytest.mark.parametrize(
    "boxes",
    [[[0.1, 0.2, 1.5, 0.4]], [[-0.1, 0.2, 0.5, 0.4]], [[0.6, 0.2, 0.5, 0.4]], [[10.0, 20.0, 30.0, 40.0]]],
)
def test_boxes_outside_the_unit_square_or_inverted_are_refused(boxes):
    with pytest.raises(ValueError, match=r"boxes must be normalized .*divide pixel boxes"):
        augment_example({"image": np.zeros((8, 8, 3), np.float32), "boxes": boxes, "classes": [0]}, (1, 1))


def test_boxes_outside_the_unit_square_fail_inside_a_dataset_with_the_same_message():
    ds = tf.data.Dataset.from_tensors(
        {
            "image": np.zeros((8, 8, 3), np.float32),
            "boxes": np.array([[0.0, 0.0, 2.0, 0.5]], np.float32),
            "classes": [0],
        }
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="boxes must be normalized"):
        _arrays(augment_dataset(ds, seed=0))


def test_wrong_ranks_and_bad_options_are_refused_with_what_to_do():
    example = {"image": np.zeros((8, 8, 3), np.float32), "boxes": [[0.0, 0.0, 0.5, 0.5]], "classes": [0]}
    with pytest.raises(ValueError, match="image has rank 4.*augment before batching"):
        augment_example({**example, "image": np.zeros((2, 8, 8, 3), np.float32)}, (0, 1))
    batched = tf.data.Dataset.from_tensors({**example, "boxes": np.array(example["boxes"], np.float32)}).batch(2)
    with pytest.raises(ValueError, match="image has rank 4"):
        augment_dataset(batched, seed=0)
    with pytest.raises(ValueError, match="boxes have shape"):
        augment_example({**example, "boxes": [[0.0, 0.5, 0.5]]}, (0, 1))
    with pytest.raises(ValueError, match="masks is \\[4, 4\\] pixels but the image is \\[8, 8\\]"):
        augment_example({**example, "masks": np.zeros((1, 4, 4), np.uint8)}, (0, 1))
    with pytest.raises(ValueError, match="example has no classes"):
        augment_example({"image": example["image"], "boxes": example["boxes"]}, (0, 1))
    with pytest.raises(ValueError, match="crop_scale=\\(0.0, 1.0\\)"):
        augment_example(example, (0, 1), crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="hue=0.7"):
        augment_example(example, (0, 1), hue=0.7)
    with pytest.raises(ValueError, match="colour jitter needs 3"):
        augment_example({**example, "image": np.zeros((8, 8, 1), np.float32)}, (0, 1))
    with pytest.raises(ValueError, match="unknown augmentation options \\['scale'\\]"):
        augment_dataset(tf.data.Dataset.from_tensors(example), seed=0, scale=0.5)
    with pytest.raises(ValueError, match="window=\\(4, 4, 6, 6\\) is not inside"):
        crop_example(example, (4, 4, 6, 6))
    with pytest.raises(ValueError, match="seed_pair"):
        augment_example(example, (1, 2, 3))
