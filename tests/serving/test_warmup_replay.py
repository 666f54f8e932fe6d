"""A loaded version replays its TF Serving warm-up records before it serves; a bad record fails the load."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfdl.export.serving_model import export_serving_model
from tfdl.export.warmup import write_warmup_requests
from tfdl.serving.model_store import ModelStore, _warm_up


def tiny_model():
    inputs = keras.Input((4,), name="features")
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(inputs))


def test_every_warmup_record_is_replayed_on_load(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    export_serving_model(tiny_model(), tmp_path / "m" / "1", warmup={"features": x}, warmup_records=5)
    servable = ModelStore().add_model("m", tmp_path / "m")
    assert _warm_up(servable) == 5


def test_a_version_without_warmup_records_loads_as_before(tmp_path):
    export_serving_model(tiny_model(), tmp_path / "m" / "1")
    servable = ModelStore().add_model("m", tmp_path / "m")
    assert _warm_up(servable) == 0


def test_a_warmup_record_the_model_rejects_fails_the_load(tmp_path):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    directory = export_serving_model(tiny_model(), tmp_path / "m" / "1")
    # A record written by hand for another model: 3 features where this one takes 4.
    record = prediction_log_pb2.PredictionLog()
    record.predict_log.request.model_spec.name = "m"
    record.predict_log.request.inputs["features"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 3), "float32")))
    (directory / "assets.extra").mkdir()
    with tf.io.TFRecordWriter(str(directory / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(record.SerializeToString())
    with pytest.raises(ValueError, match="record 0: the warm-up request failed"):
        ModelStore().add_model("m", tmp_path / "m")


def test_the_server_starts_its_worker_threads_before_the_first_request(tmp_path):
    import threading

    from tfdl.serving.server import BackgroundServer

    export_serving_model(tiny_model(), tmp_path / "m" / "1")
    store = ModelStore()
    store.add_model("m", tmp_path / "m")
    with BackgroundServer(store):
        # Predictions run in anyio worker threads; the first one is started
        # at startup, so the first request does not pay for it.
        assert any("AnyIO worker thread" in t.name for t in threading.enumerate())
