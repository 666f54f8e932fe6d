"""`tfdl env`: the stack report, the refusal of a mixed Keras 2 / Keras 3 stack, and no tf_keras import in tfdl."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from tfdl import environment
from tfdl.environment import (
    collect_environment,
    installed_version,
    main_env,
    resolve_tf_keras,
    stack_problems,
)

CLEAN = {"tensorflow": "2.21.0", "keras": "3.15.1", "tf_keras": None}


def fake_versions(**versions):
    table = {**CLEAN, **versions}
    return lambda package: table.get(package, "1.0")


def test_clean_keras3_stack_has_no_problems():
    assert stack_problems("2.21.0", "3.15.1", None, None) == []
    # tf-keras installed but not selected is fine: tf.keras stays Keras 3.
    assert stack_problems("2.21.0", "3.15.1", "2.21.0", "0") == []
    assert resolve_tf_keras("2.21.0", "3.15.1", "2.21.0", None) == "keras 3"


@pytest.mark.parametrize("value", ["1", "true", "True"])
def test_legacy_variable_with_keras3_is_a_mixed_stack(value):
    problems = stack_problems("2.21.0", "3.15.1", "2.21.0", value)
    assert len(problems) == 1
    assert f"TF_USE_LEGACY_KERAS={value}" in problems[0]
    assert "tf_keras 2.21.0 (Keras 2)" in problems[0] and "keras is 3.15.1" in problems[0]
    assert "unset TF_USE_LEGACY_KERAS" in problems[0]
    assert resolve_tf_keras("2.21.0", "3.15.1", "2.21.0", value) == "tf_keras (Keras 2)"


def test_legacy_variable_without_tf_keras_leaves_tf_keras_missing():
    problems = stack_problems("2.21.0", "3.15.1", None, "1")
    assert "tf_keras, which is not installed" in problems[0]
    assert resolve_tf_keras("2.21.0", "3.15.1", None, "1") == "missing"


def test_keras2_and_old_tensorflow_are_refused_with_the_install_command():
    (keras2,) = stack_problems("2.21.0", "2.15.0", None, None)
    assert "keras 2.15.0 is Keras 2" in keras2 and "pip install 'keras>=3'" in keras2
    old_tf = stack_problems("2.15.1", "3.15.1", None, None)
    assert any("TensorFlow 2.15.1 ships Keras 2" in p and "tensorflow>=2.16" in p for p in old_tf)
    assert resolve_tf_keras("2.15.1", "3.15.1", None, None) == "keras 2"
    assert stack_problems(None, None, None, None) == [
        "TensorFlow is not installed: pip install 'tensorflow>=2.16'",
        "Keras is not installed: pip install 'keras>=3'",
    ]


def test_collect_environment_reports_the_faked_mixed_stack_without_touching_devices(monkeypatch):
    # A broken stack must be reported before anything imports TensorFlow for devices.
    monkeypatch.setattr(environment, "_devices", lambda: pytest.fail("devices looked up on a broken stack"))
    report = collect_environment({"TF_USE_LEGACY_KERAS": "1"}, fake_versions(tf_keras="2.21.0"))
    assert not report.ok and report.tf_use_legacy_keras == "1"
    assert report.tf_keras_resolves_to == "tf_keras (Keras 2)"
    assert "PROBLEM: TF_USE_LEGACY_KERAS=1" in report.describe()
    assert (report.gpus, report.xla) == (None, None) and "XLA                  not checked" in report.describe()


def test_main_env_exits_non_zero_on_a_mixed_stack(monkeypatch, capsys):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "true")
    monkeypatch.setattr(environment, "installed_version", fake_versions(tf_keras="2.21.0"))
    assert main_env(argparse.Namespace(json=True)) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False and report["tf_keras"] == "2.21.0"
    assert "fix each PROBLEM" in captured.err


def test_real_stack_is_clean_and_names_its_pieces(monkeypatch, capsys):
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    assert main_env(argparse.Namespace(json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    import keras
    import tensorflow as tf

    assert (report["tensorflow"], report["keras"]) == (tf.__version__, keras.__version__)
    assert report["tf_keras_resolves_to"] == "keras 3" and report["problems"] == []
    assert report["xla"] is tf.test.is_built_with_xla()
    assert report["gpus"] == [d.name for d in tf.config.list_physical_devices("GPU")]
    modules = [runtime["module"] for runtime in report["litert"]]
    order = ["ai_edge_litert", "tflite_runtime", "tf.lite"]
    assert modules[-1] == "tf.lite" and modules == sorted(modules, key=order.index)


def test_installed_version_rejects_unknown_packages():
    with pytest.raises(ValueError, match="no distribution names known for 'torch'"):
        installed_version("torch")


def test_tfdl_never_imports_tf_keras():
    # Even with tf_keras installed, importing tfdl and using its main modules must not load it.
    code = (
        "import sys, tfdl, tfdl.environment, tfdl.doctor, tfdl.migration, tfdl.layers, tfdl.losses, tfdl.models, tfdl.run, "
        "tfdl.export, tfdl.export.tflite, tfdl.export.op_attribution, tfdl.serving.edge\n"
        "tfdl.environment.collect_environment()\n"
        "print('tf_keras' in sys.modules)\n"
    )
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
