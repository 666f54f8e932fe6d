"""The REST server against TF Serving's REST API documentation (api_rest.md) and its error texts.

The documentation's examples run on `half_plus_three`: a toy model exported
with `export_serving_model(classify=True, regress=...)` whose `value` output
is `0.5 * x + 3` (version 2; version 1 is `0.5 * x + 2`) and whose
`probability` output is `sigmoid(x)`, classified as `negative`/`positive`.
Versions 1 and 2 are both served, labelled `stable` and `canary`. The
digits model (`digits_server`) answers the documentation's binary-feature
classify example and base64 predict.
"""

import base64
import http.client
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.serving.errors import InvalidArgument
from tfdl.serving.example_codec import example_from_json, read_examples_request

TOY = "half_plus_three"


def call(server, method, path, body=None):
    """One request; the status, the JSON body and the raw body."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    assert response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(raw), raw


def _toy_model(bias: float):
    x = keras.Input(shape=(), name="x")
    column = keras.layers.Reshape((1,))(x)
    value = keras.layers.Reshape((), name="value")(keras.layers.Dense(1, name="affine")(column))
    probability = keras.layers.Reshape((), name="probability")(
        keras.layers.Dense(1, activation="sigmoid", name="logit")(column)
    )
    model = keras.Model(x, [value, probability])
    model.get_layer("affine").set_weights([np.array([[0.5]], "float32"), np.array([bias], "float32")])
    model.get_layer("logit").set_weights([np.array([[1.0]], "float32"), np.array([0.0], "float32")])
    return model


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    from tfdl.export.serving_model import export_serving_model
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    base = tmp_path_factory.mktemp("models") / TOY
    for version, bias in ((1, 2.0), (2, 3.0)):
        export_serving_model(
            _toy_model(bias), base / str(version), class_names=["negative", "positive"], classify=True,
            classify_output="probability", regress="value", warmup={"x": np.array([1.0, 2.0], "float32")},
        )
    store = ModelStore()
    store.add_model(TOY, base, version_policy="all", version_labels={"stable": 1, "canary": 2})
    with BackgroundServer(store, max_body_bytes=64 * 1024) as server:
        yield server


@pytest.fixture(scope="module")
def digits_rows(digits_run):
    request = json.loads((digits_run.run_dir / "export" / "sample_request.json").read_text())
    labels = (digits_run.run_dir / "export" / "labels.txt").read_text().split()
    return np.asarray(request["instances"], "float32")[:3], labels


def _sigmoid(x: float) -> float:
    return float(np.float32(1 / (1 + math.exp(-x))))


# --- The documentation's examples -------------------------------------------------------------


def test_model_status_lists_every_served_version_newest_first(toy_server):
    status, body, _ = call(toy_server, "GET", f"/v1/models/{TOY}")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}} for v in ("2", "1")
    ]}


def test_predict_row_format_with_scalar_instances(toy_server):
    status, body, _ = call(toy_server, "POST", f"/v1/models/{TOY}:predict", {"instances": [1.0, 2.0, 5.0]})
    assert status == 200
    # Two outputs: a list of objects, one per instance (api_rest.md, "Response format").
    assert [p["value"] for p in body["predictions"]] == [3.5, 4.0, 5.5]
    np.testing.assert_allclose([p["probability"] for p in body["predictions"]],
                               [_sigmoid(1.0), _sigmoid(2.0), _sigmoid(5.0)], rtol=1e-6)


def test_predict_columnar_format_named_and_plain(toy_server):
    status, named, _ = call(toy_server, "POST", f"/v1/models/{TOY}:predict", {"inputs": {"x": [1.0, 2.0, 5.0]}})
    assert status == 200
    assert named["outputs"]["value"] == [3.5, 4.0, 5.5]
    status, plain, _ = call(toy_server, "POST", f"/v1/models/{TOY}:predict", {"inputs": [1.0, 2.0, 5.0]})
    assert status == 200
    assert plain == named


def test_regress_documentation_example(toy_server):
    # api_rest.md's regress call, with our export's regress signature name.
    status, body, _ = call(toy_server, "POST", f"/v1/models/{TOY}:regress",
                           {"signature_name": "regression", "examples": [{"x": 1.0}, {"x": 2.0}]})
    assert (status, body) == (200, {"results": [3.5, 4.0]})


def test_regress_writes_float32_values_in_shortest_form(toy_server):
    # 0.5 * 0.2 + 3 is 3.0999999046325684 as a double; TF Serving's WriteDecimal prints the float32 as 3.1.
    status, _, raw = call(toy_server, "POST", f"/v1/models/{TOY}:regress",
                          {"signature_name": "regression", "examples": [{"x": 0.2}]})
    assert status == 200
    assert json.loads(raw) == {"results": [3.1]} and b"3.1" in raw and b"3.09" not in raw


def test_classify_answers_label_score_pairs(toy_server):
    status, body, _ = call(toy_server, "POST", f"/v1/models/{TOY}:classify",
                           {"signature_name": "classification", "examples": [{"x": 0.0}, {"x": 2.0}]})
    assert status == 200
    assert body["results"][0] == [["negative", 0.5], ["positive", 0.5]]
    (negative, low), (positive, high) = body["results"][1]
    assert (negative, positive) == ("negative", "positive")
    assert high == pytest.approx(_sigmoid(2.0), rel=1e-6) and low == pytest.approx(1 - _sigmoid(2.0), rel=1e-6)


def test_context_features_go_into_every_example_and_an_examples_own_feature_wins(toy_server):
    status, body, _ = call(toy_server, "POST", f"/v1/models/{TOY}:regress",
                           {"signature_name": "regression", "context": {"x": 1.0}, "examples": [{}, {"x": 5.0}]})
    assert (status, body) == (200, {"results": [3.5, 5.5]})


def test_classify_documentation_example_with_binary_and_string_features(digits_server, digits_rows):
    rows, labels = digits_rows
    examples = [
        {"pixels": rows[0].tolist(), "image": {"b64": "aW1hZ2UgYnl0ZXM="}, "caption": "seaside"},
        {"pixels": rows[1].tolist(), "image": {"b64": "YXdlc29tZSBpbWFnZSBieXRlcw=="}, "caption": "mountains"},
    ]
    status, body, _ = call(digits_server, "POST", "/v1/models/digits:classify",
                           {"signature_name": "classification", "examples": examples})
    assert status == 200
    _, predicted, _ = call(digits_server, "POST", "/v1/models/digits:predict", {"instances": rows[:2].tolist()})
    for result, probabilities in zip(body["results"], predicted["predictions"]):
        assert [label for label, _ in result] == labels
        np.testing.assert_allclose([score for _, score in result], probabilities, rtol=1e-5, atol=1e-7)


def test_predict_base64_strings_into_the_classification_signature(digits_server, digits_rows):
    rows, _ = digits_rows
    serialized = [example_from_json({"pixels": row.tolist()}, "test") for row in rows]
    status, body, _ = call(digits_server, "POST", "/v1/models/digits:predict", {
        "signature_name": "classification",
        "instances": [{"b64": base64.b64encode(s).decode()} for s in serialized],
    })
    assert status == 200
    _, classified, _ = call(digits_server, "POST", "/v1/models/digits:classify", {
        "signature_name": "classification", "examples": [{"pixels": row.tolist()} for row in rows]})
    for prediction, result in zip(body["predictions"], classified["results"]):
        assert prediction["classes"] == [label for label, _ in result]
        np.testing.assert_allclose(prediction["scores"], [score for _, score in result], rtol=1e-6)


# --- Versions and labels on every endpoint ---------------------------------------------------------

ADDRESSES = [("", 2), ("/versions/1", 1), ("/versions/2", 2), ("/labels/stable", 1), ("/labels/canary", 2)]


@pytest.mark.parametrize("address, version", ADDRESSES)
def test_every_endpoint_honours_versions_and_labels(toy_server, address, version):
    model = f"/v1/models/{TOY}{address}"
    bias = {1: 2.0, 2: 3.0}[version]
    status, body, _ = call(toy_server, "GET", model)
    assert status == 200
    listed = [entry["version"] for entry in body["model_version_status"]]
    assert listed == (["2", "1"] if address == "" else [str(version)])
    status, body, _ = call(toy_server, "GET", model + "/metadata")
    assert (status, body["model_spec"]["version"]) == (200, str(version))
    status, body, _ = call(toy_server, "POST", model + ":predict", {"instances": [2.0]})
    assert (status, body["predictions"][0]["value"]) == (200, 1.0 + bias)
    status, body, _ = call(toy_server, "POST", model + ":regress",
                           {"signature_name": "regression", "examples": [{"x": 2.0}]})
    assert (status, body) == (200, {"results": [1.0 + bias]})
    status, body, _ = call(toy_server, "POST", model + ":classify",
                           {"signature_name": "classification", "examples": [{"x": 0.0}]})
    assert (status, body) == (200, {"results": [[["negative", 0.5], ["positive", 0.5]]]})


def test_paths_are_case_insensitive_and_model_names_percent_decoded(toy_server):
    status, body, _ = call(toy_server, "POST", "/V1/MODELS/half%5Fplus%5Fthree/LABELS/stable:REGRESS",
                           {"signature_name": "regression", "examples": [{"x": 2.0}]})
    assert (status, body) == (200, {"results": [3.0]})


def test_openapi_document_is_served_outside_the_model_paths(toy_server):
    status, body, _ = call(toy_server, "GET", "/v1/openapi.json")
    assert status == 200
    assert body["openapi"].startswith("3.0")
    assert {f"/v1/models/{{model_name}}{a}:{m}" for a in ("", "/versions/{version}", "/labels/{label}")
            for m in ("predict", "classify", "regress")} <= set(body["paths"])
    # A model may be called openapi.json: its paths still reach the model store.
    status, body, _ = call(toy_server, "GET", "/v1/models/openapi.json")
    assert (status, body) == (404, {"error": "Could not find any versions of model openapi.json"})
    status, body, _ = call(toy_server, "POST", "/v1/openapi.json", {})
    assert (status, body) == (400, {"error": "Malformed request: POST /v1/openapi.json"})


# --- Errors: each a 4xx with {"error": ...} --------------------------------------------------------

REGRESS = {"signature_name": "regression"}
ERRORS = [
    # malformed bodies
    (":predict", b"{oops", 400, "JSON Parse error"),
    (":classify", b"{oops", 400, "JSON Parse error"),
    (":regress", b"", 400, "JSON Parse error: The document is empty"),
    (":predict", b"[1.0]", 400, "Is not object"),
    (":predict", b"[" * 5000 + b"]" * 5000, 400, "nests arrays or objects too deeply"),
    (":predict", b'{"instances": [' + b"1" * 5000 + b"]}", 400, "JSON Parse error: Exceeds the limit"),
    (":predict", b'{"instances": ["\\ud800"], "signature_name": "classification"}', 400,
     "The surrogate pair in string is invalid"),
    # predict
    (":predict", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances' key"),
    (":predict", {"instances": [1.0], "inputs": [1.0]}, 400, "expecting only one of 'inputs' or 'instances'"),
    (":predict", {"instances": []}, 400, "No values in 'instances' array"),
    (":predict", {"instances": 1.0}, 400, "Expecting 'instances' to be an list/array"),
    (":predict", {"instances": [[1.0, 2.0], [3.0]]}, 400, "lists of unequal length (ragged)"),
    (":predict", {"instances": ["one"]}, 400, "values of type string are not of expected type float32"),
    (":predict", {"inputs": [[1.0, 2.0]]}, 400, "input 'x' has shape [1, 2] but the signature expects x: float32[-1]"),
    (":predict", {"inputs": {"y": [1.0]}}, 400, "Missing named input: x in 'inputs' object."),
    (":predict", {"instances": [1.0], "signature_name": 7}, 400, "'signature_name' key must be a string value"),
    (":predict", {"instances": [1.0], "signature_name": "nope"}, 400,
     'Serving signature name: "nope" not found in signature def'),
    # classify and regress
    (":classify", {"signature_name": "classification"}, 400,
     "When method is classify, key 'examples' is expected and was not found"),
    (":regress", {**REGRESS, "examples": {"x": 1.0}}, 400, "Expecting 'examples' value to be an list/array"),
    (":regress", {**REGRESS, "examples": []}, 400, "'examples' value is an empty array"),
    (":regress", {**REGRESS, "examples": [[1.0]]}, 400, "Example must be JSON object but got JSON Array (at examples[0])"),
    (":regress", {**REGRESS, "context": 3, "examples": [{}]}, 400, "Example must be JSON object but got JSON Number (at context)"),
    (":regress", {**REGRESS, "examples": [{"x": None}]}, 400, "Feature: x has element with unexpected JSON type: Null"),
    (":regress", {**REGRESS, "examples": [{"x": [[1.0]]}]}, 400, "Feature: x has element with unexpected JSON type: Array"),
    (":regress", {**REGRESS, "examples": [{"x": {"a": 1}}]}, 400, "Feature: x has element with unexpected JSON type: Object"),
    (":regress", {**REGRESS, "examples": [{"x": [1, 2.5]}]}, 400, "Unexpected element type in feature: x expecting type: int64"),
    (":regress", {**REGRESS, "examples": [{"x": {"b64": "%%%"}}]}, 400, "Unable to base64 decode"),
    (":regress", {**REGRESS, "examples": [{"x": 2**64}]}, 400, "Feature: x has element 18446744073709551616 outside the int64 range"),
    # A feature the signature's parser cannot read: missing, an int64_list for a float, two values for one.
    (":regress", {**REGRESS, "examples": [{"y": 1.0}]}, 400, "the model rejected the input"),
    (":regress", {**REGRESS, "examples": [{"x": 1}]}, 400, "the model rejected the input"),
    (":regress", {**REGRESS, "examples": [{"x": [1.0, 2.0]}]}, 400, "the model rejected the input"),
    (":classify", {"signature_name": "nope", "examples": [{"x": 1.0}]}, 400,
     "No signature was found with the name: nope (this model has: classification, regression, serving_default)"),
    (":classify", {"examples": [{"x": 1.0}]}, 400,
     "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict"
     ' (signature "serving_default" takes x; pass "signature_name": one of classification)'),
    (":regress", {"signature_name": "classification", "examples": [{"x": 1.0}]}, 400,
     "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify"),
]


@pytest.mark.parametrize("method, body, status, message", ERRORS, ids=[m for _, _, _, m in ERRORS])
def test_bad_requests_get_the_right_status_and_a_json_error(toy_server, method, body, status, message):
    got, data, _ = call(toy_server, "POST", f"/v1/models/{TOY}{method}", body)
    assert (got, list(data)) == (status, ["error"])
    assert message in data["error"]
    assert call(toy_server, "POST", f"/v1/models/{TOY}:predict", {"instances": [1.0]})[0] == 200


ADDRESS_ERRORS = [
    ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/nope:classify", {"examples": [{"x": 1.0}]}, 404, "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/nope:regress", {"examples": {}}, 400, "Expecting 'examples' value to be an list/array"),
    ("POST", f"/v1/models/{TOY}/versions/9:regress", {"examples": [{"x": 1.0}]}, 404,
     f"Servable not found for request: Specific({TOY}, 9)"),
    ("POST", f"/v1/models/{TOY}/labels/nope:classify", {"examples": [{"x": 1.0}]}, 400,
     "Unrecognized servable version label: nope"),
    ("POST", f"/v1/models/{TOY}/versions/99999999999999999999:predict", {"instances": [1.0]}, 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
    ("GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request: Latest(nope)"),
    ("GET", f"/v1/models/{TOY}/versions/9", None, 404, f"Could not find version 9 of model {TOY}"),
    ("GET", f"/v1/models/{TOY}/versions/9/metadata", None, 404, f"Specific({TOY}, 9)"),
    ("GET", f"/v1/models/{TOY}/labels/nope/metadata", None, 400, "Unrecognized servable version label: nope"),
    ("GET", f"/v1/models/{TOY}/labels/nope", None, 400, "Unrecognized servable version label: nope"),
    ("GET", f"/v1/models/{TOY}:predict", None, 400, f"Malformed request: GET /v1/models/{TOY}:predict"),
    ("DELETE", f"/v1/models/{TOY}", None, 400, f"Malformed request: DELETE /v1/models/{TOY}"),
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v2/models/x", None, 404, "Not Found"),
]


@pytest.mark.parametrize("method, path, body, status, message", ADDRESS_ERRORS,
                         ids=[f"{m} {p}" for m, p, *_ in ADDRESS_ERRORS])
def test_unknown_models_versions_and_labels(toy_server, method, path, body, status, message):
    got, data, _ = call(toy_server, method, path, body)
    assert (got, list(data)) == (status, ["error"])
    assert message in data["error"]


def test_an_oversized_body_is_refused_with_413(digits_server):
    rows = {"instances": [[1.0] * 64] * 400}  # about 100 KB against the fixture's 64 KiB limit
    status, body, _ = call(digits_server, "POST", "/v1/models/digits:classify", rows)
    assert status == 413 and "exceeds the limit of 65536 bytes" in body["error"]


# --- JSON -> tf.train.Example, as TF Serving builds them --------------------------------------------


def test_feature_kinds_follow_the_json_types():
    example = tf.train.Example.FromString(example_from_json({
        "ints": [1, -2, 2**63 - 1], "flag": [True, False], "floats": [0.5, 1e3], "one": 2.5,
        "words": ["héllo", "b"], "blob": {"b64": base64.b64encode(b"\x00\xff").decode()}, "empty": [],
    }, "test"))
    feature = example.features.feature
    assert list(feature["ints"].int64_list.value) == [1, -2, 2**63 - 1]
    assert list(feature["flag"].int64_list.value) == [1, 0]
    assert list(feature["floats"].float_list.value) == [0.5, 1000.0]
    assert list(feature["one"].float_list.value) == [2.5]
    assert list(feature["words"].bytes_list.value) == ["héllo".encode(), b"b"]
    assert list(feature["blob"].bytes_list.value) == [b"\x00\xff"]
    assert feature["empty"].WhichOneof("kind") is None


def test_context_merges_into_each_example_and_loses_to_the_examples_own_features():
    request = read_examples_request(
        {"context": {"shared": 1, "x": 0.0}, "examples": [{"x": 1.5}, {}]}, "regress")
    assert request.signature_name == "serving_default"
    first, second = (tf.train.Example.FromString(s).features.feature for s in request.examples)
    assert list(first["shared"].int64_list.value) == [1] and list(first["x"].float_list.value) == [1.5]
    assert list(second["shared"].int64_list.value) == [1] and list(second["x"].float_list.value) == [0.0]


def test_a_bad_feature_names_the_example_it_is_in():
    with pytest.raises(InvalidArgument, match=r"^Feature: x has element with unexpected JSON type: Null \(at examples\[1\]\)$"):
        read_examples_request({"examples": [{"x": 1.0}, {"x": [1.0, None]}]}, "classify")


# --- Which signatures classify and regress take, and how their outputs are checked -------------------


def _servable(signatures: dict):
    """A servable of fake signatures: name -> (method_name, inputs, outputs), specs as (dtype, shape)."""
    from tfdl.serving.json_codec import TensorSpec
    from tfdl.serving.model_store import Servable, Signature

    def specs(table):
        return {k: TensorSpec(k, np.dtype(dtype), shape) for k, (dtype, shape) in table.items()}

    return Servable("m", 1, None, {
        name: Signature(name, None, specs(inputs), specs(outputs)) for name, (_, inputs, outputs) in signatures.items()
    }, {"signature_def": {name: {"method_name": method} for name, (method, _, _) in signatures.items()}})


EXAMPLES_IN = {"inputs": (object, (None,))}
PREDICT = "tensorflow/serving/predict"


def test_a_classify_shaped_signature_serves_whatever_its_method_name():
    from tfdl.serving.example_codec import examples_signature

    servable = _servable({
        "native": (PREDICT, EXAMPLES_IN, {"scores": ("float32", (None, 2))}),
        "serving_default": (PREDICT, {"pixels": ("float32", (None, 64))}, {"p": ("float32", (None, 2))}),
        "broken": ("tensorflow/serving/classify", EXAMPLES_IN, {"logits": ("float32", (None, 2))}),
    })
    assert examples_signature(servable, "classify", "native").name == "native"
    with pytest.raises(InvalidArgument, match=r'Was: tensorflow/serving/predict \(signature "serving_default" takes '
                                              r'pixels; pass "signature_name": one of native\)'):
        examples_signature(servable, "classify", "serving_default")
    with pytest.raises(InvalidArgument, match=r'outputs to contain at least one of "classes" or "scores".*"broken"'):
        examples_signature(servable, "classify", "broken")
    with pytest.raises(InvalidArgument, match="this model has no regression signature: export one"):
        examples_signature(servable, "regress", "serving_default")


def test_classify_outputs_fill_what_the_signature_lacks_as_tf_serving_does():
    from tfdl.serving.example_codec import classification_results

    scores_only = json.loads(classification_results({"scores": np.array([[0.25, 0.75]], "float32")}, 1))
    assert scores_only == {"results": [[["", 0.25], ["", 0.75]]]}
    classes_only = json.loads(classification_results({"classes": np.array([[b"a", b"b"]], object)}, 1))
    assert classes_only == {"results": [[["a", 0.0], ["b", 0.0]]]}
    with pytest.raises(InvalidArgument, match=r"Tensors class and score should match in dim_size\(1\). Got 2 vs. 3"):
        classification_results({"classes": np.array([[b"a", b"b"]], object), "scores": np.zeros((1, 3), "float32")}, 1)
    with pytest.raises(InvalidArgument, match="Expected scores Tensor of DT_FLOAT. Got: float64"):
        classification_results({"scores": np.zeros((1, 2))}, 1)
    with pytest.raises(InvalidArgument, match="Expected scores output batch size of 2. Got: 1"):
        classification_results({"scores": np.zeros((1, 2), "float32")}, 2)


def test_regress_outputs_take_a_batch_or_a_batch_of_one_column():
    from tfdl.serving.example_codec import regression_results

    assert json.loads(regression_results({"outputs": np.array([[0.5], [2.0]], "float32")}, 2)) == {"results": [0.5, 2.0]}
    with pytest.raises(InvalidArgument, match=r"either \[batch_size\] or \[batch_size, 1\] but got \[2, 2\]"):
        regression_results({"outputs": np.zeros((2, 2), "float32")}, 2)
    with pytest.raises(InvalidArgument, match="Input batch size did not match output batch size: 3 vs. 2"):
        regression_results({"outputs": np.zeros(2, "float32")}, 3)
