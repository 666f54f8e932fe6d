"""Anchor matching: a hand-built case, force matches, padding, batches, and a plain numpy matcher."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

import tfdl.detection.matching as matching_module
from tfdl.detection import IGNORE, NEGATIVE, POSITIVE, iou, match_anchors

ANCHORS = np.array(
    [
        [0.0, 0.0, 0.5, 0.5],  # a0: IoU 0.8 with g0 -> positive
        [0.0, 0.5, 0.5, 1.0],  # a1: equal to g1 -> positive
        [0.5, 0.0, 1.0, 0.5],  # a2: touches nothing -> negative
        [0.5, 0.5, 1.0, 1.0],  # a3: IoU 0.04 with the small g2, its best anchor -> forced positive
        [0.25, 0.25, 0.75, 0.75],  # a4: best IoU 1/7 (with g1) -> negative
        [0.0, 0.5, 0.5, 0.72],  # a5: IoU 0.44 with g1 -> ignore
    ],
    np.float32,
)
GT_BOXES = np.array(
    [
        [0.0, 0.0, 0.5, 0.4],  # g0, class 2
        [0.0, 0.5, 0.5, 1.0],  # g1, class 0
        [0.8, 0.8, 0.9, 0.9],  # g2, class 1
        [0.0, 0.0, 0.5, 0.5],  # padding that would be a0's perfect match if it counted
    ],
    np.float32,
)
GT_CLASSES = np.array([2, 0, 1, -1])


def _encode(box, anchor, factors=(10.0, 10.0, 5.0, 5.0)):
    """Box coding written out from its formula, independent of encode_boxes."""
    h, w, ah, aw = box[2] - box[0], box[3] - box[1], anchor[2] - anchor[0], anchor[3] - anchor[1]
    cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    acy, acx = (anchor[0] + anchor[2]) / 2, (anchor[1] + anchor[3]) / 2
    raw = [(cy - acy) / ah, (cx - acx) / aw, np.log(h / ah), np.log(w / aw)]
    return np.array(raw) * np.array(factors)


def test_hand_built_case():
    out = {k: v.numpy() for k, v in match_anchors(ANCHORS, GT_BOXES, GT_CLASSES).items()}
    assert out["labels"].tolist() == [POSITIVE, POSITIVE, NEGATIVE, POSITIVE, NEGATIVE, IGNORE]
    assert out["matched_gt"].tolist() == [0, 1, -1, 2, -1, -1]
    assert out["class_targets"].tolist() == [2, 0, -1, 1, -1, -1]
    np.testing.assert_allclose(out["matched_iou"], [0.8, 1.0, 0.0, 0.04, 1 / 7, 0.44], atol=1e-6)
    expected_targets = np.zeros((6, 4))
    for a, g in ((0, 0), (1, 1), (3, 2)):
        expected_targets[a] = _encode(GT_BOXES[g], ANCHORS[a])
    np.testing.assert_allclose(out["box_targets"], expected_targets, atol=1e-5)
    assert out["labels"].dtype == np.int32 and out["matched_gt"].dtype == np.int32


def test_iou_at_positive_threshold_is_positive_and_thresholds_move_labels():
    gt = [[0.0, 0.0, 0.5, 0.25]]  # IoU exactly 0.5 with a0
    assert match_anchors(ANCHORS[:1], gt, [0])["labels"].numpy().tolist() == [POSITIVE]
    # a5 (IoU 0.44 with g1) is negative once negative_iou passes it, positive once positive_iou does.
    labels = match_anchors(ANCHORS, GT_BOXES, GT_CLASSES, positive_iou=0.6, negative_iou=0.45)["labels"]
    assert labels.numpy()[5] == NEGATIVE
    labels = match_anchors(ANCHORS, GT_BOXES, GT_CLASSES, positive_iou=0.4, negative_iou=0.3)["labels"]
    assert labels.numpy()[5] == POSITIVE


def test_boxes_sharing_a_best_anchor_give_it_to_the_higher_iou():
    anchors = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]
    gt = [[0.0, 0.0, 0.1, 0.1], [0.0, 0.0, 0.2, 0.2]]  # IoU 0.04 and 0.16 with anchor 0
    out = match_anchors(anchors, gt, [5, 6])
    assert out["matched_gt"].numpy().tolist() == [1, -1]
    assert out["class_targets"].numpy().tolist() == [6, -1]


def test_force_match_overrides_an_anchors_own_best_box():
    anchors = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.45]]
    # g0 is best for anchor 0 (IoU 0.92) but claims anchor 1; the thin g1 overlaps anchor 0 only.
    gt = [[0.0, 0.0, 0.5, 0.46], [0.0, 0.45, 0.1, 0.5]]
    out = match_anchors(anchors, gt, [7, 8])
    assert out["labels"].numpy().tolist() == [POSITIVE, POSITIVE]
    assert out["matched_gt"].numpy().tolist() == [1, 0]
    assert out["class_targets"].numpy().tolist() == [8, 7]
    np.testing.assert_allclose(out["matched_iou"].numpy(), [0.005 / 0.25, 0.45 / 0.46], atol=1e-5)


def test_force_match_takes_every_anchor_tied_for_best():
    anchors = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5]]
    gt = [[0.0, 0.375, 0.25, 0.625]]  # straddles anchors 0 and 1 equally (exact in binary), misses anchor 2
    out = match_anchors(anchors, gt, [3])
    assert out["labels"].numpy().tolist() == [POSITIVE, POSITIVE, NEGATIVE]
    assert out["matched_gt"].numpy().tolist() == [0, 0, -1]


def test_box_overlapping_no_anchor_is_not_forced():
    anchors = [[0.0, 0.0, 0.5, 0.5]]
    out = match_anchors(anchors, [[0.6, 0.6, 0.9, 0.9]], [1])
    assert out["labels"].numpy().tolist() == [NEGATIVE]


def test_all_padding_gives_all_negative():
    out = match_anchors(ANCHORS, np.zeros((3, 4)), [-1, -1, -1])
    assert out["labels"].numpy().tolist() == [NEGATIVE] * 6
    assert out["matched_gt"].numpy().tolist() == [-1] * 6
    assert not out["box_targets"].numpy().any()
    assert not out["matched_iou"].numpy().any()


def test_image_without_boxes_gives_all_negative():
    out = match_anchors(ANCHORS, np.zeros((0, 4), np.float32), np.zeros((0,), np.int32))
    assert out["labels"].numpy().tolist() == [NEGATIVE] * 6
    assert out["box_targets"].shape == (6, 4)


def test_batch_equals_each_image_with_different_box_counts():
    boxes = np.stack([GT_BOXES, np.concatenate([GT_BOXES[2:3], np.zeros((3, 4), np.float32)])])
    classes = np.array([GT_CLASSES, [4, -1, -1, -1]])
    batched = match_anchors(ANCHORS, boxes, classes)
    assert batched["box_targets"].shape == (2, 6, 4)
    for k in range(2):
        single = match_anchors(ANCHORS, boxes[k], classes[k])
        for name in single:
            np.testing.assert_allclose(batched[name][k].numpy(), single[name].numpy(), atol=1e-6, err_msg=name)


def _reference(anchors, gt, classes, positive_iou, negative_iou):
    """Matching written as loops, independent of the tensor code."""
    overlaps = iou(anchors, gt).numpy().astype(np.float64)
    valid = [g for g in range(len(gt)) if classes[g] >= 0]
    labels, matched = [], []
    for a in range(len(anchors)):
        best = max(valid, key=lambda g: overlaps[a, g])
        value = overlaps[a, best]
        labels.append(POSITIVE if value >= positive_iou else NEGATIVE if value < negative_iou else IGNORE)
        matched.append(best)
    for a in range(len(anchors)):
        claimants = [g for g in valid if overlaps[a, g] > 0 and overlaps[a, g] == overlaps[:, g].max()]
        if claimants:
            matched[a] = max(claimants, key=lambda g: overlaps[a, g])
            labels[a] = POSITIVE
    return labels, [m if l == POSITIVE else -1 for m, l in zip(matched, labels)]


def test_random_scenes_against_numpy_matcher():
    rng = np.random.default_rng(4)
    from tfdl.detection import grid_anchors

    anchors = grid_anchors([4, 2], scales=[0.2, 0.4], aspect_ratios=[0.5, 1.0, 2.0]).numpy()
    for _ in range(10):
        centers, sizes = rng.uniform(0.1, 0.9, (6, 2)), rng.uniform(0.05, 0.5, (6, 2))
        gt = np.clip(np.concatenate([centers - sizes / 2, centers + sizes / 2], -1), 0, 1).astype(np.float32)
        classes = rng.integers(0, 3, 6)
        classes[rng.integers(1, 6) :] = -1
        out = match_anchors(anchors, gt, classes, positive_iou=0.5, negative_iou=0.3)
        labels, matched = _reference(anchors, gt, classes, 0.5, 0.3)
        assert out["labels"].numpy().tolist() == labels
        assert out["matched_gt"].numpy().tolist() == matched


def test_runs_in_tf_data_map_and_under_xla():
    dataset = tf.data.Dataset.from_tensors((GT_BOXES, GT_CLASSES)).map(
        lambda b, c: match_anchors(ANCHORS, b, c)["labels"]
    )
    eager = match_anchors(ANCHORS, GT_BOXES[None], GT_CLASSES[None])
    assert next(iter(dataset)).numpy().tolist() == eager["labels"][0].numpy().tolist()
    compiled = tf.function(lambda b, c: match_anchors(ANCHORS, b, c), jit_compile=True)
    out = compiled(tf.constant(GT_BOXES[None]), tf.constant(GT_CLASSES[None]))
    for name in eager:
        np.testing.assert_allclose(out[name].numpy(), eager[name].numpy(), atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((ANCHORS, GT_BOXES, GT_CLASSES), dict(positive_iou=0.3, negative_iou=0.4), r"0 <= negative_iou <= positive_iou <= 1.*negative_iou=0\.4"),
        ((ANCHORS, GT_BOXES, GT_CLASSES), dict(positive_iou=1.5), r"positive_iou=1\.5"),
        ((ANCHORS[None], GT_BOXES, GT_CLASSES), {}, r"anchors must be \(A, 4\); got shape \(1, 6, 4\)"),
        ((ANCHORS, GT_BOXES[0], GT_CLASSES), {}, r"gt_boxes must have 4 coordinates|gt_boxes must be \(G, 4\)"),
        ((ANCHORS, GT_BOXES, GT_CLASSES[:3]), {}, r"one class per box, shape \(4,\); got shape \(3,\)"),
        ((ANCHORS, GT_BOXES, GT_CLASSES.astype(np.float32)), {}, r"gt_classes must hold int class indices.*float32"),
    ],
)
def test_bad_input_raises(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        match_anchors(*args, **kwargs)


def test_docstring_examples():
    result = doctest.testmod(matching_module)
    assert result.attempted > 0 and result.failed == 0, result
