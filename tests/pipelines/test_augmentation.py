"""Image augmentation: the layers asked for, what each does, and reproducible draws in a parallel feed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfdl.pipelines.augmentation import augment, build_augmentation
from tfdl.pipelines.errors import DataError

# Mid-range pixels, so small brightness and contrast changes never clip.
IMAGES = np.random.default_rng(0).uniform(100.0, 150.0, (32, 12, 10, 3)).astype(np.float32)
LABELS = np.arange(32, dtype=np.int32)


def _feed(batch_size=8):
    return tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(batch_size)


def _epoch(ds):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(images), np.concatenate(labels)


def _augmented(seed=1, **factors):
    images, labels = _epoch(augment(_feed(), build_augmentation(seed=seed, **factors)))
    assert labels.tolist() == LABELS.tolist()
    assert images.shape == IMAGES.shape and images.dtype == np.float32
    return images


def test_layers_are_the_ones_asked_for_in_order():
    everything = build_augmentation(
        flip="horizontal", rotation=0.1, zoom=0.1, translation=0.1, contrast=0.1, brightness=0.1, seed=3
    )
    assert [type(layer).__name__ for layer in everything.layers] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
    ]
    assert [layer.seed for layer in everything.layers] == [3, 4, 5, 6, 7, 8]
    assert [type(layer).__name__ for layer in build_augmentation(zoom=0.2, brightness=0.1).layers] == [
        "RandomZoom", "RandomBrightness",
    ]
    assert build_augmentation(contrast=0.2, value_range=(0.0, 1.0)).layers[0].value_range == (0.0, 1.0)


def test_nothing_asked_is_no_augmentation():
    assert build_augmentation() is None
    ds = _feed()
    assert augment(ds, None) is ds


def test_horizontal_flip_mirrors_some_images_and_keeps_the_rest():
    out = _augmented(flip="horizontal")
    mirrored = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, IMAGES)]
    kept = [np.array_equal(o, x) for o, x in zip(out, IMAGES)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert 0 < sum(mirrored) < len(IMAGES)


def test_vertical_flip_mirrors_rows():
    out = _augmented(flip="vertical")
    mirrored = [np.array_equal(o, x[::-1]) for o, x in zip(out, IMAGES)]
    assert all(m or np.array_equal(o, x) for m, o, x in zip(mirrored, out, IMAGES))
    assert 0 < sum(mirrored) < len(IMAGES)


def test_brightness_shifts_each_image_by_one_amount_within_the_factor():
    out = _augmented(brightness=0.1)
    shift = (out - IMAGES).reshape(len(IMAGES), -1)
    np.testing.assert_allclose(shift, shift[:, :1].repeat(shift.shape[1], axis=1), atol=1e-4)
    assert np.all(np.abs(shift[:, 0]) <= 0.1 * 255 + 1e-4)
    assert np.all(np.abs(shift[:, 0]) > 0)


def test_brightness_clips_to_the_value_range():
    out, _ = _epoch(augment(_feed(), build_augmentation(brightness=0.9, value_range=(110.0, 140.0), seed=1)))
    assert out.min() >= 110.0 and out.max() <= 140.0
    assert not np.allclose(out, np.clip(IMAGES, 110.0, 140.0))


def test_contrast_scales_around_each_channel_mean():
    out = _augmented(contrast=0.3)
    mean = IMAGES.mean(axis=(1, 2), keepdims=True)
    factor = (out - mean) / (IMAGES - mean)
    per_image = factor.reshape(len(IMAGES), -1)
    np.testing.assert_allclose(per_image, per_image[:, :1].repeat(per_image.shape[1], axis=1), rtol=1e-3, atol=1e-3)
    assert np.all((per_image[:, 0] >= 0.7 - 1e-3) & (per_image[:, 0] <= 1.3 + 1e-3))
    assert not np.allclose(per_image[:, 0], 1.0)


@pytest.mark.parametrize("factor", ["rotation", "zoom", "translation"])
def test_geometric_transforms_move_pixels_within_range(factor):
    out = _augmented(**{factor: 0.3})
    changed = [not np.allclose(o, x) for o, x in zip(out, IMAGES)]
    assert sum(changed) >= len(IMAGES) - 1
    # Fill modes reflect or interpolate the image itself: nothing leaves its range.
    assert out.min() >= IMAGES.min() - 1e-3 and out.max() <= IMAGES.max() + 1e-3


def test_same_seed_same_images_new_epoch_new_images():
    factors = dict(flip="horizontal_and_vertical", rotation=0.2, zoom=0.2, translation=0.1, contrast=0.2, brightness=0.1)
    # Small batches: many parallel calls, where a racing seed would show.
    first = augment(_feed(batch_size=2), build_augmentation(seed=7, **factors))
    second = augment(_feed(batch_size=2), build_augmentation(seed=7, **factors))
    run_1 = [_epoch(first)[0], _epoch(first)[0]]
    run_2 = [_epoch(second)[0], _epoch(second)[0]]
    np.testing.assert_array_equal(run_1[0], run_2[0])
    np.testing.assert_array_equal(run_1[1], run_2[1])
    assert not np.allclose(run_1[0], run_1[1])
    other_seed = _epoch(augment(_feed(batch_size=2), build_augmentation(seed=8, **factors)))[0]
    assert not np.allclose(other_seed, run_1[0])


def test_a_checkpointed_feed_resumes_the_same_draws(tmp_path):
    # The trainer's backup saves the training iterator mid-run; the layers'
    # own seed variables inside tf.data made that save fail.
    factors = dict(flip="horizontal", rotation=0.2, translation=0.1, brightness=0.1)

    def feed():
        return iter(augment(_feed(batch_size=4).repeat(), build_augmentation(seed=5, **factors)))

    first = feed()
    for _ in range(3):
        next(first)
    saved = tf.train.Checkpoint(iterator=first).save(str(tmp_path / "feed"))
    expected = [next(first)[0].numpy() for _ in range(8)]  # crosses into the next epoch
    resumed = feed()
    tf.train.Checkpoint(iterator=resumed).restore(saved).assert_consumed()
    for want in expected:
        np.testing.assert_array_equal(next(resumed)[0].numpy(), want)


def test_the_seed_argument_overrides_the_layers_seed():
    layers = build_augmentation(seed=5, flip="horizontal", brightness=0.1)
    by_layers = _epoch(augment(_feed(), layers))[0]
    np.testing.assert_array_equal(_epoch(augment(_feed(), layers, seed=5))[0], by_layers)
    assert not np.allclose(_epoch(augment(_feed(), layers, seed=6))[0], by_layers)


def test_extra_components_pass_through_and_uint8_becomes_float():
    weights = np.linspace(0, 1, 32).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((IMAGES.astype(np.uint8), LABELS, weights)).batch(8)
    images, labels, w = next(iter(augment(ds, build_augmentation(flip="horizontal", seed=0))))
    assert images.dtype == tf.float32 and images.shape == (8, 12, 10, 3)
    assert labels.numpy().tolist() == list(range(8))
    np.testing.assert_array_equal(w.numpy(), weights[:8])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rotation=-0.1), r"rotation=-0.1"),
        (dict(zoom=1.0), r"zoom=1.0: use a fraction in \[0, 1\)"),
        (dict(translation=float("nan")), r"translation=nan"),
        (dict(contrast="0.2"), r"contrast='0.2'"),
        (dict(brightness=1.5), r"brightness=1.5"),
        (dict(flip="diagonal"), r"flip='diagonal'"),
        (dict(brightness=0.1, value_range=(255, 0)), r"value_range=\(255, 0\): low must be below high"),
        (dict(brightness=0.1, value_range=255), r"value_range=255: give \(low, high\)"),
        (dict(flip="vertical", seed=1.5), r"seed=1.5"),
    ],
)
def test_invalid_arguments_are_named(kwargs, message):
    with pytest.raises(DataError, match=message):
        build_augmentation(**kwargs)


def test_augment_needs_batches_of_image_label_pairs():
    augmentation = build_augmentation(flip="horizontal", seed=0)
    with pytest.raises(DataError, match=r"batch the dataset first"):
        augment(tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)), augmentation)
    with pytest.raises(DataError, match=r"\(images, labels\) batches"):
        augment(tf.data.Dataset.from_tensor_slices(IMAGES).batch(4), augmentation)


def test_augment_refuses_layers_that_are_not_image_augmentations():
    import keras

    with pytest.raises(DataError, match=r"'dense' \(Dense\) is not a Keras image augmentation layer"):
        augment(_feed(), keras.Sequential([keras.layers.Dense(3, name="dense")]))
