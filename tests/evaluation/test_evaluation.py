import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from tfdl.evaluation import classification_metrics, plot_confusion_matrix, plot_learning_curves


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, size=200))
    y_pred[y_pred == 3] = 2  # class 3 is never predicted: precision 0, not NaN
    m = classification_metrics(y_true, y_pred, ["a", "b", "c", "d"])
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    np.testing.assert_allclose(m.precision, p)
    np.testing.assert_allclose(m.recall, r)
    np.testing.assert_allclose(m.f1, f)
    np.testing.assert_array_equal(m.support, s)
    np.testing.assert_array_equal(m.confusion, confusion_matrix(y_true, y_pred, labels=range(4)))
    assert m.accuracy == pytest.approx(np.mean(y_true == y_pred))
    assert m.to_dict()["per_class"]["d"]["precision"] == 0.0


def test_labels_outside_the_classes_are_an_error():
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 5], [0, 1], ["a", "b"])


def test_plots_are_written_as_png(tmp_path):
    curves = plot_learning_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}, tmp_path / "c.png")
    matrix = plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["x", "y"], tmp_path / "m.png")
    for path in (curves, matrix):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
