"""GANs under `tfdl run` and tfdl's trainer: a short end-to-end run, the served `generate` signature, and resume."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from http_calls import call



class Killed(Exception):
    """Stands for the process being killed mid-run."""


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    from tfdl.config import load_config
    from tfdl.run import run

    config = load_config("configs/digits_dcgan.yaml", overrides=["training.epochs=2", "data.batch_size=64"])
    return run(config, tmp_path_factory.mktemp("runs") / "dcgan", log=lambda _: None)


def _served(serving_dir, name: str):
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    store = ModelStore()
    store.add_model(name, serving_dir)
    return BackgroundServer(store)


def test_a_short_run_writes_report_figures_grids_and_a_served_generator(dcgan_run):
    run_dir = dcgan_run.run_dir
    report = (run_dir / "report.md").read_text()
    for heading in ("## Test set", "## Generated samples (final)", "## Classes of generated samples",
                    "## Export parity with Keras", "SavedModel generate"):
        assert heading in report
    figures = json.loads((run_dir / "metrics.json").read_text())
    test = figures["test"]
    assert test["classifier_test_accuracy"] > 0.95  # the judge itself knows real digits
    assert sum(test["counts"]) == test["samples"] == 1000
    assert math.isclose(sum(test["share"]), 1.0, abs_tol=1e-9)
    assert test["classes_covered"] == sum(c > 0 for c in test["counts"])
    assert test["largest_share"] == max(test["share"])
    assert figures["parity"]["passed"] and figures["training"]["epochs_run"] == 2
    assert set(figures["training"]["history"]) >= {"d_loss", "g_loss", "val_d_loss", "val_g_loss"}
    for png in ("samples/epoch_001.png", "samples/epoch_002.png", "samples.png", "class_histogram.png"):
        assert (run_dir / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Served over REST: the same images as the exported Keras generator (fed raw pixels, so raw units).
    request = json.loads((run_dir / "export" / "sample_request.json").read_text())
    noise = np.asarray(request["inputs"]["noise"], "float32")
    assert noise.shape == (3, 32) and "labels" not in request["inputs"]
    generator = keras.saving.load_model(run_dir / "export" / "generator.keras", safe_mode=True)
    expected = np.asarray(generator(noise))
    with _served(dcgan_run.serving_dir, "digits_dcgan") as server:
        status, body = call(server, "POST", "/v1/models/digits_dcgan:predict", {"signature_name": "generate", **request})
        assert status == 200, body
        np.testing.assert_allclose(np.asarray(body["outputs"]), expected, atol=1e-5)
        assert np.asarray(body["outputs"]).shape == (3, 8, 8, 1)
        assert call(server, "POST", "/v1/models/digits_dcgan:predict", request)[0] == 200  # serving_default too


def test_conditional_export_gives_raw_units_under_normalization_and_serves_labels(tmp_path):
    from tfdl.config import load_config
    from tfdl.export.config import ExportConfig
    from tfdl.pipelines import build_pipeline
    from tfdl.tasks.gan import GANTask

    config = load_config("configs/digits_cgan.yaml", overrides=["data.normalization=global"])
    pipeline = build_pipeline(config.data, 0, 64)
    model = keras.saving.deserialize_keras_object({"class_name": "tfdl>ConditionalGAN", "config": {"config": {
        "input_shape": [64], "latent_dim": 6, "num_classes": 10, "generator_filters": [8, 4],
        "discriminator_filters": [4], "pixel_range": [-1.0, 2.0]}}})
    exported = GANTask().export(model, pipeline, ExportConfig(model_name="cgan", tflite=[]), tmp_path, print)
    assert exported.passed and exported.parity.to_dict()["targets"]["SavedModel generate"]["max_abs_diff"] < 1e-4
    mean = float(np.asarray(pipeline.preprocessing.mean).squeeze())
    std = math.sqrt(float(np.asarray(pipeline.preprocessing.variance).squeeze()))
    noise = np.random.default_rng(5).standard_normal((4, 6)).astype("float32")
    labels = np.array([0, 3, 9, 3], "int32")
    expected = model.generate(noise, labels) * std + mean  # the standardization undone
    with _served(exported.serving_model_dir, "cgan") as server:
        body = {"signature_name": "generate", "inputs": {"noise": noise.tolist(), "labels": labels.tolist()}}
        status, answer = call(server, "POST", "/v1/models/cgan:predict", body)
        assert status == 200, answer
        np.testing.assert_allclose(np.asarray(answer["outputs"]), expected, atol=1e-4)
        body["inputs"]["labels"] = [0, 3, 10, 3]
        status, answer = call(server, "POST", "/v1/models/cgan:predict", body)
        assert status == 400 and "labels must be in [0, 9]" in answer["error"]
    request = json.loads(exported.sample_request.read_text())
    assert set(request["inputs"]) == {"noise", "labels"} and request["inputs"]["labels"] == [0, 1, 2]


def _train(run_dir, epochs: int, epoch_end=None):
    from tfdl.models import build_model
    from tfdl.training import train
    from tfdl.training.config import TrainingConfig

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 16, (64, 64)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(64, "int32"))).batch(16)
    config = TrainingConfig(epochs=epochs, strategy="default", early_stopping=None, keep="last", verbose=0,
                            deterministic=True, steps_per_execution=2, jit_compile=False,
                            backup={"every_steps": 4}, optimizer={"name": "adam", "learning_rate": 0.01})

    def build():
        return build_model("dcgan", {"input_shape": (64,), "latent_dim": 4, "generator_filters": [8, 4],
                                     "discriminator_filters": [4, 8], "generator_learning_rate": 0.02})

    return train(build, data, data.take(1), config, tf.distribute.get_strategy(), run_dir, loss=None, metrics=[],
                 log=lambda _: None, epoch_end=epoch_end)


def test_trainer_trains_a_gan_and_a_resumed_run_restores_both_optimizers(tmp_path):
    whole = _train(tmp_path / "whole", epochs=2)
    assert whole.epochs_run == 2 and set(whole.history) >= {"loss", "d_loss", "g_loss", "val_loss"}
    assert int(whole.model.optimizer.iterations) == int(whole.model.g_optimizer.iterations) == 8
    assert math.isclose(float(whole.model.g_optimizer.learning_rate), 0.02, rel_tol=1e-6)

    def killed_after_epoch_2(epoch, model):
        if epoch == 2:
            raise Killed  # as if killed before the end of epoch 2's backup

    with pytest.raises(Killed):
        _train(tmp_path / "resumed", epochs=2, epoch_end=killed_after_epoch_2)
    resumed = _train(tmp_path / "resumed", epochs=2)
    assert resumed.resumed_from_step == 4  # the backup at the end of epoch 1
    assert int(resumed.model.g_optimizer.iterations) == 8
    # Bit-identical: the generator's Adam slots came back too (without them its weights drift).
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(whole.model.g_optimizer.variables, resumed.model.g_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_gan_on_streamed_data_is_judged_by_a_classifier_trained_on_half_the_test_split(tmp_path):
    """TFRecord (or TFDS MNIST) data are streamed: no raw training split in memory, so the judge learns from
    half of the raw test split and is scored on the other half."""
    from sklearn.datasets import load_digits

    from tfdl.config import load_config
    from tfdl.pipelines.tfrecord import write_tfrecords
    from tfdl.run import run

    x, y = load_digits(return_X_y=True)
    x, y = x.astype("float32"), y.astype("int64")
    for name, rows in (("train", slice(0, 400)), ("validation", slice(400, 500)), ("test", slice(500, 1100))):
        write_tfrecords(tmp_path / name, {"pixels": x[rows], "label": y[rows]})
    source = ("{type: tfrecord, train: %s, validation: %s, test: %s, input_key: pixels, class_names: [%s]}"
              % (tmp_path / "train", tmp_path / "validation", tmp_path / "test", ", ".join(f"'{i}'" for i in range(10))))
    config = load_config("configs/digits_dcgan.yaml", overrides=[
        f"data.source={source}", "data.split={validation: 0.15, test: 0.15, stratify: false}",
        "training.epochs=1", "data.batch_size=64"])
    result = run(config, tmp_path / "run", log=lambda _: None)
    test = result.metrics["test"]
    assert test["classifier_test_accuracy"] > 0.8  # an SVC on 300 real digits, scored on the other 300
    assert test["classes_covered"] >= 1 and 0.0 < test["largest_share"] <= 1.0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "half of the real test split (the data are streamed)" in report
