"""Box format conversions, box_area and validate_boxes against hand-computed values."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

import tfdl.detection.boxes as boxes_module
from tfdl.detection import box_area, center_to_corners, corners_to_center, validate_boxes


def test_corners_to_center_by_hand():
    out = corners_to_center([[0.1, 0.2, 0.5, 0.8], [0.0, 0.0, 1.0, 1.0]]).numpy()
    np.testing.assert_allclose(out, [[0.3, 0.5, 0.4, 0.6], [0.5, 0.5, 1.0, 1.0]], atol=1e-7)


def test_center_to_corners_by_hand():
    out = center_to_corners([[0.3, 0.5, 0.4, 0.6], [0.5, 0.5, 0.0, 0.0]]).numpy()
    np.testing.assert_allclose(out, [[0.1, 0.2, 0.5, 0.8], [0.5, 0.5, 0.5, 0.5]], atol=1e-7)


def test_conversions_round_trip_on_any_leading_shape():
    rng = np.random.default_rng(0)
    corners = np.sort(rng.uniform(size=(2, 5, 2, 2)), axis=-2).transpose(0, 1, 3, 2).reshape(2, 5, 4)
    corners = corners[..., [0, 2, 1, 3]]  # (ymin, ymax, xmin, xmax) -> (ymin, xmin, ymax, xmax)
    center = corners_to_center(corners)
    assert center.shape == (2, 5, 4)
    np.testing.assert_allclose(center_to_corners(center).numpy(), corners, atol=1e-12)
    np.testing.assert_allclose(corners_to_center(center_to_corners(center)).numpy(), center.numpy(), atol=1e-12)


def test_dtypes_float64_kept_ints_made_float32():
    assert corners_to_center(np.zeros((1, 4), np.float64)).dtype == tf.float64
    assert center_to_corners(np.zeros((1, 4), np.int32)).dtype == tf.float32


def test_box_area_by_hand_and_inverted_is_zero():
    out = box_area([[[0.0, 0.0, 0.5, 0.5], [0.1, 0.2, 0.3, 0.7]], [[0.5, 0.5, 0.5, 0.9], [0.6, 0.6, 0.4, 0.9]]])
    np.testing.assert_allclose(out.numpy(), [[0.25, 0.1], [0.0, 0.0]], atol=1e-7)


def test_conversions_trace_under_xla():
    convert = tf.function(lambda b: center_to_corners(corners_to_center(b)), jit_compile=True)
    boxes = tf.constant([[[0.1, 0.2, 0.3, 0.4]]])
    np.testing.assert_allclose(convert(boxes).numpy(), boxes.numpy(), atol=1e-7)


@pytest.mark.parametrize("fn", [corners_to_center, center_to_corners, box_area])
def test_wrong_last_axis_raises(fn):
    with pytest.raises(ValueError, match=r"boxes must have 4 coordinates on its last axis.*\(2, 3\)"):
        fn(np.zeros((2, 3)))


def test_validate_accepts_normalized_boxes_and_zero_padding():
    validate_boxes([[0.0, 0.0, 1.0, 1.0], [0.2, 0.3, 0.2, 0.3], [0.0, 0.0, 0.0, 0.0]])
    validate_boxes(np.zeros((2, 0, 4)))


def test_validate_names_box_outside_unit_square():
    with pytest.raises(ValueError, match=r"boxes\[1\] = \[0\.2, 0\.0, 1\.5, 0\.4\] has a coordinate outside \[0, 1\].*divide pixel"):
        validate_boxes([[0.1, 0.1, 0.5, 0.5], [0.2, 0.0, 1.5, 0.4]])


def test_validate_names_negative_coordinate_and_custom_name():
    with pytest.raises(ValueError, match=r"gt_boxes\[0\] = \[-0\.1, 0\.0, 0\.5, 0\.4\] has a coordinate outside"):
        validate_boxes([[-0.1, 0.0, 0.5, 0.4]], name="gt_boxes")


def test_validate_names_inverted_box():
    with pytest.raises(ValueError, match=r"boxes\[0\] = \[0\.5, 0\.1, 0\.2, 0\.4\] has ymax < ymin or xmax < xmin"):
        validate_boxes([[0.5, 0.1, 0.2, 0.4]])
    with pytest.raises(ValueError, match=r"boxes\[0\] .* has ymax < ymin or xmax < xmin"):
        validate_boxes([[0.1, 0.5, 0.2, 0.4]])


def test_validate_reports_the_first_bad_box_whatever_the_fault():
    bad = [[0.0, 0.0, 0.5, 0.5], [0.6, 0.0, 0.5, 0.5], [0.0, 0.0, 2.0, 0.5]]
    with pytest.raises(ValueError, match=r"boxes\[1\] .* ymax < ymin"):
        validate_boxes(bad)


def test_validate_batched_index_and_not_finite():
    batch = np.zeros((2, 3, 4))
    batch[1, 2] = [0.1, np.nan, 0.2, 0.3]
    with pytest.raises(ValueError, match=r"boxes\[1, 2\] = \[0\.1, nan, 0\.2, 0\.3\] has a coordinate that is not finite"):
        validate_boxes(batch)


def test_validate_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\); got shape \(3,\)"):
        validate_boxes([0.1, 0.2, 0.3])


def test_docstring_examples():
    result = doctest.testmod(boxes_module)
    assert result.attempted > 0 and result.failed == 0, result
