"""The REST server against TF Serving's API, on a model exported by a short digits run."""

import threading

import keras
import numpy as np
import pytest
from http_calls import call


@pytest.fixture(scope="module")
def rows_and_expected(digits_run):
    model = keras.saving.load_model(digits_run.run_dir / "export" / "model.keras")
    rows = np.random.default_rng(0).integers(0, 17, size=(5, 64)).astype("float32")
    return rows, np.asarray(model(rows))


def test_model_status(digits_server):
    status, body = call(digits_server, "GET", "/v1/models/digits")
    assert status == 200
    assert body == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                              "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(digits_server, "GET", "/v1/models/digits/versions/1")[0] == 200


def test_metadata_lists_the_signature_as_tf_serving_does(digits_server):
    status, body = call(digits_server, "GET", "/v1/models/digits/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "digits", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["pixels"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["pixels"]["tensor_shape"]["dim"]] == ["-1", "64"]
    assert "probabilities" in signature["outputs"]


def test_predict_row_and_columnar_equal_the_keras_model(digits_server, rows_and_expected):
    rows, expected = rows_and_expected
    status, body = call(digits_server, "POST", "/v1/models/digits:predict", {"instances": rows.tolist()})
    assert status == 200
    np.testing.assert_allclose(body["predictions"], expected, atol=1e-5)
    status, body = call(digits_server, "POST", "/v1/models/digits/versions/1:predict",
                        {"inputs": {"pixels": rows.tolist()}, "signature_name": "serving_default"})
    assert status == 200
    np.testing.assert_allclose(body["outputs"], expected, atol=1e-5)
    status, body = call(digits_server, "POST", "/V1/MODELS/digits:PREDICT", {"instances": [{"pixels": rows[0].tolist()}]})
    assert status == 200
    np.testing.assert_allclose(body["predictions"], expected[:1], atol=1e-5)


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("POST", "/v1/models/digits:predict", b"{oops", 400, "JSON Parse error"),
        ("POST", "/v1/models/digits:predict", {"instances": [[1.0] * 63]}, 400, "expects pixels: float32[-1, 64]"),
        ("POST", "/v1/models/digits:predict", {"instances": [["x"] * 64]}, 400, "not of expected type float32"),
        ("POST", "/v1/models/digits:predict", {"instances": [[1.0] * 64], "signature_name": "nope"}, 400, 'signature name: "nope" not found'),
        ("POST", "/v1/models/nope:predict", {"instances": [[1.0] * 64]}, 404, "Servable not found for request: Latest(nope)"),
        ("POST", "/v1/models/digits/versions/7:predict", {"instances": [[1.0] * 64]}, 404, "Specific(digits, 7)"),
        ("POST", "/v1/models/digits/labels/canary:predict", {"instances": [[1.0] * 64]}, 400, "Unrecognized servable version label: canary"),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/digits/versions/9", None, 404, "Could not find version 9 of model digits"),
        ("GET", "/v1/models", None, 400, "Missing model name"),
        ("PUT", "/v1/models/digits", None, 400, "Malformed request: PUT /v1/models/digits"),
        ("GET", "/elsewhere", None, 404, "Not Found"),
        ("POST", "/v1/%0A0", None, 400, "Malformed request"),  # a newline no route pattern matches
        ("GET", "/%0A", None, 404, "Not Found"),
        ("POST", "/v1/models/digits:classify", {"examples": []}, 400, "'examples' value is an empty array"),
        ("POST", "/v1/models/digits:predict", {"instances": [[1.0] * 64] * 400}, 413, "exceeds the limit"),
    ],
)
def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(digits_server, method, path, body, status, message):
    got, data = call(digits_server, method, path, body)
    assert got == status
    assert message in data["error"]
    assert call(digits_server, "POST", "/v1/models/digits:predict", {"instances": [[0.0] * 64]})[0] == 200


def test_concurrent_requests_each_get_their_own_answer(digits_server, rows_and_expected):
    rows, expected = rows_and_expected
    results = {}

    def worker(i):
        results[i] = call(digits_server, "POST", "/v1/models/digits:predict", {"instances": [rows[i % 5].tolist()]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (status, body) in results.items():
        assert status == 200
        np.testing.assert_allclose(body["predictions"][0], expected[i % 5], atol=1e-5)
