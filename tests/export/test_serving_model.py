"""SavedModels that TF Serving serves fully: classify/regress signatures, warm-up records, models.config."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfdl.export.model_server_config import ModelEntry, read_model_server_config, write_model_server_config
from tfdl.export.serving_model import export_serving_model
from tfdl.export.signatures import classify_signature, regress_signature
from tfdl.export.warmup import read_warmup_requests, write_warmup_requests

CLASSES = ["cat", "dog", "bird"]


def classifier():
    inputs = keras.Input((2, 3), name="features")
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(hidden))


def regressor():
    inputs = keras.Input((4,), name="features")
    return keras.Model(inputs, keras.layers.Dense(1, name="price")(inputs))


def examples(x: np.ndarray, key: str = "features") -> tf.Tensor:
    """Each row of `x`, flattened, as a serialized tf.train.Example."""
    rows = [
        tf.train.Example(
            features=tf.train.Features(feature={key: tf.train.Feature(float_list=tf.train.FloatList(value=row.ravel()))})
        ).SerializeToString()
        for row in x
    ]
    return tf.constant(rows)


def signature_defs(directory) -> dict:
    saved_model = saved_model_pb2.SavedModel.FromString((directory / "saved_model.pb").read_bytes())
    (meta_graph,) = saved_model.meta_graphs
    return {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}


def run_like_tf_serving(directory, signature_name: str, feeds: dict) -> dict:
    """Run a signature as TF Serving's session path does: a TF1 session fed through the SignatureDef's tensor names."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], str(directory))
        signature = meta_graph.signature_def[signature_name]
        keys = sorted(signature.outputs)
        values = session.run(
            [signature.outputs[k].name for k in keys], {signature.inputs[k].name: v for k, v in feeds.items()}
        )
        return dict(zip(keys, values))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = classifier()
    x = np.random.default_rng(0).normal(size=(4, 2, 3)).astype("float32")
    base = tmp_path_factory.mktemp("models") / "animals"
    directory = export_serving_model(
        model, base / "1", class_names=CLASSES, classify=True, warmup={"features": x}, model_name="animals"
    )
    return model, x, directory


def test_signatures_carry_tf_serving_method_names_keys_and_dtypes(exported):
    _, _, directory = exported
    defs = signature_defs(directory)
    assert {k: v.method_name for k, v in defs.items()} == {
        "serving_default": "tensorflow/serving/predict",
        "classification": "tensorflow/serving/classify",
    }
    classify = defs["classification"]
    assert list(classify.inputs) == ["inputs"] and classify.inputs["inputs"].dtype == tf.string.as_datatype_enum
    assert {k: v.dtype for k, v in classify.outputs.items()} == {
        "classes": tf.string.as_datatype_enum,
        "scores": tf.float32.as_datatype_enum,
    }
    assert list(defs["serving_default"].inputs) == ["features"]
    assert list(defs["serving_default"].outputs) == ["probabilities"]
    # Written under a hidden name and renamed: nothing else is left in the base path.
    assert [p.name for p in directory.parent.iterdir()] == ["1"]


def test_fingerprint_is_rewritten_after_the_method_names(exported):
    from tensorflow.core.protobuf.fingerprint_pb2 import FingerprintDef
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

    _, _, directory = exported
    written = FingerprintDef.FromString((directory / "fingerprint.pb").read_bytes())
    fresh = FingerprintDef.FromString(fingerprinting.CreateFingerprintDef(str(directory)))
    written.ClearField("uuid")  # random on every computation
    fresh.ClearField("uuid")
    assert written == fresh


def test_classification_signature_gives_class_names_and_keras_probabilities(exported):
    model, x, directory = exported
    loaded = tf.saved_model.load(str(directory))
    result = loaded.signatures["classification"](inputs=examples(x))
    assert result["classes"].numpy().tolist() == [[c.encode() for c in CLASSES]] * len(x)
    np.testing.assert_allclose(result["scores"].numpy(), np.asarray(model(x)), atol=1e-6)
    predicted = loaded.signatures["serving_default"](features=tf.constant(x))["probabilities"]
    np.testing.assert_allclose(predicted.numpy(), np.asarray(model(x)), atol=1e-6)
    served = run_like_tf_serving(directory, "classification", {"inputs": examples(x).numpy()})
    assert served["classes"].tolist() == [[c.encode() for c in CLASSES]] * len(x)
    np.testing.assert_allclose(served["scores"], np.asarray(model(x)), atol=1e-6)


def test_warmup_records_hold_one_example_each_and_parse_back(exported):
    _, x, directory = exported
    path = directory / "assets.extra" / "tf_serving_warmup_requests"
    logs = read_warmup_requests(path)
    assert len(logs) == len(x)
    for i, log in enumerate(logs):
        request = log.predict_log.request
        assert (request.model_spec.name, request.model_spec.signature_name) == ("animals", "serving_default")
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs["features"]), x[i : i + 1])


def test_warmup_records_replay_on_the_saved_model_as_tf_serving_runs_them(exported):
    model, x, directory = exported
    for i, log in enumerate(read_warmup_requests(directory / "assets.extra" / "tf_serving_warmup_requests")):
        request = log.predict_log.request
        feeds = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        served = run_like_tf_serving(directory, request.model_spec.signature_name, feeds)
        np.testing.assert_allclose(served["probabilities"], np.asarray(model(x[i : i + 1])), atol=1e-6)


def test_regression_signature_gives_one_float_per_example(tmp_path):
    model = regressor()
    x = np.arange(12, dtype="float32").reshape(3, 4) / 10
    directory = export_serving_model(model, tmp_path / "price" / "7", regress="price")
    defs = signature_defs(directory)
    assert defs["regression"].method_name == "tensorflow/serving/regress"
    assert list(defs["regression"].inputs) == ["inputs"] and list(defs["regression"].outputs) == ["outputs"]
    assert not (directory / "assets.extra").exists()
    outputs = tf.saved_model.load(str(directory)).signatures["regression"](inputs=examples(x))["outputs"]
    assert outputs.shape == (3,)
    np.testing.assert_allclose(outputs.numpy(), np.asarray(model(x))[:, 0], atol=1e-6)
    served = run_like_tf_serving(directory, "regression", {"inputs": examples(x).numpy()})
    np.testing.assert_allclose(served["outputs"], np.asarray(model(x))[:, 0], atol=1e-6)


def test_binary_sigmoid_classifier_scores_both_classes():
    inputs = keras.Input((2,), name="features")
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="p")(inputs))
    x = np.array([[0.5, -1.0], [2.0, 0.25]], dtype="float32")
    result = classify_signature(model, class_names=["no", "yes"])(examples(x))
    p = np.asarray(model(x))[:, 0]
    np.testing.assert_allclose(result["scores"].numpy(), np.stack([1 - p, p], axis=1), atol=1e-6)
    assert result["classes"].numpy().tolist() == [[b"no", b"yes"]] * 2


def test_feature_key_renames_the_example_feature():
    model = regressor()
    x = np.ones((2, 4), dtype="float32")
    outputs = regress_signature(model, feature_key="x")(examples(x, key="x"))["outputs"]
    np.testing.assert_allclose(outputs.numpy(), np.asarray(model(x))[:, 0], atol=1e-6)


def test_signatures_refuse_models_they_cannot_serve(tmp_path):
    with pytest.raises(ValueError, match="'probabilities' has 3 values per example but 2 class names"):
        classify_signature(classifier(), class_names=["a", "b"])
    with pytest.raises(ValueError, match="'probabilities' has 3 values per example; TF Serving's Regress"):
        regress_signature(classifier())
    with pytest.raises(ValueError, match="input_name 'pixels' is not the model's input; it has 'features'"):
        regress_signature(regressor(), input_name="pixels")
    free = keras.Input((None, 2), name="tokens")
    pooled = keras.layers.GlobalAveragePooling1D()(free)
    with pytest.raises(ValueError, match=r"input 'tokens' has shape \(None, None, 2\); a tf.Example feature needs"):
        regress_signature(keras.Model(free, keras.layers.Dense(1)(pooled)))
    inputs = keras.Input((4,), name="features")
    two = keras.Model(inputs, [keras.layers.Dense(1, name="a")(inputs), keras.layers.Dense(1, name="b")(inputs)])
    with pytest.raises(ValueError, match=r"outputs \['a', 'b'\]; name the one to serve with `output`"):
        regress_signature(two)
    with pytest.raises(ValueError, match="classify=True needs class_names"):
        export_serving_model(regressor(), tmp_path / "1", classify=True)
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="already holds files"):
        export_serving_model(regressor(), tmp_path / "2")


def test_warmup_records_are_checked_against_the_signature(exported, tmp_path):
    _, x, directory = exported
    with pytest.raises(ValueError, match="num_records must be 1 to 1000"):
        write_warmup_requests(directory, "animals", {"features": x}, num_records=1001)
    with pytest.raises(ValueError, match=r"takes inputs \['features'\]; the warm-up inputs are \['pixels'\]"):
        write_warmup_requests(directory, "animals", {"pixels": x})
    with pytest.raises(ValueError, match=r"input 'features': expected shape \['batch', 2, 3\], the warm-up array has \(4, 6\)"):
        write_warmup_requests(directory, "animals", {"features": x.reshape(4, 6)})
    with pytest.raises(ValueError, match=r"has no signature 'predict'; it has \['classification', 'serving_default'\]"):
        write_warmup_requests(directory, "animals", {"features": x}, signature_name="predict")
    with pytest.raises(ValueError, match="no warm-up file at"):
        read_warmup_requests(tmp_path / "missing")


def test_warmup_allows_tf_servings_maximum_of_1000_records_in_batches(exported, tmp_path):
    _, _, directory = exported
    # The signature is all the writer reads, so a copy of saved_model.pb stands in for the SavedModel.
    copy = tmp_path / "1"
    copy.mkdir()
    (copy / "saved_model.pb").write_bytes((directory / "saved_model.pb").read_bytes())
    x = np.zeros((2500, 2, 3), dtype="float64")
    path = write_warmup_requests(copy, "animals", {"features": x}, num_records=1000, examples_per_record=2)
    logs = read_warmup_requests(path)
    assert len(logs) == 1000
    first = tf.make_ndarray(logs[0].predict_log.request.inputs["features"])
    assert first.shape == (2, 2, 3) and first.dtype == np.float32


GOLDEN = """model_config_list {
  config {
    name: "digits"
    base_path: "/models/digits"
    model_platform: "tensorflow"
    model_version_policy {
      latest {
        num_versions: 2
      }
    }
  }
  config {
    name: "animals"
    base_path: "/models/animals"
    model_platform: "tensorflow"
    model_version_policy {
      all {
      }
    }
  }
  config {
    name: "price"
    base_path: "gs://bucket/price"
    model_platform: "tensorflow"
    model_version_policy {
      specific {
        versions: 3
        versions: 4
      }
    }
    version_labels {
      key: "canary"
      value: 4
    }
    version_labels {
      key: "stable"
      value: 3
    }
  }
}
"""


def test_models_config_is_tf_servings_text_proto_and_round_trips(tmp_path):
    models = [
        ModelEntry("digits", "/models/digits", num_versions=2),
        ModelEntry("animals", "/models/animals", version_policy="all"),
        ModelEntry("price", "gs://bucket/price", "specific", versions=[3, 4], version_labels={"stable": 3, "canary": 4}),
    ]
    path = write_model_server_config(tmp_path / "models.config", models)
    assert path.read_text() == GOLDEN
    assert read_model_server_config(path) == models
    assert [p.name for p in tmp_path.iterdir()] == ["models.config"]


def test_models_config_without_a_policy_means_the_latest_version(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow" } }')
    assert read_model_server_config(path) == [ModelEntry("m", "/m", "latest", num_versions=1)]


def test_bad_model_entries_raise_with_the_model_named():
    with pytest.raises(ValueError, match="model 'm': unknown version policy 'newest'; use one of latest, all, specific"):
        ModelEntry("m", "/m", version_policy="newest")
    with pytest.raises(ValueError, match=r"label 'stable' points to version 5, which the `specific` policy does not serve \(versions \[3, 4\]\)"):
        ModelEntry("m", "/m", "specific", versions=[3, 4], version_labels={"stable": 5})
    with pytest.raises(ValueError, match="version label 'my-label' must be letters, digits and underscores"):
        ModelEntry("m", "/m", version_labels={"my-label": 1})
    with pytest.raises(ValueError, match="versions go with the `specific` policy, not 'latest'"):
        ModelEntry("m", "/m", versions=[1])
    with pytest.raises(ValueError, match="needs distinct positive versions"):
        ModelEntry("m", "/m", "specific")


def test_bad_models_configs_raise_with_the_file_named(tmp_path):
    path = tmp_path / "models.config"
    with pytest.raises(ValueError, match=r"models \['m'\] are listed more than once"):
        write_model_server_config(path, [ModelEntry("m", "/a"), ModelEntry("m", "/b")])
    with pytest.raises(ValueError, match="base paths mix absolute and relative ones"):
        write_model_server_config(path, [ModelEntry("a", "/a"), ModelEntry("b", "models/b")])
    path.write_text('model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow"\n'
                    "model_version_policy { newest {} } } }")
    with pytest.raises(ValueError, match=r"models.config: not a TF Serving ModelServerConfig text proto: 2:"):
        read_model_server_config(path)
    path.write_text('model_config_list { config { name: "m" base_path: "/m" model_platform: "tensorflow"\n'
                    'model_version_policy { specific { versions: 1 } } version_labels { key: "stable" value: 2 } } }')
    with pytest.raises(ValueError, match="models.config: model 'm': label 'stable' points to version 2"):
        read_model_server_config(path)
