"""GAN diagnostics: the class histogram against hand counts, the judge classifier, the grids; the export's unit inversion."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tfdl.evaluation.gan_diagnostics import (
    class_histogram,
    plot_class_histogram,
    sample_grid,
    train_digits_classifier,
)
from tfdl.export.generator import normalization_inverse

PNG = b"\x89PNG\r\n\x1a\n"


def test_histogram_of_a_collapsed_generator_shows_the_missing_classes():
    predicted = np.array([3, 3, 3, 3, 3, 3, 1, 1])
    h = class_histogram(predicted, 4)
    assert h.counts == [0, 2, 0, 6]
    assert h.share == [0.0, 0.25, 0.0, 0.75]
    assert h.classes_covered == 2 and h.largest_share == 0.75
    assert h.asked_for_share is None and h.per_class_asked_for is None


def test_histogram_of_a_conditional_generator_scores_the_class_asked_for():
    asked = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 2, 2, 2])
    h = class_histogram(predicted, 3, asked_for=asked)
    assert h.asked_for_share == pytest.approx(5 / 6)
    assert h.per_class_asked_for == [1.0, 0.5, 1.0]
    assert h.to_dict()["counts"] == [2, 1, 3]


@pytest.mark.parametrize("predicted, kwargs, message", [
    (np.array([], int), {}, "at least one"),
    (np.array([0, 4]), {}, r"in \[0, 3\]"),
    (np.array([0, 1]), {"asked_for": np.array([0])}, "1 labels for 2"),
])
def test_histogram_refuses_bad_input(predicted, kwargs, message):
    with pytest.raises(ValueError, match=message):
        class_histogram(predicted, 4, **kwargs)


def test_the_judge_classifier_knows_real_digits_and_reads_raw_images():
    digits = load_digits()
    x, y = digits.images.astype("float32"), digits.target
    classifier = train_digits_classifier(x[:1000], y[:1000])
    assert np.mean(classifier.predict(x[1000:]) == y[1000:]) > 0.95
    # Rows or (n, 8, 8, 1) images: the same answers.
    np.testing.assert_array_equal(classifier.predict(x[1000:1050, :, :, None]),
                                  classifier.predict(x[1000:1050].reshape(50, 64)))
    with pytest.raises(ValueError, match="differ in length"):
        train_digits_classifier(x[:10], y[:9])


def test_grids_and_histogram_plots_are_pngs(tmp_path):
    images = np.random.default_rng(0).uniform(0, 16, (20, 8, 8, 1))
    assert sample_grid(images, tmp_path / "a" / "grid.png", (0.0, 16.0)).read_bytes()[:8] == PNG
    h = class_histogram(np.arange(20) % 10, 10, asked_for=np.arange(20) % 10)
    assert plot_class_histogram(h, [str(i) for i in range(10)], tmp_path / "h.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match=r"\(n, height, width"):
        sample_grid(np.zeros((2, 8, 8, 3)), tmp_path / "bad.png", (0.0, 1.0))


def test_normalization_inverse_undoes_global_and_per_feature_normalization():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 16, (50, 64)).astype("float32")
    assert normalization_inverse(None, (8, 8, 1)) == (1.0, 0.0)
    for axis in (None, -1):  # one mean for all pixels; one per pixel
        layer = keras.layers.Normalization(axis=axis)
        layer.adapt(raw)
        fed = np.asarray(layer(raw)).reshape(50, 8, 8, 1)
        scale, offset = normalization_inverse(layer, (8, 8, 1))
        np.testing.assert_allclose(fed * scale + offset, raw.reshape(50, 8, 8, 1), atol=1e-4)
    with pytest.raises(ValueError, match="Normalization layers only.*Rescaling"):
        normalization_inverse(keras.layers.Rescaling(2.0), (8, 8, 1))
