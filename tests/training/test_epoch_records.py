"""What a run records each epoch, read back the way TensorBoard and a person read it."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.training import TrainingConfig, make_strategy, train


def _run(tmp_path, validation_size: int):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96 + validation_size, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    train_data = tf.data.Dataset.from_tensor_slices((x[:96], y[:96])).shuffle(96, seed=1).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((x[96:], y[96:])).batch(32)

    def build():
        inputs = keras.Input((4,), name="features")
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))

    fresh = []  # each epoch's validation loss, evaluated anew by Keras
    config = TrainingConfig(epochs=4, early_stopping=None, verbose=0, optimizer={"learning_rate": 0.05})
    result = train(build, train_data, validation, config, make_strategy("default"), tmp_path,
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"], log=lambda line: None,
                   epoch_end=lambda epoch, model: fresh.append(
                       model.evaluate(validation, verbose=0, return_dict=True)["loss"]))
    return result, fresh


@pytest.mark.parametrize("validation_size", [70, 64], ids=["a short last batch", "whole batches"])
def test_each_epoch_validates_on_every_example_once(tmp_path, validation_size):
    # The trainer reads validation through one iterator kept across epochs;
    # each pass must still be exactly the whole set, epoch after epoch.
    result, fresh = _run(tmp_path, validation_size)
    assert len(set(result.history["val_loss"])) == 4  # the model changed between passes
    np.testing.assert_allclose(result.history["val_loss"], fresh, rtol=1e-5)


def test_tensorboard_reads_every_epoch_scalar(tmp_path):
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    result, _ = _run(tmp_path, 64)
    for split, prefix, tags in [
        ("train", "", {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}),
        ("validation", "val_", {"epoch_loss", "epoch_accuracy"}),
    ]:
        events = EventAccumulator(str(tmp_path / "logs" / split))
        events.Reload()
        assert set(events.Tags()["tensors"]) == tags
        for tag in tags:
            assert events.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
        loss = events.Tensors("epoch_loss")
        assert [event.step for event in loss] == [1, 2, 3, 4]
        np.testing.assert_allclose([float(tf.make_ndarray(e.tensor_proto)) for e in loss],
                                   result.history[f"{prefix}loss"], rtol=1e-6)
