"""Autoencoders learn, the denoising one denoises, and reconstruction error finds anomalies (digits)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfdl.evaluation.anomaly import (
    anomaly_metrics,
    choose_threshold,
    plot_error_histogram,
    reconstruction_errors,
    roc_auc,
)
from tfdl.models import build_model
from tfdl.models.autoencoder import AboveThreshold, ReconstructionError, anomaly_detector, encoder
from tfdl.schema import ConfigError


@pytest.fixture(scope="module")
def digits():
    """Digits standardized with the training rows' mean and variance, split 1400 / 397."""
    from tfdl.pipelines import load_sklearn_dataset

    data = load_sklearn_dataset("digits")
    order = np.random.default_rng(0).permutation(len(data.labels))
    x, y = data.features[order], data.labels[order]
    mean, std = x[:1400].mean(), x[:1400].std()
    x = ((x - mean) / std).astype("float32")
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _fit(params: dict, x: np.ndarray, epochs: int, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model("autoencoder", {"input_shape": [64], **params})
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    model.fit(x, x, epochs=epochs, batch_size=64, verbose=0)
    return model


def test_anomaly_metrics_match_hand_counts():
    errors = np.array([0.1, 0.6, 0.9, 0.3, 0.2, 0.7])
    truth = np.array([False, False, True, True, False, True])
    m = anomaly_metrics(errors, truth, threshold=0.5)  # flags 0.6 (wrongly), 0.9 and 0.7; misses 0.3
    assert (m.true_positives, m.false_positives, m.false_negatives, m.true_negatives) == (2, 1, 1, 2)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
    assert m.false_positive_rate == pytest.approx(1 / 3)
    assert m.auc == pytest.approx(8 / 9)  # 8 of the 9 (anomaly, normal) pairs are ordered right
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half
    nothing = anomaly_metrics(errors, truth, threshold=1.0)
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)
    np.testing.assert_allclose(reconstruction_errors([[0, 0], [1, 3]], [[0, 1], [1, 1]]), [0.5, 2.0])
    assert choose_threshold(np.arange(101) / 100, 0.95) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="quantile"):
        choose_threshold([0.1, 0.2], 1.5)
    with pytest.raises(ValueError, match="NaN"):
        choose_threshold([0.1, np.nan])
    with pytest.raises(ValueError, match="one shape"):
        reconstruction_errors(np.zeros((2, 3)), np.zeros((2, 4)))


def test_autoencoders_learn_far_below_the_mean_image(digits):
    train, _, test, _ = digits
    baseline = np.mean(np.square(test - train.mean(axis=0)))
    for params in ({"architecture": "dense", "hidden_units": [64], "code_size": 16},
                   {"architecture": "conv", "image_shape": [8, 8, 1], "filters": [16, 8]}):
        model = _fit(params, train, epochs=8)
        mse = np.mean(np.square(model.predict(test, verbose=0) - test))
        assert mse < 0.4 * baseline, (params, mse, baseline)
    assert encoder(model)(test[:3]).shape == (3, 2, 2, 8)  # the conv code: 32 values for 64 pixels


def test_denoising_autoencoder_rebuilds_clean_digits_from_noisy_ones_better_than_a_plain_one(digits):
    # Overcomplete (a code as wide as the input): the plain model learns to copy,
    # noise included; trained on corrupted inputs, the other must learn digits.
    train, _, test, _ = digits
    noisy = test + np.random.default_rng(1).normal(0.0, 0.5, test.shape).astype("float32")
    wide = {"hidden_units": [128], "code_size": 64}
    plain = np.mean(np.square(_fit(wide, train, 20).predict(noisy, verbose=0) - test))
    denoising = np.mean(np.square(_fit({**wide, "noise_stddev": 0.5}, train, 20).predict(noisy, verbose=0) - test))
    assert denoising < 0.75 * plain, (denoising, plain)
    assert denoising < 0.5 * np.mean(np.square(noisy - test))


def detect_unseen_digits(digits, seed: int = 0, epochs: int = 40):
    """Train on the digits 0-4 only; flag test digits above the 95% quantile of normal validation errors."""
    train, train_labels, test, test_labels = digits
    normal = np.arange(5)  # 0-4 are normal; 5-9 play the anomalies
    seen = train[np.isin(train_labels, normal)]
    fitted, validation = seen[:550], seen[550:]
    model = _fit({"hidden_units": [64], "code_size": 8}, fitted, epochs=epochs, seed=seed)
    threshold = choose_threshold(reconstruction_errors(validation, model.predict(validation, verbose=0)), 0.95)
    errors = reconstruction_errors(test, model.predict(test, verbose=0))
    return anomaly_metrics(errors, ~np.isin(test_labels, normal), threshold), errors, threshold


def test_reconstruction_error_flags_digits_never_seen_in_training(digits, tmp_path):
    m, errors, threshold = detect_unseen_digits(digits)
    normal = np.isin(digits[3], np.arange(5))
    # Bars below the worst of 5 seeds in benchmarks/autoencoders.py (see its figures).
    assert m.precision >= 0.8 and m.recall >= 0.6 and m.auc >= 0.9, m
    png = plot_error_histogram(errors[normal], errors[~normal], threshold, tmp_path / "errors.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_detector_layers_match_numpy_and_the_detector_round_trips(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 64)).astype("float32")
    rebuilt = x + np.linspace(0, 1, 6, dtype="float32")[:, None]
    np.testing.assert_allclose(ReconstructionError()([x, rebuilt]), reconstruction_errors(x, rebuilt), rtol=1e-5)
    assert np.asarray(AboveThreshold(0.3)(np.array([0.2, 0.3, 0.4], "float32"))).tolist() == [False, False, True]

    model = build_model("autoencoder", {"input_shape": [64], "architecture": "conv", "image_shape": [8, 8, 1],
                                        "noise_stddev": 0.2})
    denormalize = keras.layers.Normalization(mean=5.0, variance=4.0, invert=True, name="denormalization")
    detector = anomaly_detector(model, threshold=0.5, reconstruction_units=denormalize)
    reconstruction, error, flagged = (np.asarray(o) for o in detector(x))
    inside = np.asarray(model(x))
    np.testing.assert_allclose(reconstruction, inside * 2.0 + 5.0, rtol=1e-5)  # back to raw units
    np.testing.assert_allclose(error, reconstruction_errors(x, inside), rtol=1e-5)  # in the model's units
    np.testing.assert_array_equal(flagged, error > 0.5)
    detector.save(tmp_path / "detector.keras")
    reloaded = keras.saving.load_model(tmp_path / "detector.keras", safe_mode=True)
    for got, expected in zip(reloaded(x), (reconstruction, error, flagged)):
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)
    assert reloaded.get_layer("is_anomaly").threshold == 0.5
    with pytest.raises(ValueError, match="threshold"):
        anomaly_detector(model, threshold=float("nan"))


def test_bad_autoencoder_settings_name_the_field():
    from tfdl.models import model_config

    with pytest.raises(ConfigError, match="model.params.*image_shape.*holds 49"):
        model_config("autoencoder", {"input_shape": [64], "architecture": "conv", "image_shape": [7, 7, 1]})
    with pytest.raises(ConfigError, match="divide by 2 \\*\\* len\\(filters\\) = 16"):
        model_config("autoencoder", {"input_shape": [64], "architecture": "conv", "image_shape": [8, 8, 1],
                                     "filters": [4, 4, 4, 4]})
    with pytest.raises(ConfigError, match="needs image_shape"):
        model_config("autoencoder", {"input_shape": [64], "architecture": "conv"})
    with pytest.raises(ConfigError, match="model.params.threshold_quantile"):
        model_config("autoencoder", {"threshold_quantile": 1.0})
