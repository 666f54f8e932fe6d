"""When the trainer writes its best checkpoint: with the backup, not at every better epoch.

Short epochs each paid a weights file; now a better epoch's weights wait in
memory for the next backup (or the end, or a SIGTERM), and what is written
is that epoch's weights even when training has moved on since.
"""

from __future__ import annotations

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.training import TrainingConfig, make_strategy, train
from tfdl.training.errors import Preempted


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(128, seed=1).batch(16)  # 8 steps an epoch


def _build():
    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))


def _train(run_dir, backup, epochs=5, epoch_end=None):
    keras.utils.set_random_seed(0)
    config = TrainingConfig(epochs=epochs, steps_per_execution=4, early_stopping=None, deterministic=True,
                            verbose=0, backup=backup, optimizer={"learning_rate": 0.05})
    return train(_build, _data(), _data(), config, make_strategy("default"), run_dir,
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"], log=lambda line: None,
                 epoch_end=epoch_end)


def _weights_in(path):
    model = _build()
    model.load_weights(path)
    return model.get_weights()


@pytest.fixture
def writes(monkeypatch):
    """Every weights file the trainer writes: (file name, the weights written)."""
    seen = []
    original = keras.Model.save_weights

    def save_weights(self, filepath, *args, **kwargs):
        seen.append((os.path.basename(filepath), self.get_weights()))
        return original(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    return seen


def test_better_epochs_are_written_once_at_the_end_when_no_backup_falls_due(tmp_path, writes):
    result = _train(tmp_path, backup={"every_seconds": 3600})
    losses = result.history["val_loss"]
    assert sum(loss < min(losses[:i]) for i, loss in enumerate(losses) if i) >= 2  # several better epochs
    assert [name for name, _ in writes] == ["best.weights.h5", "last.weights.h5"]
    for written, best in zip(_weights_in(result.checkpoints["best"]), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(written, best)


def test_a_backup_mid_epoch_writes_the_better_epoch_not_the_moved_weights_and_training_goes_on_unchanged(
    tmp_path, writes
):
    per_epoch = []
    _train(tmp_path / "plain", backup=None, epochs=3)
    plain = [w for name, w in writes if name == "last.weights.h5"][-1]
    writes.clear()
    # Backups at steps 12 and 24: mid-epoch 2 (epoch 1 is the best so far) and the end of epoch 3.
    result = _train(tmp_path / "backed", backup={"every_steps": 12, "every_seconds": 3600}, epochs=3,
                    epoch_end=lambda epoch, model: per_epoch.append(model.get_weights()))
    assert [name for name, _ in writes][:2] == ["best.weights.h5", "last.weights.h5"]
    (_, best_at_step_12), (_, last_at_step_12) = writes[:2]
    for best, epoch_1 in zip(best_at_step_12, per_epoch[0], strict=True):
        np.testing.assert_array_equal(best, epoch_1)
    assert not all(np.array_equal(a, b) for a, b in zip(last_at_step_12, per_epoch[0]))
    # Writing the best epoch's weights in between did not disturb training.
    for backed, unbacked in zip(per_epoch[-1], plain, strict=True):
        np.testing.assert_array_equal(backed, unbacked)
    assert result.epochs_run == 3


def test_a_sigterm_writes_the_best_epoch_so_far(tmp_path):
    per_epoch, losses = [], []

    def epoch_end(epoch, model):
        per_epoch.append(model.get_weights())
        losses.append(model.evaluate(_data(), verbose=0, return_dict=True)["loss"])
        if epoch == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted):
        _train(tmp_path, backup={"every_seconds": 3600}, epoch_end=epoch_end)
    assert (tmp_path / "backup").is_dir()
    best = _weights_in(tmp_path / "checkpoints" / "best.weights.h5")
    last = _weights_in(tmp_path / "checkpoints" / "last.weights.h5")
    for written, best_so_far in zip(best, per_epoch[int(np.argmin(losses))], strict=True):
        np.testing.assert_array_equal(written, best_so_far)
    for written, epoch_3 in zip(last, per_epoch[2], strict=True):
        np.testing.assert_array_equal(written, epoch_3)
