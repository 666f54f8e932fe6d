"""RoI align against a numpy bilinear reference (Detectron2's aligned RoIAlign), and its level assignment."""

import numpy as np
import pytest
import tensorflow as tf

from tfdl.detection.roi_align import multilevel_roi_align, roi_align, roi_levels


def _bilinear(image: np.ndarray, y: float, x: float) -> np.ndarray:
    """Detectron2's rule: 0 beyond one pixel outside the map, the edge within it, bilinear inside."""
    height, width = image.shape[:2]
    if y < -1 or y > height or x < -1 or x > width:
        return np.zeros(image.shape[-1])
    y, x = min(max(y, 0.0), height - 1), min(max(x, 0.0), width - 1)
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    dy, dx = y - y0, x - x0
    return (image[y0, x0] * (1 - dy) * (1 - dx) + image[y0, x1] * (1 - dy) * dx
            + image[y1, x0] * dy * (1 - dx) + image[y1, x1] * dy * dx)


def _reference(features: np.ndarray, boxes: np.ndarray, out: int, ratio: int) -> np.ndarray:
    batch, height, width, channels = features.shape
    result = np.zeros((batch, boxes.shape[1], out, out, channels))
    for b in range(batch):
        for n, (y1, x1, y2, x2) in enumerate(boxes[b]):
            bin_h, bin_w = (y2 - y1) * height / out, (x2 - x1) * width / out
            for i in range(out):
                for j in range(out):
                    samples = [
                        _bilinear(features[b], y1 * height + i * bin_h + (a + 0.5) * bin_h / ratio - 0.5,
                                  x1 * width + j * bin_w + (c + 0.5) * bin_w / ratio - 0.5)
                        for a in range(ratio) for c in range(ratio)
                    ]
                    result[b, n, i, j] = np.mean(samples, axis=0)
    return result


def _random_boxes(rng, batch: int, count: int, low: float = -0.1, high: float = 1.1) -> np.ndarray:
    corners = np.sort(rng.uniform(low, high, size=(batch, count, 2, 2)), axis=2)  # sorted per axis
    return np.stack([corners[..., 0, 0], corners[..., 0, 1], corners[..., 1, 0], corners[..., 1, 1]],
                    axis=-1).astype("float32")


@pytest.mark.parametrize("out, ratio", [(3, 2), (2, 1), (4, 3), (1, 1)])
def test_roi_align_equals_the_numpy_bilinear_reference(out, ratio):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 6, 7, 3)).astype("float32")
    boxes = _random_boxes(rng, 2, 5)  # some cross the border: the edge and the zeros beyond are checked too
    np.testing.assert_allclose(roi_align(features, boxes, out, ratio).numpy(), _reference(features, boxes, out, ratio),
                               atol=1e-5)


def test_roi_align_by_hand_and_with_rectangular_output():
    features = tf.reshape(tf.range(16.0), (1, 4, 4, 1))
    # The whole map in 2x2 bins of 2x2 samples: each bin is the mean of its 2x2 pixel block.
    whole = roi_align(features, [[[0.0, 0.0, 1.0, 1.0]]], 2, 2).numpy()[0, 0, ..., 0]
    np.testing.assert_allclose(whole, [[2.5, 4.5], [10.5, 12.5]])
    assert roi_align(features, [[[0.0, 0.0, 1.0, 1.0]]] , (1, 2)).shape == (1, 1, 1, 2, 1)


def test_roi_levels_follow_the_fpn_rule():
    # 64x64 images, 16 px read at stride 4: 8 px -> 4 (clipped), 16 -> 4, 32 -> 8, 64 -> 16, 128 px -> 16 (clipped).
    sides = np.array([8, 16, 32, 64, 128]) / 64
    boxes = np.stack([np.zeros(5), np.zeros(5), sides, sides], axis=-1)
    assert roi_levels(boxes, (64, 64), (4, 8, 16), 16, 4).numpy().tolist() == [0, 0, 1, 2, 2]


def test_multilevel_roi_align_reads_each_box_on_its_level():
    rng = np.random.default_rng(1)
    levels = [rng.normal(size=(1, 16, 16, 2)).astype("float32"), rng.normal(size=(1, 8, 8, 2)).astype("float32")]
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 0.9, 0.8]]], "float32")  # 13 px and 54 px sides
    got = multilevel_roi_align(levels, boxes, (4, 8), (64, 64), 2, canonical_size=16, canonical_stride=4).numpy()
    np.testing.assert_allclose(got[0, 0], roi_align(levels[0], boxes[:, :1], 2).numpy()[0, 0], atol=1e-6)
    np.testing.assert_allclose(got[0, 1], roi_align(levels[1], boxes[:, 1:], 2).numpy()[0, 0], atol=1e-6)


def test_roi_align_traces_with_unknown_batch_and_box_count():
    aligned = tf.function(lambda f, b: roi_align(f, b, 2)).get_concrete_function(
        tf.TensorSpec((None, 8, 8, 4)), tf.TensorSpec((None, None, 4)))
    assert aligned(tf.zeros((3, 8, 8, 4)), tf.zeros((3, 5, 4))).shape == (3, 5, 2, 2, 4)


@pytest.mark.parametrize("call, message", [
    (lambda: roi_align(np.zeros((8, 8, 3)), np.zeros((1, 1, 4)), 2), r"features must be a batch of maps \(B, H, W, C\)"),
    (lambda: roi_align(np.zeros((1, 8, 8, 3)), np.zeros((1, 4)), 2), r"boxes must be \(B, N, 4\)"),
    (lambda: roi_align(np.zeros((2, 8, 8, 3)), np.zeros((3, 1, 4)), 2), "different batch sizes"),
    (lambda: roi_align(np.zeros((1, 8, 8, 3)), np.zeros((1, 1, 4)), 0), "output_size=0"),
    (lambda: roi_align(np.zeros((1, 8, 8, 3)), np.zeros((1, 1, 4)), 2, sampling_ratio=1.5), "sampling_ratio=1.5"),
    (lambda: roi_levels(np.zeros((1, 4)), (64, 64), (8, 4), 16, 4), "increasing powers of two"),
    (lambda: multilevel_roi_align([np.zeros((1, 8, 8, 3))], np.zeros((1, 1, 4)), (4, 8), (32, 32), 2),
     "1 feature levels but 2 strides"),
])
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
