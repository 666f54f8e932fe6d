"""Pairwise IoU against hand-computed values and a per-pair numpy loop."""

import doctest
import importlib

import numpy as np
import pytest
import tensorflow as tf

from tfdl.detection import iou

UNIT = [0.0, 0.0, 1.0, 1.0]
LEFT = [0.0, 0.0, 0.5, 0.5]


@pytest.mark.parametrize(
    "a, b, expected",
    [
        pytest.param(LEFT, LEFT, 1.0, id="identical"),
        pytest.param(LEFT, [0.6, 0.6, 1.0, 1.0], 0.0, id="disjoint"),
        pytest.param(LEFT, [0.0, 0.5, 0.5, 1.0], 0.0, id="touching-edge"),
        pytest.param([0.25, 0.25, 0.5, 0.5], UNIT, 0.0625, id="nested"),
        pytest.param(LEFT, [0.0, 0.25, 0.5, 0.75], 0.125 / 0.375, id="partial"),
        pytest.param(LEFT, [0.25, 0.25, 0.75, 0.75], 0.0625 / 0.4375, id="corner-overlap"),
        pytest.param([0.3, 0.3, 0.3, 0.3], [0.3, 0.3, 0.3, 0.3], 0.0, id="zero-area-with-itself"),
        pytest.param([0.2, 0.2, 0.2, 0.8], UNIT, 0.0, id="zero-area-line-inside"),
        pytest.param([0.5, 0.5, 0.2, 0.2], UNIT, 0.0, id="inverted"),
    ],
)
def test_hand_computed(a, b, expected):
    out = iou([a], [b]).numpy()
    assert out.shape == (1, 1)
    assert abs(out[0, 0] - expected) < 1e-6
    assert np.isfinite(out).all()


def _reference(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            inter = max(0.0, min(p[2], q[2]) - max(p[0], q[0])) * max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union
    return out


def _random_boxes(rng, *shape):
    y = np.sort(rng.uniform(size=(*shape, 2)), axis=-1)
    x = np.sort(rng.uniform(size=(*shape, 2)), axis=-1)
    return np.stack([y[..., 0], x[..., 0], y[..., 1], x[..., 1]], axis=-1)


def test_matrix_against_numpy_loop_and_symmetric():
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    out = iou(a, b).numpy()
    assert out.shape == (7, 5)
    np.testing.assert_allclose(out, _reference(a, b), atol=1e-12)
    np.testing.assert_allclose(iou(b, a).numpy(), out.T, atol=1e-12)


def test_batched_equals_each_image():
    rng = np.random.default_rng(2)
    a, b = _random_boxes(rng, 3, 4), _random_boxes(rng, 3, 6)
    out = iou(a.astype(np.float32), b.astype(np.float32))
    assert out.shape == (3, 4, 6) and out.dtype == tf.float32
    for k in range(3):
        np.testing.assert_allclose(out[k].numpy(), _reference(a[k], b[k]), atol=1e-6)


def test_traces_with_unknown_sizes_under_xla():
    fn = tf.function(
        iou,
        input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None, 4], tf.float32)],
        jit_compile=True,
    )
    rng = np.random.default_rng(3)
    a, b = _random_boxes(rng, 4).astype(np.float32), _random_boxes(rng, 2).astype(np.float32)
    np.testing.assert_allclose(fn(a, b).numpy(), _reference(a, b), atol=1e-6)


def test_empty_sets_give_empty_matrix():
    assert iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.zeros(4), np.zeros((2, 4)), r"iou takes boxes_a \(N, 4\).*got shapes \(4,\) and \(2, 4\)"),
        (np.zeros((2, 4)), np.zeros((1, 2, 4)), r"got shapes \(2, 4\) and \(1, 2, 4\)"),
        (np.zeros((2, 3, 4)), np.zeros((3, 3, 4)), r"different batch sizes, 2 and 3"),
        (np.zeros((2, 3)), np.zeros((2, 4)), r"boxes_a must have 4 coordinates"),
    ],
)
def test_bad_shapes_raise(a, b, message):
    with pytest.raises(ValueError, match=message):
        iou(a, b)


def test_docstring_examples():
    # The package re-exports the function `iou` over the module's name: fetch the module itself.
    result = doctest.testmod(importlib.import_module("tfdl.detection.iou"))
    assert result.attempted > 0 and result.failed == 0, result
