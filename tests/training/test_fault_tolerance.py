"""In-process checks of the trainer's failure paths: NaN, SIGTERM, and strategies that cannot start."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from tfdl.schema import ConfigError
from tfdl.training import TrainingConfig, make_strategy, train
from tfdl.training.errors import Preempted
from tfdl.training.steps import StepFunctions
from tfdl.training.errors import TrainingDiverged


def _data(scale: float = 1.0):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(128, 4)) * scale).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(128, seed=1).batch(16)


def _build():
    import keras

    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", dtype="float32")(hidden))


def _train(tmp_path, config: TrainingConfig, data=None):
    import keras

    keras.utils.set_random_seed(0)
    data = data if data is not None else _data()
    return train(_build, data, data, config, make_strategy("default"), tmp_path,
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"], log=lambda line: None)


def test_a_loss_that_turns_nan_stops_training_and_names_the_step_and_last_good_checkpoint(tmp_path):
    import keras

    # An infinite target in the 11th of 11 batches: step 11's loss is not finite.
    x = np.random.default_rng(0).normal(size=(176, 4)).astype("float32")
    y = x.sum(axis=1)
    y[10 * 16] = np.inf
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

    def build():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(1)(inputs))

    config = TrainingConfig(epochs=3, steps_per_execution=4, early_stopping=None, verbose=0,
                            backup={"every_steps": 4})
    with pytest.raises(TrainingDiverged, match="at step 11 \\(epoch 1\\).*last good checkpoint is .*ckpt-8") as caught:
        train(build, data, data, config, make_strategy("default"), tmp_path, loss="mse", metrics=None,
              log=lambda line: None)
    assert caught.value.step == 11 and caught.value.epoch == 1
    report = json.loads((tmp_path / "diverged.json").read_text())
    assert report["step"] == 11 and report["last_good_checkpoint"].endswith("ckpt-8")
    assert (tmp_path / "backup").is_dir()  # kept: it is the way back


def test_sigterm_saves_a_backup_and_stops_and_the_same_call_resumes(tmp_path, monkeypatch):
    config = TrainingConfig(epochs=3, steps_per_execution=2, early_stopping=None, verbose=0,
                            deterministic=True, backup={"every_steps": 100})
    whole = _train(tmp_path / "whole", config)

    original = StepFunctions.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        compiled = self.train
        calls = {"n": 0}

        def train_then_terminate(iterator, steps):
            result = compiled(iterator, steps)
            calls["n"] += 1
            if calls["n"] == 5:  # step 10 of 24, mid-epoch 2
                os.kill(os.getpid(), signal.SIGTERM)
            return result

        self.train = train_then_terminate

    monkeypatch.setattr(StepFunctions, "__init__", init)
    with pytest.raises(Preempted, match="stopped by SIGTERM at step 10.*run the same command again"):
        _train(tmp_path / "again", config)
    monkeypatch.setattr(StepFunctions, "__init__", original)
    assert signal.getsignal(signal.SIGTERM) is not None
    resumed = _train(tmp_path / "again", config)
    assert resumed.resumed_from_step == 10
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert resumed.history == whole.history


def test_mixed_bfloat16_trains_on_cpu_with_float32_variables(tmp_path):
    import keras

    try:
        result = _train(tmp_path, TrainingConfig(epochs=2, early_stopping=None, verbose=0,
                                                 mixed_precision="mixed_bfloat16", backup=None))
        assert result.precision == "mixed_bfloat16"
        dense = result.model.layers[1]
        assert dense.compute_dtype == "bfloat16" and dense.variable_dtype == "float32"
        assert np.isfinite(result.history["loss"]).all()
    finally:
        keras.config.set_dtype_policy("float32")


def test_auto_precision_is_float32_on_a_cpu():
    from tfdl.training.precision import resolve_precision

    assert resolve_precision("auto", make_strategy("default")) == "float32"
    assert resolve_precision("mixed_float16", make_strategy("default")) == "mixed_float16"


def test_a_mixed_precision_model_with_16_bit_outputs_is_warned_about():
    import keras

    from tfdl.training.precision import output_dtype_warning

    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        inputs = keras.Input((4,))
        low = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
        assert "dtype='float32'" in output_dtype_warning(low)
        assert output_dtype_warning(_build()) is None
    finally:
        keras.config.set_dtype_policy("float32")


def test_xla_compiled_steps_train_like_uncompiled_ones(tmp_path):
    plain = _train(tmp_path / "plain", TrainingConfig(epochs=2, early_stopping=None, verbose=0, jit_compile=False))
    xla = _train(tmp_path / "xla", TrainingConfig(epochs=2, early_stopping=None, verbose=0, jit_compile=True))
    assert xla.jit_compile and not plain.jit_compile
    np.testing.assert_allclose(xla.history["val_loss"], plain.history["val_loss"], rtol=1e-4)


def test_class_weights_weigh_the_loss(tmp_path):
    import keras

    # A learning rate so small the weights stay put: the epoch's loss is the
    # initial model's, each example weighted by its class.
    config = TrainingConfig(epochs=1, early_stopping=None, verbose=0, optimizer={"learning_rate": 1e-12})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    weighted = train(_build, data, data, config, make_strategy("default"), tmp_path,
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                     class_weight={0: 0.0, 1: 2.0}, log=lambda line: None)
    keras.utils.set_random_seed(0)
    per_example = keras.losses.sparse_categorical_crossentropy(y, _build()(x)).numpy()
    expected = float((2.0 * per_example * (y == 1)).sum() / len(y))
    assert weighted.history["loss"][0] == pytest.approx(expected, rel=1e-4)
    assert weighted.history["loss"][0] != pytest.approx(float(per_example.mean()), rel=1e-2)


def test_the_learning_rate_scales_with_the_replicas():
    from tfdl.schedules import ScaledSchedule
    from tfdl.training import OptimizerConfig, make_optimizer

    assert float(make_optimizer(OptimizerConfig(learning_rate=0.01), scale=4).learning_rate) == pytest.approx(0.04)
    scheduled = make_optimizer(OptimizerConfig(schedule={"name": "step", "params": {"initial_learning_rate": 0.1,
                                                                                      "every_steps": 10}}), scale=2)
    assert isinstance(scheduled._learning_rate, ScaledSchedule)
    assert float(scheduled._learning_rate(0)) == pytest.approx(0.2)
    assert float(scheduled._learning_rate(10)) == pytest.approx(0.1)


def test_a_tpu_strategy_without_a_tpu_fails_at_once_with_what_to_do(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ConfigError, match="no TPU named; set training.tpu"):
        make_strategy("tpu")
    with pytest.raises(ConfigError, match="this machine has no TPU device"):
        make_strategy("tpu", tpu="local")


def test_multi_worker_without_a_usable_tf_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG environment variable is not set"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{cluster: 1}")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ConfigError, match="is not in the cluster"):
        make_strategy("multi_worker")


def test_jit_compile_with_several_local_replicas_is_refused():
    from tfdl.training.steps import resolve_jit_compile

    class TwoDevices:
        class extended:
            worker_devices = ("/cpu:0", "/cpu:1")

    with pytest.raises(ValueError, match="one replica per worker"):
        resolve_jit_compile(True, TwoDevices())
    assert resolve_jit_compile("auto", TwoDevices()) is False


def test_a_backup_from_a_different_model_is_refused_with_what_to_do(tmp_path, monkeypatch):
    import keras

    config = TrainingConfig(epochs=2, steps_per_execution=2, early_stopping=None, verbose=0,
                            backup={"every_steps": 3})
    original = StepFunctions.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        compiled = self.train

        def train_then_terminate(iterator, steps):
            result = compiled(iterator, steps)
            os.kill(os.getpid(), signal.SIGTERM)
            return result

        self.train = train_then_terminate

    monkeypatch.setattr(StepFunctions, "__init__", init)
    with pytest.raises(Preempted):
        _train(tmp_path, config)
    monkeypatch.setattr(StepFunctions, "__init__", original)

    def wider():
        inputs = keras.Input((4,), name="features")
        hidden = keras.layers.Dense(32, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))

    data = _data()
    with pytest.raises(ConfigError, match="does not fit this run.*delete .*backup to start training over"):
        train(wider, data, data, config, make_strategy("default"), tmp_path,
              loss="sparse_categorical_crossentropy", metrics=["accuracy"], log=lambda line: None)
