"""Grid anchors by hand on tiny grids; k-means anchors recover planted clusters."""

import doctest

import numpy as np
import pytest

import tfdl.detection.anchors as anchors_module
from tfdl.detection import grid_anchors, grid_anchors_from_sizes, kmeans_anchors


def test_one_level_two_by_two_by_hand():
    out = grid_anchors([2], scales=[0.5]).numpy()
    expected = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5], [0.5, 0.5, 1.0, 1.0]]
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_count_centers_sizes_and_order_on_two_levels():
    scales, ratios = [0.1, 0.2], [0.5, 1.0, 2.0]
    out = grid_anchors([4, (2, 3)], scales=scales, aspect_ratios=ratios).numpy()
    assert out.shape == (4 * 4 * 6 + 2 * 3 * 6, 4)
    level2 = out[4 * 4 * 6 :].reshape(2, 3, 6, 4)  # (H, W, anchors per cell, 4)
    centers = (level2[..., :2] + level2[..., 2:]) / 2
    np.testing.assert_allclose(centers[1, 2, 0], [0.75, 5 / 6], atol=1e-6)
    np.testing.assert_allclose(centers[0, 0, 5], [0.25, 1 / 6], atol=1e-6)
    sizes = level2[0, 0, :, 2:] - level2[0, 0, :, :2]  # (h, w) per anchor of one cell
    expected = [(s / np.sqrt(r), s * np.sqrt(r)) for s in scales for r in ratios]
    np.testing.assert_allclose(sizes, expected, atol=1e-6)
    first = out[:6, :]  # level 1, cell (0, 0): center (1/8, 1/8)
    np.testing.assert_allclose((first[:, :2] + first[:, 2:]) / 2, np.full((6, 2), 0.125), atol=1e-6)


def test_per_level_scales():
    out = grid_anchors([2, 1], scales=[[0.1], [0.5]]).numpy()
    assert out.shape == (5, 4)
    np.testing.assert_allclose(out[0], [0.2, 0.2, 0.3, 0.3], atol=1e-6)
    np.testing.assert_allclose(out[4], [0.25, 0.25, 0.75, 0.75], atol=1e-6)


def test_clip_keeps_anchors_in_the_image():
    out = grid_anchors([1], scales=[1.5], clip=True).numpy()
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0, 1.0]])
    assert grid_anchors([1], scales=[1.5]).numpy().min() == pytest.approx(-0.25)


def test_from_sizes_matches_scales_and_ratios():
    ratios = np.array([0.5, 2.0])
    sizes = np.stack([0.3 / np.sqrt(ratios), 0.3 * np.sqrt(ratios)], axis=-1)
    np.testing.assert_allclose(
        grid_anchors_from_sizes([3, 2], sizes).numpy(),
        grid_anchors([3, 2], scales=[0.3], aspect_ratios=ratios).numpy(),
        atol=1e-7,
    )


def test_from_sizes_per_level_ragged():
    out = grid_anchors_from_sizes([1, 1], [[[0.2, 0.4], [0.4, 0.2]], [[0.8, 0.6]]]).numpy()
    expected = [[0.4, 0.3, 0.6, 0.7], [0.3, 0.4, 0.7, 0.6], [0.1, 0.2, 0.9, 0.8]]
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(feature_sizes=8, scales=[0.1]), r"feature_sizes=8: pass a non-empty list"),
        (dict(feature_sizes=[], scales=[0.1]), r"feature_sizes=\[\]: pass a non-empty list"),
        (dict(feature_sizes=[0], scales=[0.1]), r"feature_sizes holds 0"),
        (dict(feature_sizes=[(2, 3, 4)], scales=[0.1]), r"feature_sizes holds \(2, 3, 4\)"),
        (dict(feature_sizes=[2], scales=[-0.1]), r"scales must be a non-empty list of positive numbers"),
        (dict(feature_sizes=[2], scales=[0.1], aspect_ratios=[0.0]), r"aspect_ratios must be .* positive"),
        (dict(feature_sizes=[2, 1], scales=[[0.1], [0.2], [0.3]]), r"scales: give one set .* \(2 levels\)"),
    ],
)
def test_grid_bad_input_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        grid_anchors(**kwargs)


def test_from_sizes_bad_input_raises():
    with pytest.raises(ValueError, match=r"sizes_hw must hold positive \(height, width\) pairs"):
        grid_anchors_from_sizes([2], [[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match=r"sizes_hw must hold positive"):
        grid_anchors_from_sizes([2], [[0.1, 0.0]])


PLANTED = np.array([[0.05, 0.05], [0.3, 0.15], [0.2, 0.6]])  # (h, w), areas ascending


def _planted_boxes(seed):
    rng = np.random.default_rng(seed)
    noise = rng.lognormal(0.0, 0.05, size=(3, 100, 2))
    return (PLANTED[:, None, :] * noise).reshape(-1, 2)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kmeans_recovers_three_planted_clusters(seed):
    boxes = _planted_boxes(seed)
    centroids = kmeans_anchors(boxes, k=3, seed=seed)
    assert centroids.shape == (3, 2) and centroids.dtype == np.float32
    np.testing.assert_allclose(centroids, PLANTED, rtol=0.02)


def test_kmeans_one_cluster_is_the_mean_and_seed_is_reproducible():
    boxes = _planted_boxes(5)
    np.testing.assert_allclose(kmeans_anchors(boxes, k=1), [boxes.mean(axis=0)], rtol=1e-6)
    np.testing.assert_array_equal(kmeans_anchors(boxes, k=4, seed=7), kmeans_anchors(boxes, k=4, seed=7))


@pytest.mark.parametrize(
    "boxes, k, message",
    [
        (np.ones((4, 3)), 2, r"boxes_hw must be a non-empty array \(N, 2\).*\(4, 3\)"),
        (np.ones((0, 2)), 1, r"boxes_hw must be a non-empty array"),
        ([[0.1, 0.2], [0.0, 0.3]], 1, r"boxes_hw\[1\] = \[0\.0, 0\.3\]: heights and widths must be positive"),
        ([[0.1, 0.2], [0.1, 0.2], [0.3, 0.3]], 3, r"k=3: use an int from 1 to 2"),
        ([[0.1, 0.2]], 0, r"k=0: use an int from 1 to 1"),
        ([[0.1, 0.2]], 1.0, r"k=1\.0: use an int"),
    ],
)
def test_kmeans_bad_input_raises(boxes, k, message):
    with pytest.raises(ValueError, match=message):
        kmeans_anchors(boxes, k)


def test_docstring_examples():
    result = doctest.testmod(anchors_module)
    assert result.attempted > 0 and result.failed == 0, result
