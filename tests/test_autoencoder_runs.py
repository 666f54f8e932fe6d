"""`tfdl run` on the autoencoder configs, shortened: anomaly detection on digits goes the whole way."""

import json

import keras
import numpy as np
import pytest

from tfdl.config import load_config
from tfdl.run import run
from tfdl.schema import ConfigError


@pytest.fixture(scope="module")
def anomaly_run(tmp_path_factory):
    config = load_config("configs/digits_autoencoder.yaml", [
        "training.epochs=20", "training.early_stopping=null", "export.warmup_requests=2", "export.sample_size=3",
    ])
    directory = tmp_path_factory.mktemp("runs") / "anomaly"
    return run(config, output_dir=directory, log=lambda _: None)


def test_an_anomaly_run_trains_on_normal_digits_and_reports_precision_and_recall(anomaly_run):
    test = anomaly_run.metrics["test"]
    anomaly = test["anomaly"]
    assert anomaly["normal_classes"] == [0, 1, 2, 3, 4]
    assert anomaly["anomalies"] + anomaly["normal"] == anomaly_run.metrics["data"]["sizes"]["test"]
    # Only normal digits feed training and validation: about half of each split.
    sizes = anomaly_run.metrics["data"]["sizes"]
    assert sizes["train"] < 0.6 * 1797 * 0.6 and sizes["validation"] < 0.6 * 1797 * 0.2
    assert test["reconstruction_mse"] < 0.5 * test["mean_image_mse"]
    assert anomaly["precision"] >= 0.8 and anomaly["recall"] >= 0.6 and anomaly["auc"] >= 0.9
    report = (anomaly_run.run_dir / "report.md").read_text()
    assert "precision / recall / F1" in report and "plots/reconstruction_errors.png" in report
    assert (anomaly_run.run_dir / "plots" / "reconstruction_errors.png").stat().st_size > 1000
    assert json.loads((anomaly_run.run_dir / "metrics.json").read_text())["test"]["threshold"] == anomaly["threshold"]


def test_the_served_detector_takes_raw_pixels_and_matches_the_keras_model(anomaly_run):
    import tensorflow as tf

    from tfdl.pipelines import load_sklearn_dataset

    assert anomaly_run.metrics["parity"]["passed"]
    pixels = load_sklearn_dataset("digits").features[:40]  # raw 0..16, as a client sends them
    served = tf.saved_model.load(str(anomaly_run.serving_dir / "1")).signatures["serving_default"]
    got = {k: v.numpy() for k, v in served(pixels=tf.constant(pixels)).items()}
    assert set(got) == {"reconstruction", "reconstruction_error", "is_anomaly"}
    in_process = keras.saving.load_model(anomaly_run.run_dir / "export" / "model.keras", safe_mode=True)
    expected = [np.asarray(o) for o in in_process(pixels)]
    np.testing.assert_allclose(got["reconstruction"], expected[0], atol=1e-4)
    np.testing.assert_allclose(got["reconstruction_error"], expected[1], atol=1e-6)
    np.testing.assert_array_equal(got["is_anomaly"], expected[2])
    threshold = anomaly_run.metrics["test"]["threshold"]
    np.testing.assert_array_equal(got["is_anomaly"], got["reconstruction_error"] > threshold)
    # The reconstruction comes back in pixel units, close to the input.
    assert np.mean(np.abs(got["reconstruction"] - pixels)) < 0.5 * np.mean(np.abs(pixels - pixels.mean()))


@pytest.mark.parametrize("override, message", [
    ("model.params.normal_classes=[3, 12]", "normal_classes: \\[12\\] are not class indices"),
    ("model.params.normal_classes=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "no anomalies to find"),
])
def test_bad_normal_classes_are_named(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run(load_config("configs/digits_autoencoder.yaml", [override, "training.epochs=1"]), tmp_path, log=lambda _: None)
