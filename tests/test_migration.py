"""`tfdl migrate`: Keras 2 `.h5` files and SavedModels, written here as Keras 2 writes them, come out as Keras 3.

No tf_keras is installed, so the legacy artifacts are made by hand: the
`.h5` files with h5py in the layout of tf.keras 2.15's `save_model_to_hdf5`
(root attributes `keras_version`, `backend`, `model_config`, and
`model_weights/<layer>/<layer>/<weight>:0` datasets listed by `layer_names`
and `weight_names` attributes), the SavedModel with `tf.saved_model.save` of
a `tf.Module` whose `serving_default` uses Keras 2's keys (`input_1`,
`dense_1`). Each test checks outputs against numpy forward passes with the
weights written, or against the original signature.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.migration import MigrationError, migrate

RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 4)).astype("float32")


# --- Keras 2 artifacts -----------------------------------------------------------------------------------------


def keras2_object(class_name: str, config: dict, module: str = "keras.layers", registered_name=None) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": registered_name}


def keras2_dense(name: str, units: int, activation: str, **extra) -> dict:
    initializer = keras2_object("GlorotUniform", {"seed": None}, "keras.initializers")
    return {"name": name, "trainable": True, "dtype": "float32", **extra, "units": units, "activation": activation,
            "use_bias": True, "kernel_initializer": initializer,
            "bias_initializer": keras2_object("Zeros", {}, "keras.initializers"), "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}


def keras2_input(name: str, width: int) -> dict:
    return keras2_object("InputLayer", {"batch_input_shape": [None, width], "dtype": "float32", "sparse": False,
                                        "ragged": False, "name": name})


def keras2_sequential(layers: list[dict]) -> dict:
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
            "keras_version": "2.15.0", "backend": "tensorflow"}


def functional_layer(entry: dict, *inbound: str) -> dict:
    """A Functional config's layer entry: Keras 2's `inbound_nodes` are `[[[name, node, tensor, kwargs]]]`."""
    nodes = [[[name, 0, 0, {}] for name in inbound]] if inbound else []
    return {**entry, "name": entry["config"]["name"], "inbound_nodes": nodes}


def write_keras2_h5(path, model_config: dict, weights: dict[str, list[tuple[str, np.ndarray]]],
                    training_config: dict | None = None):
    """An .h5 as tf.keras 2.15 writes it; `weights` maps each layer (in model order) to its (weight name, array)s."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode("utf-8")
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config).encode("utf-8")
        group = f.create_group("model_weights")
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.15.0"
        group.attrs["layer_names"] = [name.encode("utf-8") for name in weights]
        for layer, arrays in weights.items():
            layer_group = group.create_group(layer)
            layer_group.attrs["weight_names"] = [f"{layer}/{w}:0".encode("utf-8") for w, _ in arrays]
            for weight, array in arrays:
                layer_group.create_dataset(f"{layer}/{weight}:0", data=array)
    return path


def dense_weights(fan_in: int, units: int) -> list[tuple[str, np.ndarray]]:
    return [("kernel", RNG.normal(size=(fan_in, units)).astype("float32")),
            ("bias", RNG.normal(size=units).astype("float32"))]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def sequential_h5(tmp_path):
    """Keras 2.15's Sequential: an InputLayer, and `batch_input_shape` repeated on the first Dense (Keras 3 refuses)."""
    weights = {"dense_input": [], "dense": dense_weights(4, 8), "dense_1": dense_weights(8, 3)}
    config = keras2_sequential([
        keras2_input("dense_input", 4),
        keras2_object("Dense", keras2_dense("dense", 8, "relu", batch_input_shape=[None, 4])),
        keras2_object("Dense", keras2_dense("dense_1", 3, "softmax")),
    ])
    training = {"loss": "categorical_crossentropy", "optimizer_config": {"class_name": "Adam", "config": {}}}
    path = write_keras2_h5(tmp_path / "legacy.h5", config, weights, training_config=training)
    (k1, b1), (k2, b2) = ([a for _, a in weights[n]] for n in ("dense", "dense_1"))
    return path, lambda x: softmax(np.maximum(x @ k1 + b1, 0.0) @ k2 + b2)


@pytest.fixture
def keras2_saved_model(tmp_path):
    """A SavedModel with Keras 2's signature keys: `input_1` (floats), `input_2` (ids) -> `dense_1`, `dense_2`."""

    class Legacy(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(RNG.normal(size=(4, 3)).astype("float32"))
            self.table = tf.Variable(RNG.normal(size=(5, 2)).astype("float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="input_1"),
                                      tf.TensorSpec([None], tf.int64, name="input_2")])
        def serve(self, input_1, input_2):
            return {"dense_1": tf.nn.softmax(input_1 @ self.kernel), "dense_2": tf.gather(self.table, input_2)}

    module = Legacy()
    path = tmp_path / "legacy_saved_model"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    (path / "keras_metadata.pb").write_bytes(b"")  # what marks Keras 2's model.save(DIR)
    return path


class TfKerasBlocker(importlib.abc.MetaPathFinder):
    """Fails any import of tf_keras and records that one was tried."""

    def __init__(self):
        self.tried = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tf_keras":
            self.tried.append(name)
            raise ImportError("tfdl must not import tf_keras")
        return None


@pytest.fixture
def no_tf_keras():
    # Another test in the same process (TF Hub, say) may have imported
    # tf_keras already: set its modules aside so that an import from tfdl
    # reaches the blocker instead of the cache, and put them back after.
    set_aside = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "tf_keras"}
    blocker = TfKerasBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        yield blocker
        assert blocker.tried == [], f"tfdl tried to import {blocker.tried}"
        assert "tf_keras" not in sys.modules
    finally:
        sys.meta_path.remove(blocker)
        sys.modules.update(set_aside)


# --- .h5 -----------------------------------------------------------------------------------------------------


def test_h5_round_trip_gives_the_numpy_forward_pass_of_its_weights(sequential_h5, tmp_path, no_tf_keras):
    path, forward = sequential_h5
    report = migrate(path, tmp_path / "migrated.keras")
    assert report.ok, report.describe()
    assert any("'dense'" in line and "batch_input_shape" in line for line in report.mended)
    assert any("4 arrays" in line for line in report.checks)  # two kernels, two biases compared by layer
    assert any("compile" in note for note in report.notes)  # the training config is not carried over
    model = keras.models.load_model(tmp_path / "migrated.keras", safe_mode=True)
    np.testing.assert_allclose(model(X).numpy(), forward(X), rtol=1e-5, atol=1e-6)
    config = json.loads(zipfile.ZipFile(tmp_path / "migrated.keras").read("config.json"))
    assert "batch_input_shape" not in json.dumps(config)


def test_keras2_functional_config_is_mended_and_keeps_its_numbers(tmp_path, no_tf_keras):
    # tf.keras writes a built BatchNormalization's axis as a list ([1]), a
    # mixed-precision dtype as a Policy object, and RNN-era flags Keras 3 lacks.
    bn = [("gamma", RNG.uniform(0.5, 1.5, 8).astype("float32")), ("beta", RNG.normal(size=8).astype("float32")),
          ("moving_mean", RNG.normal(size=8).astype("float32")),
          ("moving_variance", RNG.uniform(0.5, 2.0, 8).astype("float32"))]
    weights = {"input_1": [], "dense": dense_weights(4, 8), "batch_normalization": bn, "dense_1": dense_weights(8, 2)}
    policy = keras2_object("Policy", {"name": "mixed_float16"}, "keras.mixed_precision")
    bn_config = {"name": "batch_normalization", "trainable": True, "dtype": "float32", "axis": [1], "momentum": 0.99,
                 "epsilon": 0.001, "center": True, "scale": True, "fused": None, "virtual_batch_size": None,
                 "adjustment": None}
    config = {"class_name": "Functional", "config": {"name": "model", "trainable": True, "layers": [
        functional_layer(keras2_input("input_1", 4)),
        functional_layer(keras2_object("Dense", {**keras2_dense("dense", 8, "tanh"), "dtype": policy}), "input_1"),
        functional_layer(keras2_object("BatchNormalization", bn_config), "dense"),
        functional_layer(keras2_object("Dense", keras2_dense("dense_1", 2, "linear")), "batch_normalization"),
    ], "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_1", 0, 0]]},
        "keras_version": "2.15.0", "backend": "tensorflow"}
    path = write_keras2_h5(tmp_path / "functional.h5", config, weights)

    report = migrate(path, tmp_path / "functional.keras")
    assert report.ok, report.describe()
    mended = "\n".join(report.mended)
    for fragment in ("mixed_float16", "axis [1] -> 1", "fused", "virtual_batch_size", "adjustment"):
        assert fragment in mended
    model = keras.models.load_model(tmp_path / "functional.keras", safe_mode=True)
    assert model.get_layer("dense").dtype_policy.name == "mixed_float16"
    (k1, b1), (gamma, beta, mean, var), (k2, b2) = (
        [a for _, a in weights[n]] for n in ("dense", "batch_normalization", "dense_1"))
    hidden = np.tanh(X @ k1 + b1)
    expected = ((hidden - mean) / np.sqrt(var + 0.001) * gamma + beta) @ k2 + b2
    np.testing.assert_allclose(model(X).numpy(), expected, rtol=2e-2, atol=2e-2)  # float16 in the first layer


def test_lambda_layer_is_refused_by_name_and_nothing_is_written(tmp_path, no_tf_keras):
    lam = {"name": "scale_by_two", "trainable": True, "dtype": "float32",
           "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAfABkARQAUwCpAk7pAgAAAKkAKQHaAXhy", None, None],
           "function_type": "lambda", "module": "__main__", "output_shape": None, "output_shape_type": "raw",
           "output_shape_module": None, "arguments": {}}
    config = keras2_sequential([keras2_input("dense_input", 4),
                                keras2_object("Dense", keras2_dense("dense", 3, "linear")),
                                keras2_object("Lambda", lam)])
    path = write_keras2_h5(tmp_path / "lambda.h5", config, {"dense_input": [], "dense": dense_weights(4, 3),
                                                            "scale_by_two": []})
    report = migrate(path, tmp_path / "lambda.keras")
    assert not report.ok and report.output is None
    (problem,) = report.problems
    assert problem.layer == "scale_by_two" and "Lambda" in problem.problem
    assert "register_keras_serializable" in problem.fix and "load_weights" in problem.fix
    assert not (tmp_path / "lambda.keras").exists()


def custom_layer_h5(tmp_path, registered_name: str = "LegacyProject>Scale"):
    config = keras2_sequential([
        keras2_input("dense_input", 4),
        keras2_object("Dense", keras2_dense("dense", 3, "linear")),
        keras2_object("Scale", {"name": "scale", "trainable": True, "dtype": "float32", "factor": 3.0},
                      module="legacy_project.layers", registered_name=registered_name),
    ])
    weights = {"dense_input": [], "dense": dense_weights(4, 3), "scale": []}
    return write_keras2_h5(tmp_path / "custom.h5", config, weights), weights


class Scale(keras.layers.Layer):
    """The Keras 3 version of the legacy project's custom layer."""

    def __init__(self, factor: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_unknown_custom_class_is_named_and_migrates_once_given(tmp_path, no_tf_keras):
    path, weights = custom_layer_h5(tmp_path)
    report = migrate(path, tmp_path / "custom.keras")
    (problem,) = report.problems
    assert problem.layer == "scale" and "'Scale'" in problem.problem and "LegacyProject>Scale" in problem.problem
    assert "register_keras_serializable" in problem.fix and "custom_objects" in problem.fix
    assert not (tmp_path / "custom.keras").exists()

    report = migrate(path, tmp_path / "custom.keras", custom_objects={"Scale": Scale})
    assert report.ok, report.describe()
    assert any("register" in note and "Scale" in note for note in report.notes)  # Scale is not registered here
    kernel, bias = (a for _, a in weights["dense"])
    model = keras.models.load_model(tmp_path / "custom.keras", custom_objects={"Scale": Scale}, safe_mode=True)
    np.testing.assert_allclose(model(X).numpy(), 3.0 * (X @ kernel + bias), rtol=1e-5, atol=1e-6)


def test_keras2_only_class_and_refused_argument_are_named(tmp_path):
    lstm = {"name": "lstm", "trainable": True, "dtype": "float32", "units": 2, "time_major": True}
    config = keras2_sequential([
        keras2_object("InputLayer", {"batch_input_shape": [None, 3, 4], "dtype": "float32", "name": "lstm_input"}),
        keras2_object("LSTM", lstm),
        keras2_object("ThresholdedReLU", {"name": "thresholded_re_lu", "theta": 0.5}),
    ])
    path = write_keras2_h5(tmp_path / "old.h5", config, {"lstm_input": [], "lstm": [], "thresholded_re_lu": []})
    report = migrate(path, tmp_path / "old.keras")
    assert [p.layer for p in report.problems] == ["thresholded_re_lu"]
    assert "ReLU(threshold" in report.problems[0].fix
    # time_major=True changes the result, so it is not dropped: Keras 3 refuses it, named with the layer.
    config["config"]["layers"].pop()
    write_keras2_h5(path, config, {"lstm_input": [], "lstm": []})
    (problem,) = migrate(path, tmp_path / "old.keras").problems
    assert problem.layer == "lstm" and "time_major" in problem.problem


# --- SavedModel ----------------------------------------------------------------------------------------------


def test_saved_model_wrapper_serves_the_original_outputs_under_new_names(keras2_saved_model, tmp_path, no_tf_keras):
    from tfdl.doctor import diagnose
    from tfdl.serving.client import Client
    from tfdl.serving.model_store import ModelStore
    from tfdl.serving.server import BackgroundServer

    version = tmp_path / "serving" / "legacy" / "1"
    report = migrate(keras2_saved_model, version, input_names={"input_1": "features", "input_2": "item_id"},
                     output_names={"dense_1": "probabilities", "dense_2": "item_embedding"})
    assert report.ok and report.inference_only and report.kind == "keras2_saved_model", report.describe()
    assert report.inputs == {"features": "input_1", "item_id": "input_2"}
    assert any("inference-only" in note for note in report.notes)
    assert (version / "manifest.json").is_file()

    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    specs = served.structured_input_signature[1]
    assert {k: s.dtype for k, s in specs.items()} == {"features": tf.float32, "item_id": tf.int64}
    assert set(served.structured_outputs) == {"probabilities", "item_embedding"}

    ids = np.array([0, 4, 2, 1, 3], dtype=np.int64)
    original = tf.saved_model.load(str(keras2_saved_model)).signatures["serving_default"]
    expected = original(input_1=tf.constant(X), input_2=tf.constant(ids))
    store = ModelStore()
    store.add_model("legacy", version.parent)
    with BackgroundServer(store) as server, Client(server.url, "legacy") as client:
        answer = client.predict(inputs={"features": X.tolist(), "item_id": ids.tolist()})["outputs"]
    np.testing.assert_allclose(answer["probabilities"], expected["dense_1"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(answer["item_embedding"], expected["dense_2"].numpy(), rtol=1e-6)

    doctor = diagnose(version)
    assert doctor.ok, doctor.describe()


def test_saved_model_keeps_keras2_keys_by_default_and_says_doctor_flags_them(keras2_saved_model, tmp_path):
    from tfdl.doctor import diagnose

    version = tmp_path / "kept" / "1"
    report = migrate(keras2_saved_model, version)
    assert report.ok, report.describe()
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    assert set(served.structured_input_signature[1]) == {"input_1", "input_2"}
    assert set(served.structured_outputs) == {"dense_1", "dense_2"}
    flagged = [note for note in report.notes if "tfdl doctor will report" in note]
    assert flagged and "--input-names" in flagged[0]
    assert not diagnose(version, convert=False).ok  # the same generated keys doctor names


# --- command line and inputs migrate refuses -----------------------------------------------------------------


def test_cli_exit_codes(sequential_h5, keras2_saved_model, tmp_path, capsys):
    from tfdl.cli import main

    path, _ = sequential_h5
    assert main(["migrate", str(path), str(tmp_path / "ok.keras"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

    version = tmp_path / "serving" / "m" / "1"
    assert main(["migrate", str(keras2_saved_model), str(version), "--input-names", "input_1=features,input_2=ids",
                 "--output-names", "dense_1=probabilities", "--output-names", "dense_2=embedding"]) == 0
    assert "migrated:" in capsys.readouterr().out
    assert main(["doctor", str(version)]) == 0

    lam = {"name": "my_lambda", "function": ["AA==", None, None], "function_type": "lambda"}
    bad = write_keras2_h5(tmp_path / "lambda.h5", keras2_sequential([keras2_input("x", 4),
                                                                     keras2_object("Lambda", lam)]),
                          {"x": [], "my_lambda": []})
    assert main(["migrate", str(bad), str(tmp_path / "lambda.keras")]) == 1
    captured = capsys.readouterr()
    assert "my_lambda" in captured.out and "not migrated: my_lambda" in captured.err

    assert main(["migrate", str(tmp_path / "missing.h5"), str(tmp_path / "x.keras")]) == 2
    assert "nothing at" in capsys.readouterr().err
    assert main(["migrate", str(keras2_saved_model), str(tmp_path / "n" / "1"), "--output-names", "dense_9=y"]) == 2
    assert "dense_9" in capsys.readouterr().err


def test_cli_import_registers_the_custom_layers_an_h5_needs(tmp_path, monkeypatch, capsys):
    from tfdl.cli import main

    path, weights = custom_layer_h5(tmp_path, registered_name="ImportedProject>Scale")
    (tmp_path / "imported_project_layers.py").write_text(
        "import keras\n\n\n"
        "@keras.saving.register_keras_serializable(package='ImportedProject')\n"
        "class Scale(keras.layers.Layer):\n"
        "    def __init__(self, factor=1.0, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.factor = factor\n\n"
        "    def call(self, x):\n"
        "        return x * self.factor\n\n"
        "    def get_config(self):\n"
        "        return {**super().get_config(), 'factor': self.factor}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["migrate", str(path), str(tmp_path / "a.keras")]) == 1  # not imported: named, not migrated
    assert "'Scale'" in capsys.readouterr().out
    assert main(["migrate", str(path), str(tmp_path / "a.keras"), "--import", "no_such_module_here"]) == 2
    assert "no_such_module_here" in capsys.readouterr().err
    assert main(["migrate", str(path), str(tmp_path / "a.keras"), "--import", "imported_project_layers"]) == 0
    kernel, bias = (a for _, a in weights["dense"])
    model = keras.models.load_model(tmp_path / "a.keras", safe_mode=True)  # registered: no custom_objects needed
    np.testing.assert_allclose(model(X).numpy(), 3.0 * (X @ kernel + bias), rtol=1e-5, atol=1e-6)


def tf1_saved_model_without_signatures(path):
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        tf.compat.v1.Variable(1.0, name="v")
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, ["serve"])
        builder.save()
    return path


@pytest.mark.parametrize("kind, output, message", [
    ("keras3", "out.keras", "is a Keras 3 .keras file already"),
    ("corrupt_h5", "out.keras", "not an HDF5 file"),
    ("truncated_h5", "out.keras", "corrupt or truncated"),
    ("weights_only_h5", "out.keras", "weights only (model.save_weights)"),
    ("h5_to_folder", "out_dir", "should end in .keras"),
    ("plain_folder", "out/1", "folder without saved_model.pb"),
    ("tf1_no_signatures", "out/1", "has no serving signatures"),
    ("saved_model_to_keras", "out.keras", "loads only with safe_mode=False"),
])
def test_inputs_migrate_cannot_take_are_named_with_what_to_do(tmp_path, keras2_saved_model, sequential_h5,
                                                             kind, output, message):
    if kind == "keras3":
        path = tmp_path / "model.keras"
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    elif kind == "corrupt_h5":
        path = tmp_path / "model.h5"
        path.write_bytes(b"not hdf5 at all" * 10)
    elif kind == "truncated_h5":
        path = tmp_path / "model.h5"
        path.write_bytes(sequential_h5[0].read_bytes()[:2048])
    elif kind == "weights_only_h5":
        path = tmp_path / "weights.h5"
        with h5py.File(path, "w") as f:
            f.attrs["layer_names"] = [b"dense"]
    elif kind == "h5_to_folder":
        path = sequential_h5[0]
    elif kind == "plain_folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif kind == "tf1_no_signatures":
        path = tf1_saved_model_without_signatures(tmp_path / "tf1")
    else:
        path = keras2_saved_model
    with pytest.raises(MigrationError) as raised:
        migrate(path, tmp_path / output)
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_main_migrate_reports_bad_input_on_stderr(tmp_path, capsys):
    from tfdl.migration import main_migrate

    path = tmp_path / "model.keras"
    path.write_bytes(b"PK")
    args = argparse.Namespace(path=str(path), output=str(tmp_path / "o.keras"), json=False, input_names=[],
                              output_names=[], signature="serving_default", imports=[])
    assert main_migrate(args) == 2
    assert "Keras 3 .keras file already" in capsys.readouterr().err
