"""`data.augmentation` in `tfdl run`: masks and boxes move with the image, training only; backups hold the feed."""

from __future__ import annotations

import numpy as np
import pytest

from tfdl.config import load_config
from tfdl.pipelines import build_pipeline
from tfdl.pipelines.synthetic_shapes import make_shapes
from tfdl.schema import ConfigError
from tfdl.tasks import run_task

FULL = "data.augmentation={flip: horizontal, crop_scale: [0.6, 1.0], brightness: 0.1, contrast: 0.2, saturation: 0.2, hue: 0.02}"
FLIP = "data.augmentation={flip: horizontal}"
SMALL_SEGMENTATION = ["data.source.examples=60", "data.source.image_size=32", "data.normalization=none"]
SMALL_DETECTION = ["data.source.examples=40", "data.source.image_size=32"]


def _fed(feed) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(feed.as_numpy_iterator())
    return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])


def _source(image: np.ndarray, originals: np.ndarray) -> tuple[int, bool]:
    """The index of the original `image` was made from, and whether it was mirrored."""
    for j, original in enumerate(originals):
        if np.array_equal(image, original):
            return j, False
        if np.array_equal(image, original[:, ::-1]):
            return j, True
    raise AssertionError("a fed image is neither an original nor its mirror image")


@pytest.mark.parametrize("config, overrides, messages", [
    ("shapes_unet", ["data.augmentation={zoom: 0.1}"],
     ["augmentation.zoom: use crop_scale (e.g. [0.6, 1.0]) for segmentation: it moves the masks and boxes"]),
    ("shapes_detector", ["data.augmentation={rotation: 0.1, translation: 0.1}"],
     ["augmentation.rotation: the geometry-aware transform of detection has no rotation",
      "augmentation.translation: use crop_scale for detection"]),
    ("shapes_mask_rcnn", ["data.augmentation={flip: vertical}"],
     ["augmentation.flip: only flip: horizontal is implemented for instance segmentation"]),
    ("shapes_transfer", ["data.augmentation={crop_scale: [0.6, 1.0], hue: 0.05}"],
     ["augmentation.crop_scale: the classification feed augments with Keras layers, which have no "
      "crop-and-scale (it is for segmentation and detection); use zoom",
      "augmentation.hue: the classification feed augments with Keras layers"]),
    ("shapes_unet", ["data.augmentation={crop_scale: [0.9, 0.5]}"],
     ["crop_scale [0.9, 0.5]: give [low, high] fractions of the image side with 0 < low <= high <= 1"]),
])
def test_config_names_each_refused_transform_and_what_to_use(config, overrides, messages):
    with pytest.raises(ConfigError) as error:
        load_config(config, overrides)
    for message in messages:
        assert message in str(error.value)


def test_dense_configs_accept_the_geometric_transforms():
    for config in ("shapes_unet", "shapes_detector", "shapes_mask_rcnn"):
        augmentation = load_config(config, [FULL]).data.augmentation
        assert augmentation.crop_scale == (0.6, 1.0) and augmentation.hue == 0.02


def test_segmentation_training_feed_flips_masks_with_their_images():
    pipeline = build_pipeline(load_config("shapes_unet", [*SMALL_SEGMENTATION, FLIP]).data, seed=0)
    images, masks = pipeline.raw("train")
    flipped = 0
    for _ in range(2):  # two epochs: each draws its own flips
        fed_images, fed_masks = _fed(pipeline.train)
        assert len(fed_images) == len(images)
        for image, mask in zip(fed_images, fed_masks):
            j, mirrored = _source(image, images)
            np.testing.assert_array_equal(mask, masks[j][:, ::-1] if mirrored else masks[j])
            flipped += mirrored
    assert 0 < flipped < 2 * len(images)


def test_cropped_and_jittered_masks_stay_on_their_objects_and_the_seed_repeats_the_feed():
    # Shapes are bright on a dark background: an augmented mask must cover the bright pixels.
    config = load_config("shapes_unet", [*SMALL_SEGMENTATION, FULL]).data
    pipeline = build_pipeline(config, seed=0)
    first, again = _fed(pipeline.train), _fed(pipeline.train)
    images, masks = first
    originals = pipeline.raw("train")[0]
    assert not any(np.array_equal(image, original) for image in images for original in originals)
    bright = images.max(axis=-1) > 0.3
    assert (bright == (masks > 0)).mean() > 0.85
    # A mask that did not follow its image would miss: the mirrored masks agree far less.
    assert (bright == (masks[:, :, ::-1] > 0)).mean() < (bright == (masks > 0)).mean() - 0.05
    assert not np.array_equal(first[0], again[0])  # each epoch draws new transforms
    rebuilt = build_pipeline(config, seed=0)
    for fed, refed in zip(first, _fed(rebuilt.train)):
        np.testing.assert_array_equal(fed, refed)  # the run's seed drives the draws


def test_validation_and_test_feeds_are_not_augmented():
    pipeline = build_pipeline(load_config("shapes_unet", [*SMALL_SEGMENTATION, FULL]).data, seed=0)
    for split, feed in (("validation", pipeline.validation), ("test", pipeline.test)):
        images, masks = pipeline.raw(split)
        for _ in range(2):
            fed_images, fed_masks = _fed(feed)
            np.testing.assert_array_equal(fed_images, images)
            np.testing.assert_array_equal(fed_masks, masks)


def _detection_originals(config) -> dict:
    """The shapes a detection run of `config` draws (the source has no seed of its own: the run's)."""
    return make_shapes(config.data.source.examples, config.data.source.image_size, config.seed)


def _labels(shapes: dict, j: int, mirrored: bool) -> dict:
    """Example `j`'s boxes, classes and masks, mirrored left to right in numpy when `mirrored`."""
    boxes, classes, masks = shapes["boxes"][j], shapes["classes"][j], shapes["instance_masks"][j]
    if mirrored:
        ymin, xmin, ymax, xmax = boxes.T
        boxes = np.where((classes >= 0)[:, None], np.stack([ymin, 1 - xmax, ymax, 1 - xmin], axis=1), boxes)
        masks = masks[:, :, ::-1]
    return {"boxes": boxes.astype(np.float32), "classes": classes, "masks": masks}


def test_one_stage_targets_are_matched_to_the_augmented_boxes():
    from tfdl.models import encode_targets

    config = load_config("shapes_detector", [*SMALL_DETECTION, FLIP])
    data = run_task("detection").build_data(config, config.seed, 8)
    shapes = _detection_originals(config)
    encode = encode_targets(data.anchors)
    flipped = 0
    for images, targets in data.train.as_numpy_iterator():
        for i, image in enumerate(images):
            j, mirrored = _source(image, shapes["image"])
            labels = _labels(shapes, j, mirrored)
            _, expected = encode(image, {"boxes": labels["boxes"], "classes": labels["classes"]})
            for key in ("box_deltas", "class_logits"):
                np.testing.assert_allclose(targets[key][i], np.asarray(expected[key]), atol=1e-5)
            flipped += mirrored
    assert 0 < flipped < data.sizes["train"]
    # Validation images are the originals, unflipped.
    validation = np.concatenate([x for x, _ in data.validation.as_numpy_iterator()])
    assert all(not _source(image, shapes["image"])[1] for image in validation)


def test_two_stage_ground_truth_follows_the_augmented_image():
    config = load_config("shapes_mask_rcnn", [*SMALL_DETECTION, FLIP])
    data = run_task("detection").build_data(config, config.seed, 8)
    shapes = _detection_originals(config)
    flipped = 0
    for images, truth in data.train.as_numpy_iterator():
        for i, image in enumerate(images):
            j, mirrored = _source(image, shapes["image"])
            expected = _labels(shapes, j, mirrored)
            for key in ("boxes", "classes", "masks"):
                np.testing.assert_allclose(truth[key][i], expected[key], atol=1e-6)
            flipped += mirrored
    assert 0 < flipped < data.sizes["train"]


def test_crop_scale_changes_the_detection_targets_of_each_epoch():
    config = load_config("shapes_mask_rcnn", [*SMALL_DETECTION, FULL])
    data = run_task("detection").build_data(config, config.seed, 8)
    first, again = (np.concatenate([t["boxes"] for _, t in data.train.as_numpy_iterator()]) for _ in range(2))
    assert not np.allclose(first, again)
    # Boxes stay tight around the masks that moved with them.
    for images, truth in data.train.take(2).as_numpy_iterator():
        for boxes, classes, masks in zip(truth["boxes"], truth["classes"], truth["masks"]):
            for box, mask in zip(boxes[classes >= 0], masks[classes >= 0]):
                rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
                size = mask.shape[0]
                np.testing.assert_allclose(box, [rows[0] / size, cols[0] / size, (rows[-1] + 1) / size,
                                                 (cols[-1] + 1) / size], atol=1e-6)


def test_classification_brightness_works_in_the_unit_range_of_shapes_images():
    config = load_config("shapes_transfer", ["data.source.examples=60", "data.source.image_size=32",
                                             "data.normalization=none", "data.augmentation={brightness: 0.1}"])
    pipeline = build_pipeline(config.data, seed=0)
    images, _ = _fed(pipeline.train)
    originals = pipeline.raw("train")[0]
    # Keras's brightness factor is a fraction of the value range: [0, 1] here, not [0, 255].
    shifts = np.array([np.median(image - originals[_nearest(image, originals)]) for image in images])
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.abs(shifts).max() <= 0.1 + 1e-6 and np.abs(shifts).max() > 0.01


def _nearest(image: np.ndarray, originals: np.ndarray) -> int:
    return int(np.abs(originals - image).mean(axis=(1, 2, 3)).argmin())


def test_a_segmentation_run_with_augmentation_trains_and_reports(tmp_path):
    from tfdl.run import run

    config = load_config("shapes_unet", [
        "data.source.examples=80", "data.source.image_size=32", "training.epochs=1",
        "model.params.filters=[8, 16]", "export.tflite=[]", FULL,
    ])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    assert 0.0 <= result.metrics["test"]["mean_iou"] <= 1.0 and result.metrics["parity"]["passed"]
    assert "| mean IoU | pixel accuracy |" in (tmp_path / "run" / "report.md").read_text()
    # The run's config records the augmentation and loads back as it ran.
    recorded = load_config(str(tmp_path / "run" / "config.yaml"))
    assert recorded.data.augmentation == config.data.augmentation


def test_a_classification_run_with_keras_layer_augmentation_backs_up_mid_run(tmp_path):
    # The Keras layers' seed variables, read inside tf.data, made every backup
    # of such a run fail ("ReadVariableOp is stateful") once 120 s had passed.
    from tfdl.run import run

    config = load_config("shapes_resnet", [
        "data.source.examples=80", "data.source.image_size=32", "training.epochs=2", "export.tflite=[]",
        "data.augmentation={flip: horizontal, translation: 0.1, brightness: 0.1}", "training.backup.every_steps=1",
    ])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    assert result.metrics["training"]["epochs_run"] == 2 and result.metrics["parity"]["passed"]
