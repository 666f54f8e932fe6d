"""`tfdl serve` as a whole: several models from a config, batching, gRPC and REST on one store,
metrics, and new versions going live under load with no failed request."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
from conftest import free_port

from tfdl.export.serving_model import export_serving_model
from tfdl.serving.batching import BatchingParameters
from tfdl.serving.client import Client
from tfdl.serving.metrics import ServingMetrics
from tfdl.serving.server import BackgroundServer, ServerOptions, build_store
from tfdl.serving.version_poller import VersionPoller


def scaled_model(scale: float):
    """y = scale * sum(x): each version answers differently, so a test can tell which served."""
    inputs = keras.Input((4,), name="x")
    dense = keras.layers.Dense(1, use_bias=False, name="y")
    outputs = dense(inputs)
    model = keras.Model(inputs, outputs)
    dense.kernel.assign(np.full((4, 1), scale, "float32"))
    return model


def test_new_and_corrupt_versions_under_load_with_batching_lose_no_request(tmp_path):
    base = tmp_path / "m"
    export_serving_model(scaled_model(1.0), base / "1")
    export_serving_model(scaled_model(2.0), tmp_path / "staging" / "2")
    metrics = ServingMetrics()
    options = ServerOptions(batching=BatchingParameters(max_batch_size=16, batch_timeout_micros=2000), access_log=False)
    store = build_store(options, metrics, model_base_path=base, model_name="m")
    results, errors, stop = [], [], threading.Event()

    def hammer(server):
        client = Client(server.url, "m", timeout=10)
        while not stop.is_set():
            try:
                results.append(client.predict(instances=[[1.0, 1.0, 1.0, 1.0]])["predictions"][0][0])
            except Exception as error:  # noqa: BLE001 - every failure is what this test counts
                errors.append(repr(error))

    with BackgroundServer(store, options=options, metrics=metrics) as server, VersionPoller(store, 0.1):
        threads = [threading.Thread(target=hammer, args=(server,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")  # corrupt: logged, skipped
        shutil.move(str(tmp_path / "staging" / "2"), str(base / "2"))  # complete: goes live
        deadline = time.monotonic() + 20
        while store.get("m").version != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        page = Client(server.url, "m")._connect()
        page.request("GET", "/monitoring/prometheus/metrics")
        exposition = page.getresponse().read().decode()
    assert errors == []
    assert set(results) == {4.0, 8.0} and results[-1] == 8.0
    assert "batching_session:processed_batch_size" in exposition
    assert 'tfdl_serving_model_available{model_name="m",version="2"} 1.0' in exposition
    states = {s["version"]: s["state"] for s in store.status("m")["model_version_status"]}
    assert states == {"3": "END", "2": "AVAILABLE", "1": "END"}


def test_tfdl_serve_two_models_from_yaml_over_rest_and_grpc_then_sigterm(tmp_path):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    export_serving_model(scaled_model(1.0), tmp_path / "one" / "1")
    export_serving_model(scaled_model(3.0), tmp_path / "three" / "1")
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - {name: one, base_path: one}\n  - {name: three, base_path: three}\n")
    rest, grpc_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tfdl", "serve", "--model_config_file", str(config), "--enable_batching",
         "--rest_api_port", str(rest), "--port", str(grpc_port), "--no-access-log"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                Client(f"http://127.0.0.1:{rest}", "one", timeout=2).status()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                time.sleep(0.3)
        x = [[1.0, 2.0, 3.0, 4.0]]
        assert Client(f"http://127.0.0.1:{rest}", "three").predict(instances=x)["predictions"] == [[30.0]]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "one"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(x, "float32")))
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
            assert tf.make_ndarray(response.outputs["y"]).tolist() == [[10.0]]
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert "tfdl serving one version 1" in output and "tfdl serving three version 1" in output
    assert "batching on" in output
