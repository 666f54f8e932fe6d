import json

import keras
import numpy as np
import tensorflow as tf

from tfdl.export import (
    check_parity,
    export_saved_model,
    inference_model,
    list_versions,
    load_interpreter,
    next_version,
    to_tflite,
)
from tfdl.pipelines import fit_normalization


def tiny_model():
    inputs = keras.Input((6,), name="features")
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="scores")(hidden))


def test_inference_model_puts_preprocessing_in_front_and_keeps_names():
    rng = np.random.default_rng(0)
    raw = rng.normal(4.0, 3.0, size=(20, 6)).astype("float32")
    normalizer = fit_normalization(raw, "per_feature")
    model = tiny_model()
    model.compile("adam", "mse")
    served = inference_model(model, normalizer)
    assert served.input.name == "features"
    assert served.output_names == ["scores"]
    np.testing.assert_allclose(np.asarray(served(raw)), np.asarray(model(normalizer(raw))), atol=1e-6)
    assert not getattr(served, "compiled", False)


def test_saved_model_signature_has_named_inputs_and_outputs_and_tflite_matches(tmp_path):
    model = tiny_model()
    directory = export_saved_model(model, tmp_path / "m" / "1")
    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert list(inputs) == ["features"]
    assert inputs["features"].shape.as_list() == [None, 6]
    assert list(signature.structured_outputs) == ["scores"]
    x = np.random.default_rng(1).normal(size=(7, 6)).astype("float32")
    tflite = to_tflite(directory, tmp_path / "m.tflite")
    runner = load_interpreter(tflite).get_signature_runner("serving_default")
    np.testing.assert_allclose(runner(features=x)["scores"], np.asarray(model(x)), atol=1e-5)
    report = check_parity(model, {"features": x}, directory, tflite, atol=1e-5)
    assert report.passed and [r.target for r in report.results] == ["saved_model", "tflite"]


def test_parity_check_catches_a_different_model(tmp_path):
    model, other = tiny_model(), tiny_model()
    directory = export_saved_model(other, tmp_path / "other")
    x = np.random.default_rng(2).normal(size=(5, 6)).astype("float32")
    report = check_parity(model, {"features": x}, directory, atol=1e-5)
    assert not report.passed
    assert report.results[0].max_abs_diff > 1e-5


def test_serving_layout_lists_complete_versions_and_picks_the_next(tmp_path):
    base = tmp_path / "digits"
    assert next_version(base) == 1 and list_versions(base) == []
    for version in (1, 3):
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_bytes(b"")
    (base / "4").mkdir()  # half written: no saved_model.pb
    (base / "tmp").mkdir()
    assert list_versions(base) == [1, 3]
    assert next_version(base) == 5


def test_digits_run_writes_every_artifact(digits_run):
    run_dir, export = digits_run.run_dir, digits_run.run_dir / "export"
    for path in ("report.md", "metrics.json", "config.yaml", "history.csv", "plots/learning_curves.png",
                 "plots/confusion_matrix.png", "checkpoints/best.weights.h5", "checkpoints/last.weights.h5"):
        assert (run_dir / path).is_file(), path
    assert any((run_dir / "logs").rglob("events.out.tfevents*"))
    assert list_versions(export / "serving" / "digits") == [1]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["parity"]["passed"]
    assert set(metrics["parity"]["targets"]) == {"saved_model", "tflite"}
    assert metrics["test"]["accuracy"] > 0.8
    assert len(metrics["test"]["confusion_matrix"]) == 10
    report = (run_dir / "report.md").read_text()
    assert "Export parity with Keras" in report and "plots/confusion_matrix.png" in report
    assert "tfdl serve --model-base-path" in report


def test_exported_keras_model_takes_raw_rows_and_matches_tflite(digits_run):
    export = digits_run.run_dir / "export"
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    rows = np.array(json.loads((export / "sample_request.json").read_text())["instances"], dtype="float32")
    assert rows.shape == (4, 64) and rows.max() > 1.0  # raw pixels 0..16, not normalized
    expected = np.asarray(model(rows))
    runner = load_interpreter(export / "model.tflite").get_signature_runner("serving_default")
    np.testing.assert_allclose(runner(pixels=rows)["probabilities"], expected, atol=1e-5)


def test_multi_output_models_export_one_signature_output_per_keras_output(tmp_path):
    inputs = keras.Input((3,), name="features")
    as_dict = keras.Model(inputs, {"score": keras.layers.Dense(1)(inputs), "label": keras.layers.Dense(2)(inputs)})
    as_list = keras.Model(inputs, [keras.layers.Dense(1, name="score")(inputs), keras.layers.Dense(2, name="label")(inputs)])
    x = np.ones((2, 3), dtype="float32")
    for i, model in enumerate((as_dict, as_list)):
        signature = tf.saved_model.load(str(export_saved_model(model, tmp_path / str(i)))).signatures["serving_default"]
        served = {k: v.numpy() for k, v in signature(features=tf.constant(x)).items()}
        assert set(served) == {"score", "label"}
        assert served["label"].shape == (2, 2)


def test_digits_run_exports_four_tflite_modes_within_their_bounds(digits_run):
    from tfdl.export import read_tflite_metadata, read_warmup_requests

    export = digits_run.run_dir / "export"
    reports = {r["mode"]: r for r in digits_run.metrics["export"]["tflite"]}
    assert list(reports) == ["float32", "dynamic_range", "float16", "int8"]
    assert all(r["passed"] for r in reports.values()), reports
    assert reports["float32"]["max_abs_diff"] <= 1e-4 and reports["float16"]["max_abs_diff"] <= 1e-2
    assert reports["int8"]["bytes"] < 0.5 * reports["float32"]["bytes"]
    assert abs(reports["int8"]["accuracy"] - reports["float32"]["accuracy"]) <= 0.02
    sidecar = read_tflite_metadata(export / "model_int8.tflite")
    assert sidecar["mode"] == "int8" and sidecar["labels"] == [str(d) for d in range(10)]
    assert sidecar["preprocessing"]["normalization"]["class"] == "Normalization"
    saved = export / "serving" / "digits" / "1"
    assert len(read_warmup_requests(saved / "assets.extra" / "tf_serving_warmup_requests")) == 10  # export.warmup_requests
    assert "model_config_list" in (export / "serving" / "models.config").read_text()
    report = (digits_run.run_dir / "report.md").read_text()
    assert "## TFLite modes" in report and "| int8 |" in report
