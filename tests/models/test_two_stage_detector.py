"""The two-stage detector (Faster / Mask R-CNN): its targets by hand, mask pasting, learning, round trip, serving."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from tfdl.detection import decode_boxes
from tfdl.evaluation import detection_map
from tfdl.export import export_saved_model
from tfdl.models.two_stage_detector import TwoStageDetectorConfig, build_two_stage_detector
from tfdl.models.two_stage_serving import PasteMasks, predict_two_stage_detections, two_stage_inference_model
from tfdl.models.two_stage_targets import mask_targets, rpn_targets, sample_rois
from tfdl.pipelines.synthetic_shapes import make_shapes

TINY = dict(
    input_shape=(32, 32, 3), num_classes=3, masks=True, backbone_filters=(8, 16, 32), feature_strides=(4, 8),
    anchor_scales=((0.4,), (0.6,)), aspect_ratios=(1.0,), head_width=16, head_depth=1, fc_units=32, mask_size=8,
    mask_convs=1, mask_width=16, train_proposals=32, rois_per_image=16, test_proposals=16, pre_nms_proposals=64,
    max_detections=10, roi_canonical_size=8,
)


def _truth(data: dict) -> list[dict]:
    return [
        {"boxes": b[c >= 0], "classes": c[c >= 0], "masks": m[c >= 0], "image_size": (32, 32)}
        for b, c, m in zip(data["boxes"], data["classes"], data["instance_masks"])
    ]


@pytest.fixture(scope="module")
def trained():
    """A tiny Mask R-CNN trained 6 epochs on 256 images of one or two large shapes."""
    keras.utils.set_random_seed(0)
    data = make_shapes(256, 32, seed=0, max_objects=2, size_range=(0.2, 0.35))
    model = build_two_stage_detector(TwoStageDetectorConfig(**TINY))
    feed = tf.data.Dataset.from_tensor_slices(
        (data["image"], {"boxes": data["boxes"], "classes": data["classes"], "masks": data["instance_masks"]})
    ).batch(16)
    model.compile(keras.optimizers.Adam(5e-3, clipnorm=10.0), steps_per_execution=16)
    history = model.fit(feed, epochs=6, verbose=0).history
    return model, data, history


def test_rpn_targets_mark_objects_background_and_ignored_anchors():
    anchors = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.1, 0.5, 0.6], [0.5, 0.5, 1.0, 1.0]]
    # IoU of the box with the anchors: 1.0, 0.4/0.6 = 0.667 (between 0.3 and 0.7: ignored), 0.
    classes, boxes = rpn_targets(anchors, [[[0.0, 0.0, 0.5, 0.5], [0, 0, 0, 0]]], [[2, -1]])
    assert classes.numpy().tolist() == [[0, -2, -1]]
    np.testing.assert_allclose(boxes.numpy()[0], [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], atol=1e-6)


def test_sample_rois_caps_positives_and_gives_second_stage_targets():
    gt_boxes = [[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]]
    gt_classes = [[1, -1]]
    proposals = [[[0.0, 0.0, 0.5, 0.4],    # IoU 0.8: positive
                  [0.0, 0.0, 0.5, 0.45],   # IoU 0.9: positive
                  [0.5, 0.5, 1.0, 1.0],    # IoU 0: negative
                  [0.6, 0.6, 0.9, 0.9],    # negative
                  [0.0, 0.0, 0.0, 0.0]]]   # padding from NMS
    valid = [[True, True, True, True, False]]
    rois = sample_rois(proposals, valid, gt_boxes, gt_classes, num_rois=4, positive_fraction=0.5, seed=0)
    classes, weights, flags = (rois[k].numpy()[0] for k in ("classes", "weights", "box_targets"))
    # Three positives exist (two proposals and the ground-truth box itself); half of 4 slots may be positive.
    assert classes.tolist()[:2] == [2, 2] and classes.tolist()[2:] == [0, 0]
    assert weights.tolist() == [1.0, 1.0, 1.0, 1.0] and flags[:, 4].tolist() == [1.0, 1.0, 0.0, 0.0]
    for roi, offsets in zip(rois["rois"].numpy()[0, :2], flags[:2, :4]):
        # Decoding the target offsets from the region gives back the ground-truth box.
        np.testing.assert_allclose(decode_boxes(offsets[None], roi[None]).numpy()[0], gt_boxes[0][0], atol=1e-5)
    # More slots than usable candidates (round(0.25 * 7) = 2 positives kept, the third dropped; 2 negatives): the rest weigh 0.
    rois = sample_rois(proposals, valid, gt_boxes, gt_classes, num_rois=7, positive_fraction=0.25, seed=0)
    assert rois["weights"].numpy()[0].tolist() == [1.0] * 4 + [0.0] * 3


def test_mask_targets_crop_each_regions_own_object():
    masks = np.zeros((1, 2, 8, 8), np.uint8)
    masks[0, 0, :4, :4] = 1   # object 0: the top-left quarter
    masks[0, 1, :, 4:] = 1    # object 1: the right half
    rois = [[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]]
    got = mask_targets(masks, rois, [[0, 1]], 4).numpy()[0]
    np.testing.assert_array_equal(got[0], [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(got[1], [[0, 0, 1, 1]] * 4)


def test_paste_masks_puts_each_mask_over_its_box():
    # A 4x4 mask whose left half is on, over the box rows 8..24, columns 8..16 of a 32x32 image:
    # image columns 8..11 are the mask's left half, 12..15 its right half.
    mask = np.zeros((1, 1, 4, 4), "float32")
    mask[..., :2] = 1.0
    pasted = PasteMasks((32, 32), "binary")(mask, np.array([[[0.25, 0.25, 0.75, 0.5]]], "float32")).numpy()[0, 0]
    expected = np.zeros((32, 32), np.uint8)
    expected[8:24, 8:12] = 1
    # The corner pixels sit near the box's corners, where the mask fades both ways: 0.75 * 0.625 < 0.5.
    expected[[8, 8, 23, 23], [8, 11, 8, 11]] = 0
    np.testing.assert_array_equal(pasted, expected)
    probabilities = PasteMasks((32, 32))(mask, np.array([[[0.25, 0.25, 0.75, 0.5]]], "float32")).numpy()[0, 0]
    # Two image columns per mask cell: column 11's centre lies a quarter cell past cell 1's centre (on)
    # toward cell 2's (off), column 12's three quarters: bilinear 0.75 and 0.25.
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities[16, 10:13], [1.0, 0.75, 0.25])


def test_the_detector_learns_boxes_and_masks_on_small_data(trained):
    model, data, history = trained
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["mask_loss"][-1] < history["mask_loss"][0] and history["rpn_loss"][-1] < history["rpn_loss"][0]
    found = predict_two_stage_detections(model, data["image"][:96])
    truth = _truth({k: v[:96] for k, v in data.items()})
    assert detection_map(truth, found).map_50 > 0.4
    assert detection_map(truth, found, kind="mask").map_50 > 0.3
    assert found[0]["masks"].dtype == np.uint8 and found[0]["masks"].shape[1:] == (32, 32)


def test_keras_round_trip_gives_identical_detections(trained, tmp_path):
    model, data, _ = trained
    served = two_stage_inference_model(model)
    served.save(tmp_path / "detector.keras")
    loaded = keras.saving.load_model(tmp_path / "detector.keras", safe_mode=True)
    images = data["image"][:4]
    before, after = served(images), loaded(images)
    assert sorted(after) == ["boxes", "classes", "masks", "num_detections", "scores"]
    for key in before:
        np.testing.assert_allclose(np.asarray(before[key]), np.asarray(after[key]), atol=1e-6)


def test_the_served_saved_model_equals_the_in_process_detections(trained, tmp_path):
    model, data, _ = trained
    saved = export_saved_model(two_stage_inference_model(model, mask_output="binary"), tmp_path / "saved")
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    images = data["image"][:6]
    served = {k: v.numpy() for k, v in serve(image=tf.constant(images)).items()}
    assert served["masks"].dtype == np.uint8 and served["masks"].shape == (6, 10, 32, 32)
    found = predict_two_stage_detections(model, images)
    assert sum(len(f["scores"]) for f in found) > 0
    for i, expected in enumerate(found):
        n = int(served["num_detections"][i])
        assert n == len(expected["scores"])
        np.testing.assert_allclose(served["boxes"][i, :n], expected["boxes"], atol=1e-5)
        np.testing.assert_allclose(served["scores"][i, :n], expected["scores"], atol=1e-5)
        np.testing.assert_array_equal(served["classes"][i, :n], expected["classes"])
        assert np.mean(served["masks"][i, :n] != expected["masks"]) < 1e-3
        assert not served["masks"][i, n:].any()  # padded detections have empty masks


@pytest.mark.parametrize("params, message", [
    ({"rois_per_image": 64, "train_proposals": 32}, "rois_per_image 64 exceeds train_proposals 32"),
    ({"mask_size": 7}, "mask_size 7 must be even"),
    ({"rpn_positive_iou": 0.3, "rpn_negative_iou": 0.5}, "rpn_negative_iou 0.5 is above rpn_positive_iou"),
    ({"mask_heads": 2}, "mask_heads"),
    ({"anchor_scales": ((0.4,),)}, r"anchor_scales gives anchors for 1 level\(s\) but feature_strides has 2"),
])
def test_bad_configs_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        TwoStageDetectorConfig(**{**TINY, **params})


def test_bad_inputs_are_named():
    model = build_two_stage_detector(TwoStageDetectorConfig(**TINY))
    with pytest.raises(ValueError, match=r"images must be a batch \(B, 32, 32, 3\)"):
        model(np.zeros((32, 32, 3), "float32"))
    with pytest.raises(ValueError, match=r"must be a dict with \['boxes', 'classes', 'masks'\]"):
        model.test_step((np.zeros((1, 32, 32, 3), "float32"), {"boxes": np.zeros((1, 2, 4), "float32"),
                                                               "classes": np.zeros((1, 2), "int32")}))
    with pytest.raises(ValueError, match="is not a two-stage detector"):
        predict_two_stage_detections(keras.Sequential([keras.Input((4,))]), np.zeros((1, 4)))
    images = np.zeros((1, 32, 32, 3), "float32")
    outside = {"boxes": np.array([[[0.1, 0.1, 1.5, 0.5]]], "float32"), "classes": np.array([[0]], "int32"),
               "masks": np.zeros((1, 1, 32, 32), np.uint8)}
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside \[0, 1\]"):
        model.test_step((images, outside))
