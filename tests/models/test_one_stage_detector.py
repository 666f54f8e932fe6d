"""One-stage detector: anchors match the heads, hand-made targets, learning, NMS in the served graph, TFLite."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from tfdl.evaluation import detection_map
from tfdl.export import TFLiteConversionError, convert_tflite, export_saved_model
from tfdl.losses import AnchorFocalLoss, AnchorHuberLoss
from tfdl.models import (
    OneStageDetectorConfig,
    build_model,
    detection_inference_model,
    detector_anchors,
    encode_targets,
    kmeans_anchor_sizes,
    predict_detections,
)
from tfdl.models import detection_serving, detection_targets, one_stage_detector
from tfdl.pipelines.synthetic_shapes import make_shapes

SIZE = 32
# Strides 8 and 16 on 32x32 images: a 4x4 and a 2x2 level, one square anchor per cell.
TINY = dict(input_shape=(SIZE, SIZE, 3), num_classes=3, backbone="plain", backbone_filters=(8, 16, 24, 32),
            head_width=24, head_depth=1, anchor_scales=((0.3,), (0.6,)), aspect_ratios=(1.0,))
SHAPES = dict(image_size=SIZE, max_objects=2, size_range=(0.15, 0.3))


def ground_truth(data):
    return [{"boxes": b[c >= 0], "classes": c[c >= 0], "image_size": (SIZE, SIZE)}
            for b, c in zip(data["boxes"], data["classes"])]


def map_50(model, anchors, data):
    # A threshold low enough that the untrained model (scores near its 0.01 prior) detects something.
    found = predict_detections(model, anchors, data["image"], score_threshold=0.001)
    return detection_map(ground_truth(data), found, iou_thresholds=[0.5]).map_50


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    config = OneStageDetectorConfig(**TINY)
    anchors = detector_anchors(config)
    model = build_model("one_stage_detector", config)
    train, test = make_shapes(200, seed=1, **SHAPES), make_shapes(100, seed=2, **SHAPES)
    untrained = map_50(model, anchors, test)
    data = tf.data.Dataset.from_tensor_slices((train["image"], {"boxes": train["boxes"], "classes": train["classes"]}))
    data = data.map(encode_targets(anchors)).cache().shuffle(200, seed=0).batch(16)
    losses = {"box_deltas": AnchorHuberLoss(), "class_logits": AnchorFocalLoss()}
    model.compile(keras.optimizers.Adam(0.01), loss=losses, steps_per_execution=13, jit_compile=False)
    history = model.fit(data, epochs=20, shuffle=False, verbose=0).history  # the dataset shuffles itself
    return {"model": model, "anchors": anchors, "test": test, "untrained": untrained,
            "trained": map_50(model, anchors, test), "loss": history["loss"]}


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    served = detection_inference_model(trained["model"], trained["anchors"], score_threshold=0.05)
    return export_saved_model(served, tmp_path_factory.mktemp("detector") / "1")


# --- anchors and heads ---

@pytest.mark.parametrize("params, rows", [
    ({}, 8 * 8 * 6 + 4 * 4 * 6),
    ({"feature_strides": (16,), "anchor_scales": ((0.3, 0.5),)}, 4 * 4 * 6),
    ({"backbone_filters": (8, 8, 8), "feature_strides": (2, 4, 8), "anchor_scales": ((0.1,), (0.2,), (0.4,)),
      "aspect_ratios": (1.0,), "backbone": "plain", "pyramid": False}, 32 * 32 + 16 * 16 + 8 * 8),
    ({"anchor_sizes": (((0.1, 0.1), (0.2, 0.1)), ((0.4, 0.4), (0.3, 0.5)))}, 8 * 8 * 2 + 4 * 4 * 2),
])
def test_anchor_count_equals_head_outputs(params, rows):
    config = OneStageDetectorConfig(input_shape=(64, 64, 3), num_classes=4, head_width=8,
                                    **{"backbone_filters": (8, 8, 8, 8), **params})
    out = build_model("one_stage_detector", config)(np.zeros((2, 64, 64, 3), "float32"))
    assert detector_anchors(config).shape == (rows, 4)
    assert out["box_deltas"].shape == (2, rows, 4) and out["class_logits"].shape == (2, rows, 4)
    assert out["box_deltas"].dtype == out["class_logits"].dtype == "float32"


def test_head_rows_follow_the_anchor_order():
    config = OneStageDetectorConfig(input_shape=(64, 64, 3), num_classes=2, backbone_filters=(8, 8, 8, 8), head_width=8)
    model = build_model("one_stage_detector", config)
    # A head that ignores its input and outputs its bias: channel k*4 + j of a cell is row (cell, shape k).
    predict = model.get_layer("box_deltas_predict")
    predict.kernel.assign(np.zeros(predict.kernel.shape, "float32"))
    predict.bias.assign(np.arange(24, dtype="float32"))
    rows = np.asarray(model(np.zeros((1, 64, 64, 3), "float32"))["box_deltas"][0])
    np.testing.assert_array_equal(rows, np.tile(np.arange(24).reshape(6, 4), (80, 1)))
    # ... and detector_anchors lays out shape k of cell (i, j) of each level at that row.
    anchors = detector_anchors(config).numpy()
    scales, ratios = [0.2, 0.3, 0.4, 0.55], [0.5, 1.0, 2.0]
    for offset, (cells, level_scales) in zip((0, 8 * 8 * 6), ((8, scales[:2]), (4, scales[2:]))):
        for i, j, k in [(0, 0, 0), (2, 3, 4), (cells - 1, cells - 1, 5)]:
            ymin, xmin, ymax, xmax = anchors[offset + (i * cells + j) * 6 + k]
            scale, ratio = level_scales[k // 3], ratios[k % 3]
            np.testing.assert_allclose([(ymin + ymax) / 2, (xmin + xmax) / 2], [(i + 0.5) / cells, (j + 0.5) / cells])
            np.testing.assert_allclose([ymax - ymin, xmax - xmin], [scale / np.sqrt(ratio), scale * np.sqrt(ratio)],
                                       rtol=1e-6)


def test_kmeans_anchor_sizes_give_the_small_shapes_to_the_fine_level():
    rng = np.random.default_rng(0)
    shapes = [(0.06, 0.06), (0.5, 0.5), (0.1, 0.25), (0.3, 0.15)]  # areas 0.0036, 0.25, 0.025, 0.045
    hw = np.concatenate([rng.uniform(0.98, 1.02, (40, 2)) * shape for shape in shapes])
    boxes = np.concatenate([np.full_like(hw, 0.1), 0.1 + hw], axis=1)
    padded = np.concatenate([boxes, np.zeros((7, 4))])  # padding rows are dropped
    sizes = kmeans_anchor_sizes(padded, num_levels=2, per_level=2)
    np.testing.assert_allclose(sizes[0], [(0.06, 0.06), (0.1, 0.25)], atol=0.005)
    np.testing.assert_allclose(sizes[1], [(0.3, 0.15), (0.5, 0.5)], atol=0.005)
    config = OneStageDetectorConfig(input_shape=(64, 64, 3), num_classes=3, anchor_sizes=sizes)
    assert detector_anchors(config).shape == (8 * 8 * 2 + 4 * 4 * 2, 4)


# --- targets ---

HAND_CONFIG = OneStageDetectorConfig(input_shape=(32, 32, 3), num_classes=3, backbone_filters=(8, 8, 8, 8),
                                     anchor_scales=((0.25,), (0.5,)), aspect_ratios=(1.0,))
# Anchors: rows 0-15 the 4x4 cells of a quarter side, rows 16-19 the four quadrants.
HAND_BOXES = np.array([[0.25, 0.25, 0.5, 0.5],   # exactly cell (1, 1) = row 5
                       [0.5, 0.5, 1.0, 0.95],    # IoU 0.9 with quadrant (1, 1) = row 19
                       [0.0, 0.0, 0.25, 0.4],    # IoU 0.625 with cell (0, 0) = row 0; 0.4 with quadrant 0: ignored
                       [0.0, 0.0, 0.0, 0.0]], "float32")
HAND_CLASSES = np.array([2, 0, 1, -1], "int32")


def test_targets_for_a_hand_made_image_mark_the_right_anchors():
    anchors = detector_anchors(HAND_CONFIG)
    np.testing.assert_allclose(anchors[5], [0.25, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(anchors[19], [0.5, 0.5, 1.0, 1.0])
    image = np.zeros((32, 32, 3), "float32")
    _, targets = encode_targets(anchors)(image, {"boxes": HAND_BOXES, "classes": HAND_CLASSES})
    classes, deltas = targets["class_logits"].numpy(), targets["box_deltas"].numpy()
    expected = np.full(20, -1)
    expected[[0, 5, 19, 16]] = [1, 2, 0, -2]
    np.testing.assert_array_equal(classes, expected)
    assert classes.dtype == np.int32 and deltas.shape == (20, 5)
    np.testing.assert_array_equal(np.flatnonzero(deltas[:, 4]), [0, 5, 19])
    # Offsets (10 dy/h, 10 dx/w, 5 log h, 5 log w) by hand.
    np.testing.assert_allclose(deltas[0, :4], [0.0, 10 * 0.075 / 0.25, 0.0, 5 * np.log(1.6)], atol=1e-5)
    np.testing.assert_allclose(deltas[5, :4], 0.0, atol=1e-5)
    np.testing.assert_allclose(deltas[19, :4], [0.0, 10 * -0.025 / 0.5, 0.0, 5 * np.log(0.9)], atol=1e-5)
    assert not deltas[np.flatnonzero(classes < 0)].any()


def test_targets_map_over_a_dataset_and_a_batch_alike():
    anchors = detector_anchors(HAND_CONFIG)
    encode = encode_targets(anchors)
    image = np.zeros((32, 32, 3), "float32")
    _, one = encode(image, {"boxes": HAND_BOXES, "classes": HAND_CLASSES})
    _, batch = encode(image[None].repeat(2, 0), {"boxes": HAND_BOXES[None].repeat(2, 0),
                                                  "classes": HAND_CLASSES[None].repeat(2, 0)})
    data = tf.data.Dataset.from_tensors((image, {"boxes": HAND_BOXES, "classes": HAND_CLASSES})).map(encode)
    _, mapped = next(iter(data))
    for key in one:
        np.testing.assert_array_equal(mapped[key], one[key])
        np.testing.assert_allclose(batch[key][1], one[key], atol=1e-6)  # batched log/divide: float rounding


def test_boxes_outside_the_image_stop_a_dataset_map_with_their_name():
    bad = HAND_BOXES.copy()
    bad[0, 2] = 1.5
    data = tf.data.Dataset.from_tensors((np.zeros((32, 32, 3), "float32"), {"boxes": bad, "classes": HAND_CLASSES}))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"boxes of the targets hold coordinates outside \[0, 1\]"):
        next(iter(data.map(encode_targets(detector_anchors(HAND_CONFIG)))))


# --- learning, serving, TFLite ---

def test_tiny_detector_learns_synthetic_shapes(trained):
    assert trained["loss"][-1] < 0.5 * trained["loss"][0]
    # 20 epochs of 200 images: about 0.37 on held-out images (the benchmark's 12,000 images reach 0.96).
    assert trained["untrained"] < 0.02
    assert trained["trained"] > 0.25, trained["trained"]


def test_saved_model_serves_what_predict_detections_computes(trained, exported):
    images = trained["test"]["image"][:8]
    signature = tf.saved_model.load(str(exported)).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["image"]
    served = {k: v.numpy() for k, v in signature(image=tf.constant(images)).items()}
    assert served["boxes"].shape == (8, 100, 4) and served["num_detections"].dtype == np.int32
    found = predict_detections(trained["model"], trained["anchors"], images, score_threshold=0.05)
    assert sum(len(f["scores"]) for f in found) >= 8  # a real comparison, not of empty outputs
    for i, expected in enumerate(found):
        count = served["num_detections"][i]
        assert count == len(expected["scores"])
        np.testing.assert_allclose(served["boxes"][i, :count], expected["boxes"], atol=1e-5)
        np.testing.assert_allclose(served["scores"][i, :count], expected["scores"], atol=1e-5)
        np.testing.assert_array_equal(served["classes"][i, :count], expected["classes"])
        assert not served["scores"][i, count:].any()


def test_per_class_nms_gives_the_combined_detections(trained):
    images = trained["test"]["image"][:16]
    combined, per_class = (
        detection_inference_model(trained["model"], trained["anchors"], max_detections=20, score_threshold=0.01,
                                  nms=nms)(images)
        for nms in ("combined", "per_class")
    )
    assert combined["num_detections"].numpy().min() > 0
    for key in combined:
        np.testing.assert_allclose(per_class[key], combined[key], atol=1e-6, err_msg=key)


def test_models_round_trip_through_the_keras_format(trained, tmp_path):
    images = trained["test"]["image"][:4]
    raw, anchors = trained["model"], trained["anchors"]
    models = {"raw": raw, "combined": detection_inference_model(raw, anchors, score_threshold=0.01),
              "per_class": detection_inference_model(raw, anchors, max_detections=7, nms="per_class")}
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        reloaded = keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        before, after = model(images), reloaded(images)
        for key in before:
            np.testing.assert_allclose(after[key], before[key], atol=1e-6, err_msg=f"{name}.{key}")
        if name != "raw":
            assert reloaded.get_layer("detections").get_config() == model.get_layer("detections").get_config()
            assert before["num_detections"].numpy().min() > 0, name


def run_tflite(path, image):
    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return runner(image=image)


def test_raw_detector_converts_to_tflite_and_matches_keras(trained, tmp_path):
    saved = export_saved_model(trained["model"], tmp_path / "raw")
    flat = convert_tflite(saved, tmp_path / "raw.tflite")
    assert flat.tf_ops == []
    image = trained["test"]["image"][:1]
    out, expected = run_tflite(flat.path, image), trained["model"](image)
    for key in ("box_deltas", "class_logits"):
        np.testing.assert_allclose(out[key], expected[key], atol=1e-4, err_msg=key)


def test_combined_nms_needs_select_tf_ops_but_per_class_nms_converts_with_builtins(trained, exported, tmp_path):
    with pytest.raises(TFLiteConversionError, match="CombinedNonMaxSuppression"):
        convert_tflite(exported, tmp_path / "combined.tflite")
    served = detection_inference_model(trained["model"], trained["anchors"], max_detections=20, nms="per_class")
    flat = convert_tflite(export_saved_model(served, tmp_path / "per_class"), tmp_path / "per_class.tflite")
    assert flat.tf_ops == []
    for image in trained["test"]["image"][:3]:
        out = run_tflite(flat.path, image[None])
        (expected,) = predict_detections(trained["model"], trained["anchors"], image[None], max_detections=20)
        count = int(out["num_detections"][0])
        assert count == len(expected["scores"]) > 0
        np.testing.assert_allclose(out["boxes"][0, :count], expected["boxes"], atol=1e-4)
        np.testing.assert_allclose(out["scores"][0, :count], expected["scores"], atol=1e-4)
        np.testing.assert_array_equal(out["classes"][0, :count], expected["classes"])


# --- bad input ---

@pytest.mark.parametrize("params, message", [
    ({"backbone": "vgg"}, r"backbone\n.*'residual' or 'plain'"),
    ({"feature_strides": (8, 12)}, r"feature_strides \[8, 12\] must be increasing strides of backbone stages"),
    ({"feature_strides": (8,)}, "feature_strides ends at 8 but backbone_filters has 4 stages"),
    ({"input_shape": (60, 60, 3)}, "divisible by the largest feature stride 16"),
    ({"anchor_scales": ((0.2,),)}, r"anchor_scales gives anchors for 1 level\(s\) but feature_strides has 2"),
    ({"anchor_scales": ((0.2,), (0.4, 0.5))}, r"anchors per level are \[3, 6\]"),
    ({"aspect_ratios": (1.0, -2.0)}, "must be positive numbers"),
])
def test_bad_configs_name_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        OneStageDetectorConfig(**{"input_shape": (64, 64, 3), "num_classes": 3, **params})


def test_bad_inputs_say_what_is_wrong():
    config = OneStageDetectorConfig(**TINY)
    model, anchors = build_model("one_stage_detector", config), detector_anchors(config)
    image = np.zeros((SIZE, SIZE, 3), "float32")
    with pytest.raises(ValueError, match=r"images must be a batch \(N, 32, 32, 3\); got shape \(32, 32, 3\)"):
        predict_detections(model, anchors, image)
    with pytest.raises(ValueError, match=r"image must be \(height, width, channels\), or a batch of them"):
        encode_targets(anchors)(image[..., 0], {"boxes": HAND_BOXES, "classes": HAND_CLASSES})
    with pytest.raises(ValueError, match=r"targets\['boxes'\]\[1\] = \[0.5, 0.5, 1.2, 0.95\] has a coordinate outside"):
        encode_targets(anchors)(image, {"boxes": HAND_BOXES + [[0, 0, 0, 0], [0, 0, 0.2, 0], [0] * 4, [0] * 4],
                                        "classes": HAND_CLASSES})
    with pytest.raises(ValueError, match="targets must hold 'boxes' and 'classes'"):
        encode_targets(anchors)(image, {"bboxes": HAND_BOXES})
    with pytest.raises(ValueError, match=r"predicts for 20 anchors but anchors has shape \(480, 4\)"):
        detection_inference_model(model, detector_anchors(OneStageDetectorConfig(input_shape=(64, 64, 3),
                                                                                 num_classes=3)))
    with pytest.raises(ValueError, match="nms='fast'; use 'combined'"):
        detection_inference_model(model, anchors, nms="fast")
    with pytest.raises(ValueError, match=r"iou_threshold=1.5; use a number in \[0, 1\]"):
        detection_inference_model(model, anchors, iou_threshold=1.5)
    with pytest.raises(ValueError, match="is not a one-stage detector"):
        detection_inference_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), anchors)


@pytest.mark.parametrize("module", [one_stage_detector, detection_targets, detection_serving])
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result
