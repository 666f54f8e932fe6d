"""Box encoding and decoding against anchors: hand values, the exact round trip, and the clamp."""

import doctest
import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfdl.detection.box_coding as coding_module
from tfdl.detection import decode_boxes, encode_boxes

ANCHOR = [[0.0, 0.0, 0.5, 0.5]]  # center (0.25, 0.25), size 0.5 x 0.5


def test_encode_by_hand():
    # Box center (0.35, 0.5), size 0.5 x 1.0.
    out = encode_boxes([[0.1, 0.0, 0.6, 1.0]], ANCHOR).numpy()
    np.testing.assert_allclose(out, [[10 * 0.1 / 0.5, 10 * 0.25 / 0.5, 0.0, 5 * math.log(2.0)]], atol=1e-6)


def test_encode_with_unit_scale_factors_by_hand():
    out = encode_boxes([[0.0, 0.0, 0.25, 1.0]], ANCHOR, scale_factors=(1, 1, 1, 1)).numpy()
    np.testing.assert_allclose(out, [[-0.125 / 0.5, 0.25 / 0.5, math.log(0.5), math.log(2.0)]], atol=1e-6)


def test_zero_offsets_decode_to_the_anchors():
    anchors = np.array([[0.1, 0.2, 0.4, 0.9], [0.5, 0.5, 0.7, 0.6]], np.float32)
    np.testing.assert_allclose(decode_boxes(np.zeros((2, 4)), anchors).numpy(), anchors, atol=1e-7)


def _boxes(centers, sizes):
    return np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=-1)


unit = st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(
    centers=hnp.arrays(np.float64, (2, 6, 2), elements=unit),
    sizes=hnp.arrays(np.float64, (2, 6, 2), elements=st.floats(1e-3, 1.0)),
    anchor_centers=hnp.arrays(np.float64, (6, 2), elements=unit),
    anchor_sizes=hnp.arrays(np.float64, (6, 2), elements=st.floats(0.02, 1.0)),
    factors=st.tuples(*[st.floats(0.5, 20.0)] * 4),
)
def test_round_trip_is_exact(centers, sizes, anchor_centers, anchor_sizes, factors):
    boxes, anchors = _boxes(centers, sizes), _boxes(anchor_centers, anchor_sizes)
    decoded64 = decode_boxes(encode_boxes(boxes, anchors, factors), anchors, factors).numpy()
    np.testing.assert_allclose(decoded64, boxes, atol=1e-12)
    boxes32, anchors32 = boxes.astype(np.float32), anchors.astype(np.float32)
    decoded32 = decode_boxes(encode_boxes(boxes32, anchors32, factors), anchors32, factors)
    assert decoded32.dtype == tf.float32
    np.testing.assert_allclose(decoded32.numpy(), boxes32, atol=2e-6)


def test_encode_broadcasts_a_batch_against_anchors():
    rng = np.random.default_rng(0)
    anchors = _boxes(rng.uniform(size=(5, 2)), rng.uniform(0.1, 0.5, size=(5, 2)))
    boxes = _boxes(rng.uniform(size=(3, 5, 2)), rng.uniform(0.1, 0.5, size=(3, 5, 2)))
    batched = encode_boxes(boxes, anchors).numpy()
    assert batched.shape == (3, 5, 4)
    for k in range(3):
        np.testing.assert_allclose(batched[k], encode_boxes(boxes[k], anchors).numpy(), atol=1e-12)


def test_zero_size_box_encodes_finite():
    out = encode_boxes([[0.0, 0.0, 0.0, 0.0]], ANCHOR).numpy()
    assert np.isfinite(out).all()


def test_decode_clamps_huge_log_scales():
    out = decode_boxes([[0.0, 0.0, 5 * 100.0, 5 * 100.0]], ANCHOR).numpy()
    np.testing.assert_allclose(out[0, 2] - out[0, 0], 0.5 * 1000 / 16, rtol=1e-5)
    out = decode_boxes([[0.0, 0.0, 5.0, 5.0]], ANCHOR, max_log_scale=0.5).numpy()
    np.testing.assert_allclose(out[0, 3] - out[0, 1], 0.5 * math.exp(0.5), rtol=1e-6)


def test_traces_under_xla():
    anchors = tf.constant(ANCHOR * 3)
    fn = tf.function(lambda b: decode_boxes(encode_boxes(b, anchors), anchors), jit_compile=True)
    boxes = tf.constant([[[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.9, 0.6]]])
    np.testing.assert_allclose(fn(boxes).numpy(), boxes.numpy(), atol=1e-6)


@pytest.mark.parametrize("factors", [(10, 10, 5), (10, 10, 5, 0), (10, 10, 5, -1), "abcd", None])
def test_bad_scale_factors_raise(factors):
    with pytest.raises(ValueError, match=r"scale_factors=.*: use four positive numbers"):
        encode_boxes([[0.1, 0.1, 0.2, 0.2]], ANCHOR, factors)
    with pytest.raises(ValueError, match=r"scale_factors=.*: use four positive numbers"):
        decode_boxes([[0.0, 0.0, 0.0, 0.0]], ANCHOR, factors)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"anchors must have 4 coordinates"):
        encode_boxes([[0.1, 0.1, 0.2, 0.2]], [[0.0, 0.0, 0.5]])
    with pytest.raises(ValueError, match=r"offsets must have 4 coordinates"):
        decode_boxes([[0.0, 0.0]], ANCHOR)


def test_docstring_examples():
    result = doctest.testmod(coding_module)
    assert result.attempted > 0 and result.failed == 0, result
