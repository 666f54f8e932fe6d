import http.client
import json

import numpy as np
import pytest
from served_models import constant_model

from tfdl.serving.client import Client, ServingClientError, load_request

# The regression model's answer by version: constant_model(value) answers `value` whatever its input.
CONSTANT_VERSIONS = {1: 1.25, 2: -2.5}


def test_client_status_metadata_and_predict(digits_server):
    with Client(digits_server.url, "digits") as client:
        assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
        assert "serving_default" in client.metadata(version=1)["metadata"]["signature_def"]["signature_def"]
        rows = np.zeros((2, 64), dtype="float32")
        row = client.predict(instances=rows)["predictions"]
        columnar = client.predict(inputs={"pixels": rows}, version=1)["outputs"]
        assert np.shape(row) == (2, 10)
        np.testing.assert_allclose(row, columnar)


def test_client_raises_the_server_error_with_its_status(digits_server):
    with pytest.raises(ServingClientError) as error:
        Client(digits_server.url, "missing").predict(instances=[[0.0] * 64])
    assert error.value.status == 404 and "Servable not found" in error.value.message
    with pytest.raises(ValueError, match="exactly one"):
        Client(digits_server.url, "digits").predict()


def test_load_request_from_npy_json_and_inline(tmp_path):
    array = np.arange(6, dtype="float32").reshape(2, 3)
    np.save(tmp_path / "x.npy", array)
    assert load_request(str(tmp_path / "x.npy")) == {"instances": array.tolist()}
    (tmp_path / "r.json").write_text(json.dumps({"inputs": [[1, 2]]}))
    assert load_request(str(tmp_path / "r.json")) == {"inputs": [[1, 2]]}
    assert load_request("[[1, 2]]", columnar=True) == {"inputs": [[1, 2]]}
    with pytest.raises(ValueError, match="neither a file nor valid JSON"):
        load_request("not json")


def post(server, path, body):
    """The REST endpoint called directly, without the client: its status and JSON body."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    status, payload = response.status, json.loads(response.read())
    connection.close()
    return status, payload


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).integers(0, 17, size=(3, 64)).astype("float32")


@pytest.fixture(scope="module")
def constant_server(tmp_path_factory):
    """Versions 1 and 2 of a model with a regression signature, labelled stable and canary."""
    from tfdl.export.serving_model import export_serving_model
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    base = tmp_path_factory.mktemp("constant")
    for version, value in CONSTANT_VERSIONS.items():
        export_serving_model(constant_model(value), base / str(version), regress="y")
    store = ModelStore()
    store.add_model("constant", base, version_policy="all", version_labels={"stable": 1, "canary": 2})
    with BackgroundServer(store) as server:
        yield server


def example(row):
    import tensorflow as tf

    feature = tf.train.Feature(float_list=tf.train.FloatList(value=row.tolist()))
    return tf.train.Example(features=tf.train.Features(feature={"pixels": feature})).SerializeToString()


def test_classify_answers_what_the_rest_endpoint_and_the_signature_answer(digits_server, digits_store, rows):
    with Client(digits_server.url, "digits") as client:
        results = client.classify([{"pixels": row} for row in rows], signature_name="classification", version=1)
    status, direct = post(digits_server, "/v1/models/digits/versions/1:classify",
                          {"signature_name": "classification", "examples": [{"pixels": r.tolist()} for r in rows]})
    assert status == 200 and results == direct["results"]
    assert len(results) == len(rows)
    for result in results:
        assert [label for label, _ in result] == [str(digit) for digit in range(10)]
        assert all(isinstance(score, float) for _, score in result)
    serialized = np.array([example(row) for row in rows], dtype=object)
    scores = digits_store.get("digits").signature("classification")({"inputs": serialized})["scores"]
    # The server writes each float32 score as the shortest text that reads back to it: exact.
    np.testing.assert_array_equal(np.array([[score for _, score in r] for r in results], "float32"), scores)


def test_classify_sends_the_context_into_every_example(digits_server, rows):
    with Client(digits_server.url, "digits") as client:
        plain = client.classify([{"pixels": rows[0]}, {"pixels": rows[1]}], signature_name="classification")
        # The first example takes its pixels from the context; the second's own pixels win over it.
        merged = client.classify([{}, {"pixels": rows[1]}], "classification", context={"pixels": rows[0]})
    assert merged == plain


@pytest.mark.parametrize(
    "address, path, version",
    [({}, "", 2), ({"version": 1}, "/versions/1", 1), ({"label": "stable"}, "/labels/stable", 1),
     ({"label": "canary"}, "/labels/canary", 2)],
)
def test_regress_answers_what_the_rest_endpoint_answers_for_each_version_and_label(
    constant_server, address, path, version
):
    examples = [{"x": [0.0, 1.0]}, {"x": [5.0, -3.0]}]
    with Client(constant_server.url, "constant") as client:
        results = client.regress(examples, signature_name="regression", **address)
    status, direct = post(constant_server, f"/v1/models/constant{path}:regress",
                          {"signature_name": "regression", "examples": examples})
    assert status == 200 and results == direct["results"]
    assert results == [CONSTANT_VERSIONS[version]] * len(examples)


@pytest.mark.parametrize(
    "method, arguments, status, message",
    [
        ("classify", dict(signature_name="nope"), 400, "No signature was found with the name: nope"),
        ("classify", dict(), 400,
         "Expected classification signature method_name to be tensorflow/serving/classify. "
         "Was: tensorflow/serving/predict"),
        ("regress", dict(signature_name="classification"), 400, "this model has no regression signature"),
        ("classify", dict(signature_name="classification", label="canary"), 400,
         "Unrecognized servable version label: canary"),
        ("classify", dict(signature_name="classification", version=7), 404,
         "Servable not found for request: Specific(digits, 7)"),
        ("classify", dict(signature_name="classification", examples=[]), 400, "'examples' value is an empty array"),
        ("classify", dict(signature_name="classification", examples=[{"pixels": [1, 2.5]}]), 400,
         "Unexpected element type in feature: pixels expecting type: int64"),
        ("regress", dict(context=[1.0]), 400, "Example must be JSON object but got JSON Array (at context)"),
    ],
)
def test_classify_and_regress_raise_the_servers_error(digits_server, rows, method, arguments, status, message):
    arguments = {"examples": [{"pixels": rows[0]}], **arguments}
    with Client(digits_server.url, "digits") as client, pytest.raises(ServingClientError) as error:
        getattr(client, method)(**arguments)
    assert error.value.status == status and message in error.value.message, error.value.message


def test_classify_refuses_a_version_and_a_label_together(digits_server):
    with pytest.raises(ValueError, match="give a version or a label, not both"):
        Client(digits_server.url, "digits").classify([{"pixels": [0.0]}], version=1, label="stable")
