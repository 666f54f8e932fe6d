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


@keras.saving.register_keras_serializable(package="tfdl_doctor_test")
class InverseHead(keras.Model):
    """A subclassed model (no Keras inputs) with a sublayer TFLite builtins cannot run."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inverse = Inverse(name="inverse")
        self.flat = keras.layers.Flatten(name="flat")

    def call(self, x):
        return self.flat(self.inverse(x))


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
    # A subclassed model: its TFLite check exports it with the input shape its file records.
    assert report.checks[-2:] == ["unbuilt", "tflite_ops"] and report.notes == []
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


def _export(model, path, tflite):
    from tfdl.export.serving_model import export_serving_model

    return export_serving_model(model, path, tflite=tflite)


def _doctor(path, capsys) -> tuple[int, dict]:
    capsys.readouterr()  # drop what ran before (a run's epoch lines)
    code = main_doctor(argparse.Namespace(path=str(path), json=True))
    return code, json.loads(capsys.readouterr().out)


def test_subclassed_models_get_the_tflite_check(tmp_path, capsys):
    from registry_models import TINY, served_forms

    from tfdl.models import build_model

    head = InverseHead(name="inverse_head")
    head(np.eye(2, dtype="float32")[None])
    report = diagnose(_save(head, tmp_path / "inverse_head.keras"))
    assert report.checks[-1] == "tflite_ops" and report.notes == []
    assert {(f.layer, f.problem.split()[1]) for f in report.findings} == {("inverse", "MatrixInverse")}

    vae = build_model("vae", TINY["vae"])
    served_forms("vae", vae, primary_only=True)  # the first call builds it and records its input shape
    code, found = _doctor(_save(vae, tmp_path / "vae.keras"), capsys)
    assert code == 0 and found["checks"][-1] == "tflite_ops" and found["notes"] == []

    # A GAN is never called as a whole: its generator and discriminator are checked instead, and a note says so.
    gan = build_model("dcgan", TINY["dcgan"])
    served_forms("dcgan", gan, primary_only=True)
    code, found = _doctor(_save(gan, tmp_path / "dcgan.keras"), capsys)
    assert code == 0 and found["checks"][-1] == "tflite_ops"
    assert "functional parts" in found["notes"][0] and "generator, discriminator" in found["notes"][0]


def test_manifest_decides_whether_tflite_ops_are_a_problem(broken, tmp_path, capsys):
    flexy = keras.saving.load_model(broken["flex_keras"], safe_mode=True)
    meant_for_tflite = _export(flexy, tmp_path / "tflite" / "1", ["float32"])
    code, found = _doctor(meant_for_tflite, capsys)
    assert code == 1 and {f["severity"] for f in found["findings"]} == {"problem"}
    assert {f["layer"] for f in found["findings"]} == {"inverse", "sampler"}

    no_tflite = _export(flexy, tmp_path / "no_tflite" / "1", [])
    code, found = _doctor(no_tflite, capsys)
    assert code == 0 and found["ok"] is True
    assert {(f["layer"], f["severity"]) for f in found["findings"]} == {("inverse", "note"), ("sampler", "note")}
    assert all("export.tflite is []" in f["problem"] for f in found["findings"])
    # The JSON keeps its keys; each finding only gains `severity`.
    assert set(found) == {"path", "kind", "ok", "checks", "findings", "notes"}
    assert set(found["findings"][0]) == {"check", "layer", "problem", "fix", "severity"}

    # A manifest that does not say (written by other code) or none at all: the intent is unknown, a problem.
    unknown = _export(flexy, tmp_path / "unknown" / "1", None)
    assert diagnose(unknown).ok is False
    (no_tflite / "manifest.json").unlink()
    assert diagnose(no_tflite).ok is False
    (no_tflite / "manifest.json").write_text("{not json")
    assert ("manifest", None) in {(f.check, f.layer) for f in diagnose(no_tflite, convert=False).findings}


def test_a_dynamic_length_rnn_is_named_with_the_fix_the_length_suggestion(tmp_path, capsys):
    from registry_models import TINY

    from tfdl.models import build_model

    rnn = build_model("rnn", TINY["rnn"])  # token ids of any length
    saved = _export(rnn, tmp_path / "rnn" / "1", ["float32"])
    code, found = _doctor(saved, capsys)
    # The converter stops at the first loop it cannot lower.
    assert code == 1 and found["findings"]
    assert {f["layer"] for f in found["findings"]} <= {"bidirectional_1", "bidirectional_2"}
    assert all("fix the sequence length" in f["fix"] and "max_length: T" in f["fix"] for f in found["findings"])
    report = diagnose(_save(rnn, tmp_path / "rnn.keras"))
    assert report.findings and all("fix the sequence length" in f.fix for f in report.findings)


def test_doctor_passes_the_exported_rnn_models(tmp_path, capsys):
    from registry_models import TINY

    from tfdl.export.recurrent_unroll import unroll_recurrent
    from tfdl.models import build_model

    # A text rnn over token ids of any length, exported as its config says (no TFLite): notes, exit 0.
    rnn = build_model("rnn", TINY["rnn"])
    code, found = _doctor(_export(rnn, tmp_path / "rnn" / "1", []), capsys)
    assert code == 0 and found["findings"] and {f["severity"] for f in found["findings"]} == {"note"}
    # With a fixed length the export unrolls it for TFLite: nothing to report at all.
    fixed = build_model("rnn", {**TINY["rnn"], "max_length": 6})
    code, found = _doctor(_export(unroll_recurrent(fixed), tmp_path / "fixed" / "1", ["float32"]), capsys)
    assert (code, found["findings"]) == (0, [])
    code, found = _doctor(_save(fixed, tmp_path / "fixed.keras"), capsys)  # the .keras check unrolls it too
    assert (code, found["findings"]) == (0, [])


def test_doctor_passes_a_recurrent_run_export_with_tflite(tmp_path, capsys):
    """configs/sine_forecaster.yaml (rnn_regressor, 40 fixed steps) writes TFLite; doctor passes all it exports."""
    from tfdl.config import load_config
    from tfdl.run import run

    config = load_config("sine_forecaster", ["data.source.examples=300", "training.epochs=2",
                                             "training.early_stopping=null", "model.params.units=[4]"])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    version = result.serving_dir / str(result.version)
    assert json.loads((version / "manifest.json").read_text())["tflite"] == ["float32"]
    assert result.metrics["parity"]["targets"]["tflite"]["passed"]
    export = tmp_path / "run" / "export"
    for path in (export / "model.keras", version, export / "model.tflite"):
        code, found = _doctor(path, capsys)
        assert (code, found["findings"], found["notes"]) == (0, [], []), path


def test_doctor_passes_a_text_rnn_run_export_without_tflite(tmp_path, capsys):
    """configs/sentences_lstm.yaml (rnn on raw strings) writes no TFLite: its string and loop ops are notes."""
    from tfdl.config import load_config
    from tfdl.run import run

    config = load_config("sentences_lstm", ["training.epochs=1", "training.early_stopping=null",
                                            "model.params.units=[4]", "model.params.embed_dim=4"])
    result = run(config, output_dir=tmp_path / "run", log=lambda _: None)
    version = result.serving_dir / str(result.version)
    assert json.loads((version / "manifest.json").read_text())["tflite"] == []
    layers = {}
    for path in (tmp_path / "run" / "export" / "model.keras", version):
        code, found = _doctor(path, capsys)
        assert code == 0 and found["findings"], path
        assert {f["severity"] for f in found["findings"]} == {"note"}
        layers[path.suffix] = {f["layer"] for f in found["findings"]}
    # The .keras check converts the unrolled form (24 fixed steps), so it reaches the string ops; the
    # SavedModel's conversion stops at the bidirectional LSTM's loop first.
    assert layers == {".keras": {"text_vectorization"}, "": {"rnn"}}
    # The same .keras file outside its export folder has no record of its purpose: problems again.
    moved = tmp_path / "elsewhere.keras"
    moved.write_bytes((tmp_path / "run" / "export" / "model.keras").read_bytes())
    assert diagnose(moved).ok is False
