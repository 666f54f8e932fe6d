"""postprocess_detections against a plain numpy greedy NMS, by hand, and inside a saved-and-reloaded SavedModel."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

import tfdl.detection.nms as nms_module
from tfdl.detection import postprocess_detections


def _decode(deltas, anchors):
    """Box decoding written out from its formula, (10, 10, 5, 5) scale factors."""
    ah, aw = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    acy, acx = anchors[:, 0] + ah / 2, anchors[:, 1] + aw / 2
    cy, cx = deltas[..., 0] / 10 * ah + acy, deltas[..., 1] / 10 * aw + acx
    h, w = np.exp(deltas[..., 2] / 5) * ah, np.exp(deltas[..., 3] / 5) * aw
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def _pair_iou(p, q):
    inter = max(0.0, min(p[2], q[2]) - max(p[0], q[0])) * max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)


def _greedy_nms(boxes, scores, max_total, score_threshold, iou_threshold, max_per_class):
    """Per-class greedy NMS on one image, classes merged by score: the textbook algorithm."""
    detections = []
    for c in range(scores.shape[1]):
        kept = []
        for i in sorted(np.flatnonzero(scores[:, c] > score_threshold), key=lambda i: -scores[i, c]):
            if len(kept) == max_per_class:
                break
            if all(_pair_iou(boxes[i], boxes[k]) <= iou_threshold for k in kept):
                kept.append(i)
        detections += [(scores[i, c], c, np.clip(boxes[i], 0, 1)) for i in kept]
    return sorted(detections, key=lambda d: -d[0])[:max_total]


def _random_inputs(seed, batch=3, num_anchors=60, num_classes=3):
    rng = np.random.default_rng(seed)
    centers, sizes = rng.uniform(0, 1, (num_anchors, 2)), rng.uniform(0.1, 0.4, (num_anchors, 2))
    anchors = np.concatenate([centers - sizes / 2, centers + sizes / 2], -1).astype(np.float32)
    deltas = rng.normal(0, 1, (batch, num_anchors, 4)).astype(np.float32)
    scores = rng.uniform(0, 1, (batch, num_anchors, num_classes)).astype(np.float32)
    return deltas, scores, anchors


@pytest.mark.parametrize(
    "seed, max_detections, score_threshold, iou_threshold, per_class",
    [(0, 20, 0.3, 0.5, None), (1, 50, 0.05, 0.3, 6), (2, 10, 0.8, 0.7, None)],
)
def test_against_numpy_greedy_nms(seed, max_detections, score_threshold, iou_threshold, per_class):
    deltas, scores, anchors = _random_inputs(seed)
    out = postprocess_detections(
        deltas, scores, anchors, max_detections, score_threshold, iou_threshold, max_detections_per_class=per_class
    )
    assert out["boxes"].shape == (3, max_detections, 4) and out["classes"].dtype == tf.int32
    boxes = _decode(deltas.astype(np.float64), anchors.astype(np.float64))
    for k in range(3):
        expected = _greedy_nms(boxes[k], scores[k], max_detections, score_threshold, iou_threshold, per_class or max_detections)
        n = len(expected)
        assert out["num_detections"][k].numpy() == n
        assert n > 1
        np.testing.assert_allclose(out["scores"][k, :n].numpy(), [d[0] for d in expected], atol=1e-7)
        assert out["classes"][k, :n].numpy().tolist() == [d[1] for d in expected]
        np.testing.assert_allclose(out["boxes"][k, :n].numpy(), [d[2] for d in expected], atol=1e-5)
        assert not out["scores"][k, n:].numpy().any() and not out["boxes"][k, n:].numpy().any()


def test_hand_case_suppresses_within_a_class_only():
    anchors = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.45], [0.5, 0.5, 1.0, 1.0]]  # IoU(0, 1) = 0.9
    scores = [[[0.9, 0.6], [0.8, 0.0], [0.0, 0.7]]]
    out = postprocess_detections(tf.zeros((1, 3, 4)), scores, anchors, max_detections=4, score_threshold=0.5)
    assert out["num_detections"].numpy().tolist() == [3]
    np.testing.assert_allclose(out["scores"].numpy(), [[0.9, 0.7, 0.6, 0.0]], atol=1e-7)
    assert out["classes"].numpy()[0, :3].tolist() == [0, 1, 1]
    np.testing.assert_allclose(out["boxes"].numpy()[0, :3], np.array(anchors)[[0, 2, 0]], atol=1e-6)


def test_saved_in_a_savedmodel_with_a_fixed_signature(tmp_path):
    deltas, scores, anchors = _random_inputs(3, batch=2, num_anchors=30, num_classes=4)

    class Detector(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec([None, 30, 4], tf.float32), tf.TensorSpec([None, 30, 4], tf.float32)]
        )
        def serve(self, box_deltas, class_scores):
            return postprocess_detections(box_deltas, class_scores, anchors, max_detections=10, score_threshold=0.2)

    tf.saved_model.save(Detector(), str(tmp_path / "detector"), signatures=None)
    reloaded = tf.saved_model.load(str(tmp_path / "detector"))
    expected = postprocess_detections(deltas, scores, anchors, max_detections=10, score_threshold=0.2)
    for batch in (2, 1):  # the unknown batch axis serves any batch size
        served = reloaded.serve(tf.constant(deltas[:batch]), tf.constant(scores[:batch]))
        assert set(served) == {"boxes", "scores", "classes", "num_detections"}
        for name in expected:
            np.testing.assert_allclose(served[name].numpy(), expected[name][:batch].numpy(), atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "deltas_shape, scores_shape, anchors_shape, message",
    [
        ((1, 5, 4), (1, 6, 2), (5, 4), r"the anchor counts differ .*'class_scores': 6.*order of grid_anchors"),
        ((1, 5, 4), (1, 5, 2), (6, 4), r"the anchor counts differ .*'anchors': 6"),
        ((5, 4), (5, 2), (5, 4), r"takes box_deltas \(B, A, 4\).*got shapes \(5, 4\)"),
        ((2, 5, 4), (3, 5, 2), (5, 4), r"different batch sizes \(2 and 3\)"),
        ((1, 5, 3), (1, 5, 2), (5, 4), r"box_deltas must have 4 coordinates"),
    ],
)
def test_bad_shapes_raise(deltas_shape, scores_shape, anchors_shape, message):
    with pytest.raises(ValueError, match=message):
        postprocess_detections(np.zeros(deltas_shape), np.zeros(scores_shape), np.zeros(anchors_shape))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_detections=0), r"max_detections=0; use a positive int"),
        (dict(max_detections_per_class=2.5), r"max_detections_per_class=2\.5; use a positive int"),
        (dict(score_threshold=-0.1), r"score_threshold=-0\.1; use a number in \[0, 1\]"),
        (dict(iou_threshold=1.5), r"iou_threshold=1\.5; use a number in \[0, 1\]"),
    ],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        postprocess_detections(np.zeros((1, 2, 4)), np.zeros((1, 2, 1)), np.zeros((2, 4)), **kwargs)


def test_docstring_examples():
    result = doctest.testmod(nms_module)
    assert result.attempted > 0 and result.failed == 0, result
