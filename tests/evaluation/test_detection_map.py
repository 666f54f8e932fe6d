import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tfdl.evaluation.coco_json import write_coco_detections, write_coco_ground_truth
from tfdl.evaluation.detection_map import detection_map

SIZE = (100, 100)


def truth(*boxes, classes=None, masks=None, size=SIZE):
    item = {"boxes": np.array(boxes, dtype=float).reshape(-1, 4), "image_size": size}
    item["classes"] = np.zeros(len(boxes), int) if classes is None else np.array(classes)
    if masks is not None:
        item["masks"] = np.array(masks)
    return item


def found(*scored_boxes, classes=None, masks=None):
    """Detections from (score, box) pairs."""
    item = {
        "boxes": np.array([box for _, box in scored_boxes], dtype=float).reshape(-1, 4),
        "scores": np.array([score for score, _ in scored_boxes], dtype=float),
    }
    item["classes"] = np.zeros(len(scored_boxes), int) if classes is None else np.array(classes)
    if masks is not None:
        item["masks"] = np.array(masks)
    return item


BOX = [0.1, 0.1, 0.5, 0.5]
ELSEWHERE = [0.6, 0.6, 0.9, 0.9]


def test_one_perfect_detection_scores_one():
    m = detection_map([truth(BOX)], [found((0.9, BOX))])
    assert m.map_50 == pytest.approx(1.0)
    assert m.map_50_95 == pytest.approx(1.0)


def test_false_positive_ranked_above_the_true_positive():
    # Ranked: FP, TP. Recall [0, 1], precision [0, 1/2]; the envelope is 1/2
    # at every one of the 101 recall points.
    m = detection_map([truth(BOX)], [found((0.9, ELSEWHERE), (0.8, BOX))])
    assert m.map_50 == pytest.approx(0.5)
    assert m.map_50_95 == pytest.approx(0.5)


def test_false_positive_between_two_true_positives():
    # Ranked: TP, FP, TP over 2 objects. Recall [.5, .5, 1], precision
    # [1, 1/2, 2/3], envelope [1, 2/3, 2/3]: recall points 0 .. 0.50 (51 of
    # them) read 1, points 0.51 .. 1.00 (50) read 2/3.
    other = [0.6, 0.1, 0.9, 0.4]
    m = detection_map([truth(BOX, other)], [found((0.9, BOX), (0.8, ELSEWHERE), (0.7, other))])
    assert m.map_50 == pytest.approx((51 * 1 + 50 * 2 / 3) / 101)


def test_a_missed_object_caps_recall_at_one_half():
    # Recall reaches only 0.5 at precision 1: 51 of the 101 points read 1.
    m = detection_map([truth(BOX, ELSEWHERE)], [found((0.9, BOX))])
    assert m.map_50 == pytest.approx(51 / 101)
    assert m.map_50_95 == pytest.approx(51 / 101)


def test_an_image_without_detections_counts_its_objects_as_missed():
    m = detection_map([truth(BOX), truth(BOX)], [found((0.9, BOX)), found()])
    assert m.map_50 == pytest.approx(51 / 101)


def test_iou_decides_at_which_thresholds_a_detection_matches():
    # Same height, 62% of the width: IoU 0.62 matches at 0.50, 0.55, 0.60 only.
    m = detection_map([truth([0.0, 0.0, 1.0, 1.0])], [found((0.9, [0.0, 0.0, 1.0, 0.62]))])
    np.testing.assert_allclose(m.average_precision[:, 0], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0], atol=1e-12)
    assert m.map_50 == pytest.approx(1.0)
    assert m.map_50_95 == pytest.approx(0.3)


def test_a_detection_takes_the_object_it_overlaps_most():
    # The first detection overlaps A with IoU 0.54 and B with 0.82; the second
    # is A itself and misses B (IoU 0.43). Matching the first to A would
    # leave the second unmatched (AP 51/101); COCO matches it to B.
    a, b = [0.0, 0.0, 1.0, 0.5], [0.0, 0.2, 1.0, 0.7]
    m = detection_map([truth(a, b)], [found((0.9, [0.0, 0.15, 1.0, 0.65]), (0.8, a))])
    assert m.ap_at(0.5)[0] == pytest.approx(1.0)


def test_only_the_best_hundred_detections_per_image_and_class_count():
    false_positives = [(0.9, ELSEWHERE)] * 100
    scored = [*false_positives, (0.1, BOX)]
    assert detection_map([truth(BOX)], [found(*scored)]).map_50 == pytest.approx(0.0)
    # With room for 101 the object is found at rank 101: precision 1/101 everywhere.
    assert detection_map([truth(BOX)], [found(*scored)], max_detections=101).map_50 == pytest.approx(1 / 101)


def test_a_class_without_ground_truth_is_left_out_of_the_mean():
    m = detection_map(
        [truth(BOX)],
        [found((0.9, BOX), (0.95, ELSEWHERE), classes=[0, 1])],
        class_names=["circle", "square", "triangle"],
    )
    assert m.map_50 == pytest.approx(1.0)
    assert np.isnan(m.average_precision[:, 1:]).all()
    figures = json.loads(json.dumps(m.to_dict()))
    assert figures["per_class"]["square"] == {"num_ground_truth": 0, "ap_50": None, "ap_50_95": None}
    assert figures["per_class"]["circle"]["ap_50"] == pytest.approx(1.0)
    assert figures["map_50_95"] == pytest.approx(1.0)


def test_classes_as_floats_from_combined_nms_are_accepted():
    m = detection_map([truth(BOX, classes=[2])], [found((0.9, BOX), classes=np.array([2.0], np.float32))])
    assert m.class_names == ("0", "1", "2")
    assert m.map_50 == pytest.approx(1.0)


def block_mask(rows, cols, size=(8, 8)):
    mask = np.zeros(size, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def test_mask_kind_scores_mask_iou_not_box_iou():
    # Identical boxes, but the detected mask covers half of the true one: IoU 0.5.
    gt_mask, half = block_mask((0, 4), (0, 4)), block_mask((0, 4), (0, 2))
    image = truth(BOX, masks=[gt_mask], size=(8, 8))
    detected = found((0.9, BOX), masks=[half])
    assert detection_map([image], [detected], kind="box").map_50_95 == pytest.approx(1.0)
    masks = detection_map([image], [detected], kind="mask")
    assert masks.kind == "mask"
    assert masks.map_50 == pytest.approx(1.0)
    assert masks.map_50_95 == pytest.approx(0.1)


def test_thresholds_other_than_coco_s():
    m = detection_map([truth(BOX)], [found((0.9, BOX))], iou_thresholds=[0.75])
    assert m.map_50_95 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="0.5 was not evaluated"):
        m.map_50
    assert "map_50" not in m.to_dict()


def ellipse_mask(box, size):
    """Pixels whose centre lies in the ellipse inscribed in a normalized box."""
    h, w = size
    y = (np.arange(h)[:, None] + 0.5) / h
    x = (np.arange(w)[None, :] + 0.5) / w
    cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ry, rx = max((box[2] - box[0]) / 2, 1e-6), max((box[3] - box[1]) / 2, 1e-6)
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def random_box(rng):
    top_left = rng.uniform(0.0, 0.7, size=2)
    extent = rng.uniform(0.1, 0.3, size=2)
    return np.concatenate([top_left, np.minimum(top_left + extent, 1.0)])


def synthetic_run(seed, num_images=14, num_classes=3):
    """Objects with jittered, duplicated, missed, misclassified and spurious detections."""
    rng = np.random.default_rng(seed)
    ground_truth, detections = [], []
    for _ in range(num_images):
        size = [(48, 64), (64, 64), (80, 56)][rng.integers(3)]
        boxes = [random_box(rng) for _ in range(rng.integers(0, 5))]
        classes = rng.integers(0, num_classes, size=len(boxes))
        if boxes and rng.random() < 0.5:
            # A neighbour of the same class overlapping an object, so that matching has to choose.
            boxes.append(np.clip(boxes[0] + rng.uniform(-0.06, 0.06, size=2).repeat(2)[[0, 2, 1, 3]], 0, 1))
            classes = np.append(classes, classes[0])
        ground_truth.append(
            {
                "boxes": np.array(boxes).reshape(-1, 4),
                "classes": classes,
                "image_size": size,
                "masks": np.array([ellipse_mask(b, size) for b in boxes]).reshape(-1, *size),
            }
        )
        found_boxes, found_classes = [], []
        for box, cls in zip(boxes, classes):
            for _ in range(int(rng.random() < 0.85) + int(rng.random() < 0.2)):
                jitter = rng.normal(0, 0.015, size=4)
                found_boxes.append(np.clip(box + jitter, 0, 1))
                found_classes.append(cls if rng.random() < 0.9 else rng.integers(0, num_classes + 1))
        for _ in range(rng.integers(0, 3)):
            found_boxes.append(random_box(rng))
            found_classes.append(rng.integers(0, num_classes + 1))
        # Jitter can swap a box's edges; put them back in [ymin, xmin, ymax, xmax] order.
        found_boxes = [np.concatenate([np.minimum(b[:2], b[2:]), np.maximum(b[:2], b[2:])]) for b in found_boxes]
        masks = [ellipse_mask(b, size) ^ (rng.random(size) < 0.002) for b in found_boxes]
        detections.append(
            {
                "boxes": np.array(found_boxes).reshape(-1, 4),
                "scores": rng.random(len(found_boxes)),
                "classes": np.array(found_classes, dtype=int),
                "masks": np.array(masks).reshape(-1, *size),
            }
        )
    return ground_truth, detections


def coco_eval(gt_path, dt_path, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        evaluation = COCOeval(coco_gt, coco_gt.loadRes(str(dt_path)), iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


@pytest.mark.parametrize("kind, iou_type", [("box", "bbox"), ("mask", "segm")])
@pytest.mark.parametrize("seed", [0, 1])
def test_map_equals_pycocotools_from_the_written_files(tmp_path, kind, iou_type, seed):
    class_names = ["circle", "square", "triangle", "star"]  # no star is ever true
    ground_truth, detections = synthetic_run(seed)
    gt_path = write_coco_ground_truth(tmp_path / "gt.json", ground_truth, class_names)
    dt_path = write_coco_detections(tmp_path / "dt.json", detections, [g["image_size"] for g in ground_truth])
    m = detection_map(ground_truth, detections, kind=kind, class_names=class_names)
    reference = coco_eval(gt_path, dt_path, iou_type)

    # stats[0] is AP@[.5:.95], stats[1] AP@.5, both area "all" and maxDets 100.
    assert 0.2 < m.map_50_95 < m.map_50 < 0.95
    assert m.map_50_95 == pytest.approx(reference.stats[0], abs=0.005)
    assert m.map_50 == pytest.approx(reference.stats[1], abs=0.005)
    # Same algorithm, same float operations: in practice the figures agree exactly.
    assert m.map_50_95 == pytest.approx(reference.stats[0], abs=1e-9)
    precision = reference.eval["precision"][:, :, :, 0, -1]  # [T, R, K] at area "all", maxDets 100
    for k in range(len(class_names)):
        if m.num_ground_truth[k]:
            np.testing.assert_allclose(m.average_precision[:, k], precision[:, :, k].mean(axis=1), atol=1e-9)
        else:
            assert np.all(precision[:, :, k] == -1) and np.isnan(m.average_precision[:, k]).all()


def test_box_and_mask_figures_differ_on_the_synthetic_run():
    ground_truth, detections = synthetic_run(0)
    boxes = detection_map(ground_truth, detections, kind="box")
    masks = detection_map(ground_truth, detections, kind="mask")
    assert boxes.map_50_95 != pytest.approx(masks.map_50_95, abs=1e-3)


@pytest.mark.parametrize(
    "ground_truth, detections, kwargs, message",
    [
        ([truth([0.1, 0.1, 1.2, 0.5])], [found()], {}, r"ground_truth\[0\]\['boxes'\].*outside \[0, 1\]"),
        ([truth(BOX)], [found((0.9, [-0.1, 0.1, 0.5, 0.5]))], {}, r"detections\[0\]\['boxes'\].*outside \[0, 1\]"),
        ([truth([0.5, 0.1, 0.1, 0.5])], [found()], {}, "ymax < ymin"),
        ([truth(BOX)], [found(), found()], {}, "detections has 2 images"),
        ([truth(BOX)], [dict(found((0.9, BOX)), scores=[0.9, 0.8])], {}, r"'scores'\] has 2 values but 'boxes' has 1"),
        ([dict(truth(BOX), classes=[0, 1])], [found()], {}, r"'classes'\] has 2 values"),
        ([truth(BOX)], [found()], {"kind": "polygon"}, "kind is 'polygon'"),
        ([truth(BOX)], [found()], {"kind": "mask"}, r"ground_truth\[0\] has no 'masks'"),
        (
            [truth(BOX, masks=np.zeros((1, 4, 4)), size=(8, 8))],
            [found()],
            {"kind": "mask"},
            r"\['masks'\] has shape \(1, 4, 4\); expected \[1, 8, 8\]",
        ),
        ([{"boxes": [BOX], "classes": [0]}], [found()], {}, "no 'image_size'"),
        ([truth(BOX, classes=[3])], [found()], {"class_names": ["a", "b"]}, "outside \\[0, 2\\)"),
        ([truth(BOX, classes=[0.5])], [found()], {}, "non-integer"),
        ([truth()], [found((0.9, BOX))], {}, "no objects"),
        ([], [], {}, "ground_truth is empty"),
        ([truth(BOX)], [found((np.nan, BOX))], {}, "finite"),
        ([truth(BOX)], [found()], {"iou_thresholds": [0.5, 1.5]}, "iou_thresholds"),
    ],
)
def test_bad_input_is_named(ground_truth, detections, kwargs, message):
    with pytest.raises(ValueError, match=message):
        detection_map(ground_truth, detections, **kwargs)
