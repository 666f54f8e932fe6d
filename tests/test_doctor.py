"""`tfdl doctor` names each seeded problem with its layer and fix, and finds nothing in what tfdl exports."""

from __future__ import annotations

import argparse
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.doctor import diagnose, main_doctor
from tfdl.doctor.keras_file import read_keras_config
from tfdl.layers import Sampling


class Doubler(keras.layers.Layer):
    """Deliberately not registered: a fresh process cannot find it."""

    def call(self, x):
        return x * 2.0


@keras.saving.register_keras_serializable(package="tfdl_doctor_test")
class Scale(keras.layers.Layer):
    """Registered, but its get_config forgets `factor` (required) and `offset` (with a default)."""

    def __init__(self, factor, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.offset = offset

    def call(self, x):
        return x * self.factor + self.offset

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy.name}


@keras.saving.register_keras_serializable(package="tfdl_doctor_test")
class TwoStep(keras.Model):
    """Its build() forgets the `inner` sublayer, whose saved weights a reload then skips."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(2, name="inner")
        self.head = keras.layers.Dense(1, name="head")

    def build(self, input_shape):
        self.head.build((None, 2))

    def call(self, x):
        return self.head(self.inner(x))


@keras.saving.register_keras_serializable(package="tfdl_doctor_test")
class Inverse(keras.layers.Layer):
    """Its op (MatrixInverse) has no TFLite builtin."""

    def call(self, x):
        return tf.linalg.inv(x)


def _findings(report, check):
    return {finding.layer: finding for finding in report.findings if finding.check == check}


def _save(model, path):
    model.save(path)
    return path


def write_broken_artifacts(root):
    """Write one deliberately broken artifact of each kind under `root`, keyed by what is wrong with it."""
    keras.utils.set_random_seed(0)
    x = keras.Input((3,), name="x")

    lambdas = keras.Model(x, keras.layers.Dense(2, activation=lambda t: t * 2.0, name="scaled_dense")(
        keras.layers.Lambda(lambda t: t + 1.0, name="add_one")(x)))
    unregistered = keras.Model(x, Doubler(name="doubler")(x))
    dropped = keras.Model(x, Scale(3.0, offset=1.0, name="scale")(x))
    two_step = TwoStep(name="two_step")
    two_step(np.zeros((1, 3), "float32"))

    matrices = keras.Input((2, 2), name="matrices")
    flat = keras.layers.Flatten(name="flat")(Inverse(name="inverse")(matrices))
    z = Sampling(seed=1, name="sampler")([keras.layers.Dense(2, name="mean")(flat),
                                          keras.layers.Dense(2, name="log_var")(flat)])
    flex = keras.Model(matrices, z, name="flexy")

    class Positional(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def predict(self, *args):
            return args[0] * 2.0

    module = Positional()
    unnamed = root / "unnamed_saved_model"
    tf.saved_model.save(module, str(unnamed), signatures={"predict": module.predict.get_concrete_function()})

    from tfdl.export.saved_model import export_saved_model
    from tfdl.export.tflite import convert_tflite

    flex_saved = export_saved_model(flex, root / "flex_saved_model")
    return {
        "lambdas": _save(lambdas, root / "lambdas.keras"),
        "unregistered": _save(unregistered, root / "unregistered.keras"),
        "dropped": _save(dropped, root / "dropped.keras"),
        "two_step": _save(two_step, root / "two_step.keras"),
        "flex_keras": _save(flex, root / "flex.keras"),
        "unnamed": unnamed,
        "flex_tflite": convert_tflite(flex_saved, root / "flex.tflite", allow_tf_ops=True).path,
    }


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return write_broken_artifacts(tmp_path_factory.mktemp("broken"))


def test_lambda_layer_and_lambda_activation_need_unsafe_loading(broken):
    report = diagnose(broken["lambdas"])
    unsafe = _findings(report, "unsafe")
    assert set(unsafe) == {"add_one", "scaled_dense"}
    assert "Lambda layer" in unsafe["add_one"].problem and "register_keras_serializable" in unsafe["add_one"].fix
    assert "lambda" in unsafe["scaled_dense"].problem and "'relu'" in unsafe["scaled_dense"].fix
    assert "load" not in report.checks, "a file that cannot load safely is not loaded"


def test_unregistered_custom_layer_is_named(broken):
    report = diagnose(broken["unregistered"])
    (finding,) = report.findings
    assert (finding.check, finding.layer) == ("unregistered", "doubler")
    assert "Doubler" in finding.problem and "register_keras_serializable" in finding.fix


def test_get_config_missing_a_constructor_argument_is_named(broken):
    report = diagnose(broken["dropped"], convert=False)
    factor, offset = report.findings
    assert {(f.check, f.layer) for f in report.findings} == {("config", "scale")}
    assert "'factor'" in factor.problem and "from_config fails" in factor.problem
    assert "'factor': self.factor" in factor.fix
    assert "'offset'" in offset.problem and "silently uses the default 0.0" in offset.problem
    # The file itself really fails to load in this process: the finding is not a false alarm.
    with pytest.raises(TypeError, match="factor"):
        keras.saving.load_model(broken["dropped"], safe_mode=True)


def test_sublayer_left_unbuilt_by_build_is_named(broken):
    report = diagnose(broken["two_step"])
    assert report.checks[-1] == "unbuilt" and "subclassed model" in report.notes[0]
    unbuilt = _findings(report, "unbuilt")
    assert set(unbuilt) == {"inner"} and len(report.findings) == 1
    assert "fresh random weights" in unbuilt["inner"].problem and "build()" in unbuilt["inner"].fix
    # What the finding warns of: the reloaded model has lost inner's trained weights.
    reloaded = keras.saving.load_model(broken["two_step"], safe_mode=True)
    assert not reloaded.inner.built and reloaded.inner.weights == []


def test_ops_outside_tflite_builtins_are_attributed_to_layers(broken):
    report = diagnose(broken["flex_keras"])
    assert report.checks[-1] == "tflite_ops"
    ops = {(f.layer, f.problem.split()[1]) for f in report.findings}
    assert ops == {("inverse", "MatrixInverse"), ("sampler", "StatelessRandomGetKeyCounter"),
                   ("sampler", "StatelessRandomNormalV2")}
    sampler = [f for f in report.findings if f.layer == "sampler"]
    assert all("Sampling(mean_at_inference=True)" in f.fix for f in sampler)


def test_saved_model_with_positional_keys_and_no_serving_default(broken):
    report = diagnose(broken["unnamed"])
    problems = {(f.layer, f.problem.split(" (")[0].split(" [")[0]) for f in report.findings}
    assert problems == {
        (None, "no 'serving_default' signature"),
        ("predict", "input keys"),
        ("predict", "output keys"),
    }
    by_text = " ".join(f.problem for f in report.findings)
    assert "['args_0']" in by_text and "['output_0']" in by_text
    assert report.checks == ["signature"], "without serving_default there is nothing to convert"


def test_tflite_with_flex_ops_names_layers_and_fails_to_run(broken):
    report = diagnose(broken["flex_tflite"])
    flex = {(f.layer, f.problem.split()[0]) for f in report.findings if f.check == "flex_ops"}
    assert flex == {("inverse", "MatrixInverse"), ("sampler", "StatelessRandomGetKeyCounter"),
                    ("sampler", "StatelessRandomNormalV2")}
    (runtime,) = _findings(report, "runtime").values()
    # ai-edge-litert 2.3 refuses it when allocating tensors (measured), before any call.
    assert runtime.problem.startswith("ai_edge_litert cannot") and "Select TensorFlow op(s)" in runtime.problem


def test_main_doctor_gates_on_findings(broken, capsys):
    assert main_doctor(argparse.Namespace(path=str(broken["unregistered"]), json=True)) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["findings"][0]["layer"] == "doubler"


def test_the_cli_runs_doctor_and_env(broken, capsys):
    from tfdl.cli import main

    assert main(["doctor", str(broken["unregistered"]), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["layer"] == "doubler"
    assert main(["env", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


@pytest.mark.parametrize("name, message", [("missing.keras", "nothing at"), ("model.h5", "not .h5")])
def test_main_doctor_refuses_paths_it_cannot_check(tmp_path, capsys, name, message):
    path = tmp_path / name
    if name.endswith(".h5"):
        path.write_bytes(b"\x89HDF")
    assert main_doctor(argparse.Namespace(path=str(path), json=False)) == 2
    assert message in capsys.readouterr().err


def test_not_a_keras_archive_is_a_clear_error(tmp_path):
    path = tmp_path / "fake.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a Keras 3 .keras archive"):
        read_keras_config(path)


def test_what_tfdl_exports_is_clean(digits_run, capsys):
    export = digits_run.run_dir / "export"
    versions = sorted(p for p in digits_run.serving_dir.iterdir() if p.is_dir())
    for path in (export / "model.keras", versions[-1], export / "model.tflite"):
        assert main_doctor(argparse.Namespace(path=str(path), json=False)) == 0, capsys.readouterr().out
        assert "no problems found" in capsys.readouterr().out
