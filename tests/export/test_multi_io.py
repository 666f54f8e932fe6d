"""Models with dict inputs, several inputs and several outputs export and serve under their own names and dtypes.

The image + tabular model (a class output and a regression output) is served
over REST in the row and the columnar format and over gRPC; the text model
keeps a string input and int32 ids as they are in Keras. Served answers are
checked against numpy computed from the weights.
"""

from __future__ import annotations


import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format, struct_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from tfdl.export.manifest import read_manifest
from tfdl.export.serving_model import export_serving_model
from tfdl.serving.grpc_server import GrpcServer
from tfdl.serving.model_store import ModelStore
from tfdl.serving.server import BackgroundServer
from http_calls import call

VOCABULARY = ["cat", "dog"]


def image_tabular_model() -> keras.Model:
    """`{"image": [4, 4, 1], "tabular": [3]} -> {"class": 3 probabilities, "value": 1 number}`."""
    image = keras.Input((4, 4, 1), name="image")
    tabular = keras.Input((3,), name="tabular")
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(image), tabular])
    outputs = {"class": keras.layers.Dense(3, activation="softmax", name="class")(joined),
               "value": keras.layers.Dense(1, name="value")(joined)}
    return keras.Model({"image": image, "tabular": tabular}, outputs)


def text_model() -> keras.Model:
    """`[word (string), ids (int32, 4)] -> {"score": float32, "token": int64 vocabulary index}`."""
    word = keras.Input((), dtype="string", name="word")
    ids = keras.Input((4,), dtype="int32", name="ids")
    token = keras.layers.StringLookup(vocabulary=VOCABULARY, name="lookup")(word)
    embedded = keras.layers.Flatten()(keras.layers.Embedding(5, 2, name="embedding")(ids))
    token_feature = keras.layers.Reshape((1,))(keras.layers.Identity()(token))
    joined = keras.layers.Concatenate()([embedded, keras.ops.cast(token_feature, "float32")])
    return keras.Model([word, ids], {"score": keras.layers.Dense(1, name="score")(joined),
                                     "token": keras.layers.Identity(name="token")(token)})


def image_tabular_reference(model, image, tabular) -> dict:
    joined = np.concatenate([image.reshape(len(image), -1), tabular], axis=1).astype("float64")
    kernel, bias = model.get_layer("class").get_weights()
    logits = joined @ kernel + bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    kernel, bias = model.get_layer("value").get_weights()
    return {"class": probabilities, "value": joined @ kernel + bias}


def text_reference(model, words, ids) -> dict:
    token = np.array([VOCABULARY.index(w) + 1 if w in VOCABULARY else 0 for w in words])  # 0: out of vocabulary
    (table,) = model.get_layer("embedding").get_weights()
    joined = np.concatenate([table[ids].reshape(len(ids), -1), token[:, None]], axis=1)
    kernel, bias = model.get_layer("score").get_weights()
    return {"score": joined @ kernel + bias, "token": token}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Both models exported (the first with warm-up records of both inputs), loaded, and served over REST and gRPC."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("multi_io")
    rng = np.random.default_rng(0)
    image, tabular = rng.random((3, 4, 4, 1)).astype("float32"), rng.normal(size=(3, 3)).astype("float32")
    models = {"shop": image_tabular_model(), "text": text_model()}
    export_serving_model(models["shop"], root / "shop" / "1", warmup={"image": image, "tabular": tabular},
                         model_name="shop")
    export_serving_model(models["text"], root / "text" / "1")
    store = ModelStore()
    for name in models:
        store.add_model(name, root / name)
    with BackgroundServer(store) as rest, GrpcServer(store, port=0) as grpc_server:
        channel = grpc.insecure_channel(grpc_server.address)
        yield {"models": models, "root": root, "rest": rest,
               "grpc": prediction_service_pb2_grpc.PredictionServiceStub(channel), "image": image, "tabular": tabular}
        channel.close()


def post(server, path, body) -> tuple[int, dict]:
    return call(server, "GET" if body is None else "POST", path, body)


def test_signature_keys_and_dtypes_are_the_keras_ones(served):
    signatures = read_manifest(served["root"] / "shop" / "1")["signatures"]["serving_default"]
    assert {k: (v["dtype"], v["shape"]) for k, v in signatures["inputs"].items()} == {
        "image": ("float32", [-1, 4, 4, 1]), "tabular": ("float32", [-1, 3])}
    assert {k: (v["dtype"], v["shape"]) for k, v in signatures["outputs"].items()} == {
        "class": ("float32", [-1, 3]), "value": ("float32", [-1, 1])}
    signatures = read_manifest(served["root"] / "text" / "1")["signatures"]["serving_default"]
    assert {k: v["dtype"] for k, v in signatures["inputs"].items()} == {"word": "string", "ids": "int32"}
    assert {k: v["dtype"] for k, v in signatures["outputs"].items()} == {"score": "float32", "token": "int64"}


def test_rest_row_format_answers_each_example_keyed_by_output_name(served):
    image, tabular = served["image"], served["tabular"]
    instances = [{"image": i.tolist(), "tabular": t.tolist()} for i, t in zip(image, tabular)]
    status, body = post(served["rest"], "/v1/models/shop:predict", {"instances": instances})
    assert status == 200, body
    expected = image_tabular_reference(served["models"]["shop"], image, tabular)
    assert [sorted(p) for p in body["predictions"]] == [["class", "value"]] * 3
    for key in ("class", "value"):
        np.testing.assert_allclose([p[key] for p in body["predictions"]], expected[key], atol=1e-5)


def test_rest_columnar_format_answers_outputs_keyed_by_name(served):
    image, tabular = served["image"], served["tabular"]
    status, body = post(served["rest"], "/v1/models/shop:predict",
                        {"inputs": {"image": image.tolist(), "tabular": tabular.tolist()}})
    assert status == 200, body
    expected = image_tabular_reference(served["models"]["shop"], image, tabular)
    assert sorted(body["outputs"]) == ["class", "value"]
    for key in ("class", "value"):
        np.testing.assert_allclose(body["outputs"][key], expected[key], atol=1e-5)


def test_rest_refuses_a_request_missing_one_input(served):
    status, body = post(served["rest"], "/v1/models/shop:predict", {"inputs": {"image": served["image"].tolist()}})
    assert status == 400 and "tabular" in body["error"]


def test_rest_serves_string_and_int32_inputs_as_they_are(served):
    words, ids = ["dog", "cat", "unicorn"], np.array([[1, 2, 3, 4], [0, 0, 1, 1], [4, 3, 2, 1]], "int32")
    instances = [{"word": w, "ids": i.tolist()} for w, i in zip(words, ids)]
    status, body = post(served["rest"], "/v1/models/text:predict", {"instances": instances})
    assert status == 200, body
    expected = text_reference(served["models"]["text"], words, ids)
    assert [p["token"] for p in body["predictions"]] == [2, 1, 0]
    np.testing.assert_allclose([p["score"] for p in body["predictions"]], expected["score"], atol=1e-5)


def test_grpc_predict_answers_with_the_model_output_names(served):
    image, tabular = served["image"], served["tabular"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "shop"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(image))
    request.inputs["tabular"].CopyFrom(tf.make_tensor_proto(tabular))
    response = served["grpc"].Predict(request, timeout=30)
    expected = image_tabular_reference(served["models"]["shop"], image, tabular)
    assert sorted(response.outputs) == ["class", "value"]
    for key in ("class", "value"):
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[key]), expected[key], atol=1e-5)
    request.output_filter.append("value")
    assert list(served["grpc"].Predict(request, timeout=30).outputs) == ["value"]


def test_metadata_shows_the_manifest_over_rest_and_grpc(served):
    manifest = read_manifest(served["root"] / "shop" / "1")
    status, body = post(served["rest"], "/v1/models/shop/metadata", None)
    assert status == 200 and body["metadata"]["manifest"] == manifest
    signature_def = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sorted(signature_def["outputs"]) == ["class", "value"]
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def", "manifest"])
    request.model_spec.name = "shop"
    response = served["grpc"].GetModelMetadata(request, timeout=30)
    assert sorted(response.metadata) == ["manifest", "signature_def"]
    struct = struct_pb2.Struct()
    assert response.metadata["manifest"].Unpack(struct)
    # A Struct holds numbers as doubles; JSON equality compares them by value.
    assert json_format.MessageToDict(struct) == manifest
