"""The gRPC endpoint against TF Serving's API, called with the official `tensorflow-serving-api` stubs."""

import logging
import re
import threading
from concurrent import futures

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from tfdl.export.serving_model import export_serving_model
from tfdl.serving.errors import ServingError
from tfdl.serving.grpc_server import GrpcServer, status_code
from tfdl.serving.model_store import ModelStore

# The tiny regression model's versions: value = x @ weights + bias, exact in float32.
TINY_VERSIONS = {1: ([1.0, 2.0, 3.0], 0.5), 2: ([-1.0, 0.0, 4.0], -2.0)}
TINY_X = np.array([[1, 2, 3], [0, -1, 5], [4, 0, 0]], dtype="float32")


class Stubs:
    """The official clients over one channel."""

    def __init__(self, address: str):
        self.channel = grpc.insecure_channel(address)
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)


@pytest.fixture(scope="module")
def digits(digits_store):
    with GrpcServer(digits_store, port=0) as server:
        stubs = Stubs(server.address)
        yield stubs
        stubs.channel.close()


def tiny_model(weights, bias):
    inputs = keras.Input((3,), name="x")
    outputs = keras.layers.Dense(1, name="value")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("value").set_weights([np.array(weights, "float32").reshape(3, 1), np.array([bias], "float32")])
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Versions 1 and 2 of a regression model, both loaded, labelled stable and canary."""
    base = tmp_path_factory.mktemp("tiny")
    for version, (weights, bias) in TINY_VERSIONS.items():
        export_serving_model(tiny_model(weights, bias), base / str(version), regress="value",
                             warmup={"x": TINY_X}, model_name="tiny")
    store = ModelStore()
    store.add_model("tiny", base, version_policy="all", version_labels={"stable": 1, "canary": 2})
    with GrpcServer(store, port=0) as server:
        stubs = Stubs(server.address)
        yield stubs
        stubs.channel.close()


def expected_value(version, x):
    weights, bias = TINY_VERSIONS[version]
    return x @ np.array(weights, "float32") + np.float32(bias)


def predict_request(name="digits", inputs=None, signature_name="", version=None, label=None, output_filter=()):
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in (inputs or {}).items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        request.inputs[key].CopyFrom(proto)
    return request


def example(**features):
    feature = {}
    for key, values in features.items():
        feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(values).tolist()))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def classify_request(examples, name="digits", signature_name="classification", context=None):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    if context is None:
        request.input.example_list.examples.extend(examples)
    else:
        request.input.example_list_with_context.context.CopyFrom(context)
        request.input.example_list_with_context.examples.extend(examples)
    return request


def serialized(rows):
    return np.array([example(pixels=row).SerializeToString() for row in rows], dtype=object)


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).integers(0, 17, size=(5, 64)).astype("float32")


def test_predict_equals_the_signature_and_fills_the_model_spec(digits, digits_store, rows):
    response = digits.predict.Predict(predict_request(inputs={"pixels": rows}), timeout=30)
    expected = digits_store.get("digits").signature("serving_default")({"pixels": rows})["probabilities"]
    assert list(response.outputs) == ["probabilities"]
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["probabilities"]), expected)
    assert response.model_spec.name == "digits"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_predict_on_string_inputs_honours_the_output_filter(digits, digits_store, rows):
    examples = serialized(rows[:3])
    request = predict_request(inputs={"inputs": tf.make_tensor_proto(examples)}, signature_name="classification",
                              output_filter=["scores"])
    response = digits.predict.Predict(request, timeout=30)
    assert list(response.outputs) == ["scores"]
    expected = digits_store.get("digits").signature("classification")({"inputs": examples})["scores"]
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["scores"]), expected)
    assert response.model_spec.signature_name == "classification"


def test_versions_and_labels_address_their_own_model(tiny):
    for version, label in [(1, "stable"), (2, "canary")]:
        for addressing in [{"version": version}, {"label": label}]:
            response = tiny.predict.Predict(predict_request("tiny", {"x": TINY_X}, **addressing), timeout=30)
            np.testing.assert_array_equal(tf.make_ndarray(response.outputs["value"])[:, 0],
                                          expected_value(version, TINY_X))
            assert response.model_spec.version.value == version
    latest = tiny.predict.Predict(predict_request("tiny", {"x": TINY_X}), timeout=30)
    assert latest.model_spec.version.value == 2


def test_classify_returns_the_classify_signatures_labels_and_scores(digits, digits_store, rows):
    response = digits.predict.Classify(classify_request([example(pixels=row) for row in rows]), timeout=30)
    expected = digits_store.get("digits").signature("classification")({"inputs": serialized(rows)})
    classifications = response.result.classifications
    assert len(classifications) == len(rows)
    for got, want_scores in zip(classifications, expected["scores"]):
        assert [c.label for c in got.classes] == [str(i) for i in range(10)]
        np.testing.assert_array_equal(np.array([c.score for c in got.classes], "float32"), want_scores)
    assert response.model_spec.name == "digits"
    assert response.model_spec.signature_name == "classification"
    assert response.model_spec.version.value == 1


def test_classify_merges_the_context_into_each_example_which_wins_on_shared_features(digits, digits_store, rows):
    request = classify_request([tf.train.Example(), example(pixels=rows[1])], context=example(pixels=rows[0]))
    response = digits.predict.Classify(request, timeout=30)
    expected = digits_store.get("digits").signature("classification")({"inputs": serialized(rows[:2])})["scores"]
    got = np.array([[c.score for c in item.classes] for item in response.result.classifications], "float32")
    np.testing.assert_array_equal(got, expected)


def test_regress_returns_one_value_per_example(tiny):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "regression"
    request.model_spec.version.value = 1
    request.input.example_list.examples.extend(example(x=row) for row in TINY_X)
    response = tiny.predict.Regress(request, timeout=30)
    np.testing.assert_array_equal([r.value for r in response.result.regressions], expected_value(1, TINY_X))
    assert (response.model_spec.name, response.model_spec.version.value) == ("tiny", 1)
    assert response.model_spec.signature_name == "regression"


def test_metadata_packs_the_signature_defs_as_tf_serving_does(digits):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "digits"
    response = digits.predict.GetModelMetadata(request, timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value) == ("digits", 1)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    signatures = signature_map.signature_def
    assert {"serving_default", "classification"} <= set(signatures)
    pixels = signatures["serving_default"].inputs["pixels"]
    assert pixels.dtype == tf.float32.as_datatype_enum
    assert [d.size for d in pixels.tensor_shape.dim] == [-1, 64]
    assert signatures["classification"].method_name == "tensorflow/serving/classify"
    assert set(signatures["classification"].outputs) == {"classes", "scores"}


def test_model_status_lists_available_versions(digits, tiny):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "digits"
    (status,) = digits.models.GetModelStatus(request, timeout=30).model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""
    request.model_spec.name = "tiny"
    assert [s.version for s in tiny.models.GetModelStatus(request, timeout=30).model_version_status] == [2, 1]
    request.model_spec.version_label = "stable"
    assert [s.version for s in tiny.models.GetModelStatus(request, timeout=30).model_version_status] == [1]


def bad_tensor():
    proto = tf.make_tensor_proto(np.ones((2, 64), "float32"))
    proto.tensor_content = proto.tensor_content[:-4]
    return proto


ONE_ROW = np.ones((1, 64), "float32")
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "request_args, code, message",
    [
        (dict(name="nope", inputs={"pixels": ONE_ROW}), grpc.StatusCode.NOT_FOUND,
         r"Servable not found for request: Latest\(nope\)"),
        (dict(inputs={"pixels": ONE_ROW}, version=7), grpc.StatusCode.NOT_FOUND,
         r"Servable not found for request: Specific\(digits, 7\)"),
        (dict(inputs={"pixels": ONE_ROW}, label="canary"), INVALID,
         "Unrecognized servable version label: canary"),
        (dict(inputs={"pixels": ONE_ROW}, signature_name="nope"), grpc.StatusCode.FAILED_PRECONDITION,
         r'Serving signature key "nope" not found\. digits version 1 has \[.classification., .serving_default.\]'),
        (dict(inputs={"pixels": ONE_ROW.astype("float64")}), INVALID,
         r"input 'pixels' is a float64 tensor but the signature expects pixels: float32\[-1, 64\]"),
        (dict(inputs={"pixels": np.ones((2, 63), "float32")}), INVALID,
         r"input 'pixels' has shape \[2, 63\] but the signature expects pixels: float32\[-1, 64\]"),
        (dict(inputs={"pixels": ONE_ROW, "extra": ONE_ROW}), INVALID,
         r"input size does not match signature: 2!=1 len\({extra,pixels}\) != len\({pixels}\)\. "
         r"Sent extra: {extra}\. Missing but required: {}\."),
        (dict(inputs={}), INVALID, r"Missing but required: {pixels}"),
        (dict(inputs={"pixels": bad_tensor()}), INVALID, "tensor parsing error: pixels"),
        (dict(inputs={"pixels": ONE_ROW}, output_filter=["nope"]), INVALID,
         r"output tensor alias not found in signature: nope Outputs expected to be in the set {probabilities}\."),
        (dict(inputs={"pixels": ONE_ROW}, output_filter=["probabilities"] * 2), INVALID,
         "duplicate output tensor alias: probabilities"),
    ],
)
def test_predict_errors_carry_tf_servings_codes_and_texts(digits, request_args, code, message):
    with pytest.raises(grpc.RpcError) as caught:
        digits.predict.Predict(predict_request(**request_args), timeout=30)
    assert caught.value.code() == code
    assert re.search(message, caught.value.details()), caught.value.details()


@pytest.mark.parametrize(
    "request_args, message",
    [
        (dict(examples=[example(pixels=np.ones(64))], signature_name="nope"),
         "No signature was found with the name: nope"),
        (dict(examples=[example(pixels=np.ones(64))], signature_name=""),
         "Expected classification signature method_name to be tensorflow/serving/classify. "
         "Was: tensorflow/serving/predict .*one of classification"),
        (dict(examples=[]), "Input is empty"),
        (dict(examples=[example(other=np.ones(64))]), "the model rejected the input"),
        (dict(examples=[example(pixels=np.ones(63))]), "the model rejected the input"),
    ],
)
def test_classify_errors_are_invalid_argument(digits, request_args, message):
    with pytest.raises(grpc.RpcError) as caught:
        digits.predict.Classify(classify_request(**request_args), timeout=30)
    assert caught.value.code() == INVALID
    assert re.search(message, caught.value.details()), caught.value.details()


def test_regress_on_a_model_without_a_regression_signature_is_invalid_argument(digits):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "digits"
    request.model_spec.signature_name = "classification"
    request.input.example_list.examples.append(example(pixels=np.ones(64)))
    with pytest.raises(grpc.RpcError) as caught:
        digits.predict.Regress(request, timeout=30)
    assert caught.value.code() == INVALID
    assert caught.value.details().startswith(
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify"
    )
    assert "this model has no regression signature" in caught.value.details()


@pytest.mark.parametrize(
    "fields, message",
    [([], "must specify at least one metadata_field"), (["nope"], "Metadata field nope is not supported")],
)
def test_metadata_errors(digits, fields, message):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
    request.model_spec.name = "digits"
    with pytest.raises(grpc.RpcError) as caught:
        digits.predict.GetModelMetadata(request, timeout=30)
    assert caught.value.code() == INVALID and message in caught.value.details()


def test_model_status_errors(digits):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as caught:
        digits.models.GetModelStatus(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Could not find any versions of model nope"
    request.model_spec.name = "digits"
    request.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as caught:
        digits.models.GetModelStatus(request, timeout=30)
    assert caught.value.details() == "Could not find version 9 of model digits"


def test_requests_without_a_model_spec_and_unsupported_methods(digits):
    metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    no_spec = [(digits.predict.GetModelMetadata, metadata),
               (digits.models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest())]
    for call, request in no_spec:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=30)
        assert (caught.value.code(), caught.value.details()) == (INVALID, "Missing ModelSpec")
    with pytest.raises(grpc.RpcError) as caught:
        digits.predict.MultiInference(inference_pb2.MultiInferenceRequest(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details().startswith("MultiInference is not supported by this server")


# --- HandleReloadConfigRequest ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def reloadable(digits_run):
    """A server of its own store, serving the digits export as `digits`, for reloads to change."""
    store = ModelStore()
    store.add_model("digits", digits_run.serving_dir)
    with GrpcServer(store, port=0) as server:
        stubs = Stubs(server.address)
        yield stubs, store
        stubs.channel.close()


def model_config(name, base_path, **fields):
    fields.setdefault("model_platform", "tensorflow")
    return model_server_config_pb2.ModelConfig(name=name, base_path=str(base_path), **fields)


def reload_request(*configs):
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.config.extend(configs)
    return request


def model_status(stubs, name):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    return [(s.version, s.state) for s in stubs.models.GetModelStatus(request, timeout=30).model_version_status]


def probabilities(stubs, name, label=None):
    response = stubs.predict.Predict(predict_request(name, {"pixels": ONE_ROW}, label=label), timeout=30)
    return tf.make_ndarray(response.outputs["probabilities"])


AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


def test_reload_config_serves_a_new_model_and_unloads_a_dropped_one(reloadable, digits_run):
    stubs, store = reloadable
    base = digits_run.serving_dir
    before = probabilities(stubs, "digits")
    try:
        second = model_config("second", base, version_labels={"stable": 1})
        response = stubs.models.HandleReloadConfigRequest(reload_request(model_config("digits", base), second),
                                                          timeout=120)
        assert response.HasField("status")
        assert (response.status.error_code, response.status.error_message) == (0, "")
        assert model_status(stubs, "second") == [(1, AVAILABLE)]
        assert store.model_names() == ["digits", "second"]
        # The same export under a second name (and its label) answers as the first one does.
        np.testing.assert_array_equal(probabilities(stubs, "second"), before)
        np.testing.assert_array_equal(probabilities(stubs, "second", label="stable"), before)
        np.testing.assert_array_equal(probabilities(stubs, "digits"), before)

        stubs.models.HandleReloadConfigRequest(reload_request(model_config("second", base)), timeout=120)
        assert model_status(stubs, "digits") == [(1, END)]
        with pytest.raises(grpc.RpcError) as caught:
            probabilities(stubs, "digits")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            probabilities(stubs, "second", label="stable")
        assert caught.value.details() == "Unrecognized servable version label: stable"
    finally:
        stubs.models.HandleReloadConfigRequest(reload_request(model_config("digits", base)), timeout=120)
    assert store.model_names() == ["digits"]
    np.testing.assert_array_equal(probabilities(stubs, "digits"), before)


def _empty_list():
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.SetInParent()
    return request


UNCHANGED = "; the models served before this request are served unchanged$"


@pytest.mark.parametrize(
    "make_request, message",
    [
        (lambda base, tmp: model_management_pb2.ReloadConfigRequest(),
         "^ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently "
         "supported"),
        (lambda base, tmp: _empty_list(), "^ReloadConfigRequest.config: a models.config needs at least one model$"),
        (lambda base, tmp: reload_request(model_config("second", "models/digits")),
         r"^Expected model second to have an absolute path or URI; got base_path\(\)=models/digits "
         r"\(ReloadConfigRequest.config, models\[0\]; this server has no model_config_list_root_dir"),
        (lambda base, tmp: reload_request(model_config("second", tmp / "missing")),
         r"^model 'second' \(.*missing\): nothing to serve: cannot list .*missing: \[Errno 2\]" + f".*{UNCHANGED}"),
        (lambda base, tmp: reload_request(model_config("second", tmp / "corrupt")),
         r"^model 'second' \(.*corrupt\): nothing to serve: version 1: .*" + UNCHANGED),
        (lambda base, tmp: reload_request(model_config("second", base, version_labels={"stable": 7})),
         r"^Request to assign label to version 7 of model second, which is not currently available for inference "
         r"\(label 'stable'; served versions: \[1\]\)" + UNCHANGED),
        (lambda base, tmp: reload_request(model_config("second", "gs://bucket/digits")),
         r"^ReloadConfigRequest.config, models\[0\] \('second'\), field 'base_path': 'gs://bucket/digits' is a URI"),
        (lambda base, tmp: reload_request(model_config("second", base, model_platform="pytorch")),
         r"field 'model_platform': 'pytorch' is not served by tfdl; use 'tensorflow'"),
        (lambda base, tmp: reload_request(model_config("second", base, model_platform="")),
         r"^ReloadConfigRequest.config: model 'second': name, base_path and model_platform must not be empty$"),
        (lambda base, tmp: reload_request(model_config("a b", base)),
         r"^ReloadConfigRequest.config, models\[0\], field 'name': 'a b' is not a model name"),
        (lambda base, tmp: reload_request(model_config("second", base), model_config("second", base)),
         r"^ReloadConfigRequest.config: models \['second'\] are listed more than once"),
        (lambda base, tmp: reload_request(model_config("second", base, logging_config={})),
         r"^ReloadConfigRequest.config: model 'second': fields \['logging_config'\] are not handled by tfdl"),
    ],
    ids=["no-model-config-list", "empty-list", "relative-path", "missing-path", "corrupt-savedmodel",
         "label-to-unavailable-version", "uri", "platform", "no-platform", "bad-name", "twice", "unhandled-field"],
)
def test_a_bad_reload_config_is_invalid_argument_and_the_old_model_keeps_serving(
    reloadable, digits_run, tmp_path, make_request, message
):
    stubs, store = reloadable
    (tmp_path / "corrupt" / "1").mkdir(parents=True)
    (tmp_path / "corrupt" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    before = probabilities(stubs, "digits")
    with pytest.raises(grpc.RpcError) as caught:
        stubs.models.HandleReloadConfigRequest(make_request(digits_run.serving_dir, tmp_path), timeout=120)
    assert caught.value.code() == INVALID
    assert re.search(message, caught.value.details()), caught.value.details()
    # Every bad config above replaces `digits`: it still serves, and nothing else does.
    assert store.model_names() == ["digits"]
    assert model_status(stubs, "digits") == [(1, AVAILABLE)]
    np.testing.assert_array_equal(probabilities(stubs, "digits"), before)
    with pytest.raises(grpc.RpcError) as caught:
        probabilities(stubs, "second")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_32_concurrent_predicts_each_get_their_own_answer(digits, digits_store):
    inputs = np.random.default_rng(1).integers(0, 17, size=(32, 64)).astype("float32")
    expected = digits_store.get("digits").signature("serving_default")({"pixels": inputs})["probabilities"]
    barrier = threading.Barrier(32)

    def call(index):
        barrier.wait(timeout=30)
        response = digits.predict.Predict(predict_request(inputs={"pixels": inputs[index:index + 1]}), timeout=30)
        return tf.make_ndarray(response.outputs["probabilities"])[0]

    with futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(call, range(32)))
    np.testing.assert_allclose(np.stack(answers), expected, rtol=1e-6, atol=1e-7)


def test_a_message_over_the_limit_is_resource_exhausted_and_the_server_keeps_serving(digits_store):
    with GrpcServer(digits_store, port=0, max_message_bytes=64 * 1024) as server:
        stubs = Stubs(server.address)
        with pytest.raises(grpc.RpcError) as caught:
            stubs.predict.Predict(predict_request(inputs={"pixels": np.ones((400, 64), "float32")}), timeout=30)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        response = stubs.predict.Predict(predict_request(inputs={"pixels": ONE_ROW}), timeout=30)
        assert tf.make_ndarray(response.outputs["probabilities"]).shape == (1, 10)
        stubs.channel.close()


class FailingStore:
    """A store whose lookups raise `error`, to drive the server's error mapping."""

    def __init__(self, error):
        self.error = error

    def get(self, *args):
        raise self.error

    def model_names(self):
        return ["broken"]


@pytest.mark.parametrize(
    "error, code",
    [
        (ServingError("the batch queue is full; retry later", status=503), grpc.StatusCode.UNAVAILABLE),
        (ServingError("not yet", status=501), grpc.StatusCode.UNIMPLEMENTED),
        (ServingError("too large", status=413), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ServingError("x" * 2000, status=400), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_serving_errors_map_from_their_http_status(error, code):
    with GrpcServer(FailingStore(error), port=0) as server:
        stubs = Stubs(server.address)
        with pytest.raises(grpc.RpcError) as caught:
            stubs.predict.Predict(predict_request("broken", {"pixels": ONE_ROW}), timeout=30)
        stubs.channel.close()
    assert caught.value.code() == code
    # TF Serving cuts messages at 1024 characters.
    expected = error.message if len(error.message) <= 1024 else error.message[:1024] + "...TRUNCATED"
    assert caught.value.details() == expected


def test_an_unexpected_exception_is_logged_and_answered_internal_and_the_server_survives(caplog):
    with GrpcServer(FailingStore(RuntimeError("boom")), port=0) as server:
        stubs = Stubs(server.address)
        for _ in range(2):
            with caplog.at_level(logging.ERROR, logger="tfdl.serving"), pytest.raises(grpc.RpcError) as caught:
                stubs.predict.Predict(predict_request("broken", {"pixels": ONE_ROW}), timeout=30)
            assert caught.value.code() == grpc.StatusCode.INTERNAL
            assert caught.value.details() == (
                "Predict failed with an internal error (RuntimeError); the server log has the details"
            )
        stubs.channel.close()
    records = [r for r in caplog.records if r.message == "internal error serving gRPC Predict"]
    assert len(records) == 2 and "boom" in str(records[0].exc_info[1])


@pytest.mark.parametrize(
    "status, code",
    [(400, "INVALID_ARGUMENT"), (404, "NOT_FOUND"), (413, "RESOURCE_EXHAUSTED"), (429, "RESOURCE_EXHAUSTED"),
     (501, "UNIMPLEMENTED"), (503, "UNAVAILABLE"), (418, "INVALID_ARGUMENT"), (500, "INTERNAL")],
)
def test_status_code_table(status, code):
    assert status_code(ServingError("x", status=status)).name == code


def test_port_zero_picks_a_free_port_a_taken_port_is_refused_and_stop_closes_it(digits_store):
    server = GrpcServer(digits_store, port=0).start()
    assert server.port > 0 and server.address == f"127.0.0.1:{server.port}"
    with pytest.raises(OSError, match=f"cannot listen for gRPC on 127.0.0.1:{server.port}: the port is in use"):
        GrpcServer(digits_store, port=server.port).start()
    with pytest.raises(RuntimeError, match="already started"):
        server.start()
    server.stop()
    assert server.wait(timeout=1)
    stubs = Stubs(server.address)
    with pytest.raises(grpc.RpcError) as caught:
        stubs.predict.Predict(predict_request(inputs={"pixels": ONE_ROW}), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    stubs.channel.close()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(port=70000), "port must be 0 to 65535"),
        (dict(max_workers=0), "max_workers must be at least 1"),
        (dict(max_message_bytes=2**31), "max_message_bytes must be 1 to 2147483647"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        GrpcServer(ModelStore(), **arguments)
