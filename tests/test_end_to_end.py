"""The whole path through the command line: run -> serve -> predict, as a user does it."""

import http.client
import json
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import SHORT_RUN, free_port


def post(port, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body=body if isinstance(body, bytes) else json.dumps(body).encode())
    response = connection.getresponse()
    status, data = response.status, json.loads(response.read())
    connection.close()
    return status, data


def wait_until_serving(process, port, deadline=90):
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tfdl serve exited: {process.stderr.read()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/v1/models/digits")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("tfdl serve did not answer in time")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "run"
    args = [sys.executable, "-m", "tfdl", "run", "--output-dir", str(out)]
    for override in SHORT_RUN:
        args += ["--set", override]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tfdl serve --model-base-path" in result.stdout
    return out


def test_run_serve_predict_end_to_end(run_dir):
    port = free_port()
    serving_dir = run_dir / "export" / "serving" / "digits"
    server = subprocess.Popen(
        [sys.executable, "-m", "tfdl", "serve", "--model-base-path", str(serving_dir),
         "--model-name", "digits", "--rest_api_port", str(port), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_serving(server, port)
        request = json.loads((run_dir / "export" / "sample_request.json").read_text())
        rows = np.array(request["instances"], dtype="float32")
        expected = np.asarray(keras.saving.load_model(run_dir / "export" / "model.keras")(rows))

        status, row = post(port, "/v1/models/digits:predict", request)
        assert status == 200
        np.testing.assert_allclose(row["predictions"], expected, atol=1e-5)
        status, columnar = post(port, "/v1/models/digits:predict", {"inputs": {"pixels": rows.tolist()}})
        assert status == 200
        np.testing.assert_allclose(columnar["outputs"], expected, atol=1e-5)

        bad = [
            (b'{"instances": [[1, 2,', 400),
            ({"instances": [[1.0] * 10]}, 400),
            ({"instances": [["seven"] * 64]}, 400),
            ({"instances": rows.tolist(), "inputs": rows.tolist()}, 400),
        ]
        for body, want in bad:
            status, data = post(port, "/v1/models/digits:predict", body)
            assert status == want and isinstance(data["error"], str) and data["error"]
        status, data = post(port, "/v1/models/unknown:predict", request)
        assert status == 404 and "unknown" in data["error"]

        status, again = post(port, "/v1/models/digits:predict", request)
        assert status == 200 and again == row

        cli = subprocess.run(
            [sys.executable, "-m", "tfdl", "predict", "--url", f"http://127.0.0.1:{port}",
             "--model-name", "digits", "--input", str(run_dir / "export" / "sample_request.json")],
            capture_output=True, text=True, timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        np.testing.assert_allclose(json.loads(cli.stdout)["predictions"], expected, atol=1e-5)
    finally:
        server.terminate()
        server.wait(timeout=30)
