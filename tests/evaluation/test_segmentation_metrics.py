import json

import keras
import numpy as np
import pytest

from tfdl.evaluation.segmentation import segmentation_metrics


def test_metrics_by_hand_on_four_pixels():
    # true 0 0 / 1 2, predicted 0 1 / 1 1, class 3 in neither.
    y_true = np.array([[[0, 0], [1, 2]]])
    y_pred = np.array([[[0, 1], [1, 1]]])
    m = segmentation_metrics(y_true, y_pred, num_classes=4, class_names=["bg", "circle", "square", "triangle"])
    np.testing.assert_array_equal(m.confusion, [[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    # IoU = TP / (row + column - TP): 1/(2+1-1), 1/(1+3-1), 0/(1+0-0), 0/0.
    np.testing.assert_allclose(m.iou[:3], [0.5, 1 / 3, 0.0])
    assert np.isnan(m.iou[3])
    assert m.mean_iou == pytest.approx((0.5 + 1 / 3 + 0.0) / 3)
    assert m.pixel_accuracy == pytest.approx(2 / 4)
    figures = json.loads(json.dumps(m.to_dict()))
    assert figures["per_class"]["triangle"] == {"iou": None, "pixels": 0}
    assert figures["per_class"]["bg"] == {"iou": 0.5, "pixels": 2}


def test_mean_iou_equals_keras_mean_iou_with_an_absent_class():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=(3, 16, 16))
    y_pred = np.where(rng.random(y_true.shape) < 0.6, y_true, rng.integers(0, 4, size=y_true.shape))
    # Class 4 of 5 appears nowhere: Keras leaves it out of the mean, and so must tfdl.
    m = segmentation_metrics(y_true, y_pred, num_classes=5)
    keras_metric = keras.metrics.MeanIoU(num_classes=5)
    keras_metric.update_state(y_true, y_pred)
    assert m.mean_iou == pytest.approx(float(keras_metric.result()), abs=1e-6)
    assert m.pixel_accuracy == pytest.approx(np.mean(y_true == y_pred))
    for c in range(4):
        t, p = y_true == c, y_pred == c
        assert m.iou[c] == pytest.approx((t & p).sum() / (t | p).sum())
    assert np.isnan(m.iou[4])


def test_a_class_only_predicted_counts_in_the_mean():
    # Keras counts a class with an empty truth but a non-empty prediction: IoU 0.
    m = segmentation_metrics(np.zeros((1, 2, 2), int), np.array([[[0, 0], [0, 1]]]), num_classes=3)
    np.testing.assert_allclose(m.iou[:2], [0.75, 0.0])
    assert m.mean_iou == pytest.approx(0.375)


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, message",
    [
        (np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)), {}, "argmax"),
        (np.zeros((2, 2), int), np.zeros((2, 2), int), {}, r"\[N, H, W\]"),
        (np.zeros((1, 2, 2), int), np.zeros((1, 2, 3), int), {}, "must match"),
        (np.zeros((1, 2, 2), int), np.full((1, 2, 2), 3), {}, "outside"),
        (np.zeros((1, 2, 2), int), np.full((1, 2, 2), -1), {}, "outside"),
        (np.zeros((0, 2, 2), int), np.zeros((0, 2, 2), int), {}, "empty"),
        (np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), {}, "integer"),
        (np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int), {"class_names": ["a"]}, "class_names"),
    ],
)
def test_bad_input_is_named(y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        segmentation_metrics(y_true, y_pred, num_classes=3, **kwargs)
