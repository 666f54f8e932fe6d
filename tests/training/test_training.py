import numpy as np
import pytest
import tensorflow as tf

from tfdl.training import OptimizerConfig, TrainingConfig, make_optimizer, make_strategy, train


def test_auto_strategy_without_several_gpus_is_the_default_strategy():
    strategy = make_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_mirrored_strategy_over_named_devices():
    strategy = make_strategy("mirrored", ["/cpu:0"])
    assert isinstance(strategy, tf.distribute.MirroredStrategy)


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="training.strategy"):
        make_strategy("tpuu")


@pytest.mark.parametrize("name, cls", [("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_optimizer_from_config(name, cls):
    optimizer = make_optimizer(OptimizerConfig(name=name, learning_rate=0.01, momentum=0.5 if name == "sgd" else 0.0))
    assert type(optimizer).__name__ == cls
    assert float(optimizer.learning_rate) == pytest.approx(0.01)


def test_train_writes_checkpoints_logs_and_restores_the_best_epoch(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)

    def build():
        inputs = keras.Input((4,), name="features")
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(inputs))

    config = TrainingConfig(epochs=6, steps_per_execution=4, verbose=0, optimizer=OptimizerConfig(learning_rate=0.05))
    result = train(build, data, data, config, make_strategy("default"), tmp_path,
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert result.epochs_run == 6
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    assert result.checkpoints["best"].is_file() and result.checkpoints["last"].is_file()
    assert any((tmp_path / "logs").rglob("events.out.tfevents*"))
    assert (tmp_path / "history.csv").read_text().count("\n") == 7


def _learning_makes_validation_worse():
    """Data whose validation labels are the opposite of training's: the better the model learns,
    the worse validation gets, so the first epoch is the best one; and a model builder."""
    import keras

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    train_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((x, 1 - y)).batch(32)

    def build():
        inputs = keras.Input((4,), name="features")
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))

    return train_data, validation, build


def test_the_returned_model_holds_the_best_epoch_not_the_last(tmp_path):
    train_data, validation, build = _learning_makes_validation_worse()
    config = TrainingConfig(epochs=5, early_stopping=None, verbose=0, optimizer=OptimizerConfig(learning_rate=0.05))
    result = train(build, train_data, validation, config, make_strategy("default"), tmp_path,
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    losses = result.history["val_loss"]
    assert result.best_epoch == 1 and losses[-1] > losses[0]
    assert result.model.evaluate(validation, verbose=0, return_dict=True)["loss"] == pytest.approx(losses[0], rel=1e-5)


def test_keep_last_returns_the_last_epoch_and_the_hook_sees_every_epoch(tmp_path):
    train_data, validation, build = _learning_makes_validation_worse()
    seen = []
    config = TrainingConfig(epochs=4, early_stopping=None, keep="last", verbose=0,
                            optimizer=OptimizerConfig(learning_rate=0.05))
    result = train(build, train_data, validation, config, make_strategy("default"), tmp_path,
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                   epoch_end=lambda epoch, model: seen.append((epoch, model.get_weights()[0].copy())))
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    assert not np.allclose(seen[0][1], seen[-1][1])
    np.testing.assert_array_equal(result.model.get_weights()[0], seen[-1][1])  # the last epoch, not the best
    losses = result.history["val_loss"]
    assert result.model.evaluate(validation, verbose=0, return_dict=True)["loss"] == pytest.approx(losses[-1], rel=1e-5)


def test_a_model_without_a_loss_to_rank_epochs_by_is_told_what_to_set(tmp_path):
    import keras

    from tfdl.schema import ConfigError

    class TwoLosses(keras.Model):  # reports its own losses, none named "loss" (as a GAN does)
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.tracker = keras.metrics.Mean(name="d_loss")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, _ = data
            self.tracker.update_state(keras.ops.mean(self(x) ** 2))
            return {"d_loss": self.tracker.result()}

        def test_step(self, data):
            return self.train_step(data)

        @property
        def metrics(self):
            return [self.tracker]

    x = np.ones((8, 2), "float32")
    data = tf.data.Dataset.from_tensor_slices((x, x[:, 0])).batch(4)
    with pytest.raises(ConfigError, match="training.keep: last"):
        train(TwoLosses, data, data, TrainingConfig(epochs=1, verbose=0, backup=None), make_strategy("default"),
              tmp_path, loss=None, metrics=[])
    result = train(TwoLosses, data, data, TrainingConfig(epochs=2, verbose=0, backup=None, keep="last",
                                                         early_stopping=None),
                   make_strategy("default"), tmp_path / "ok", loss=None, metrics=[])
    assert len(result.history["d_loss"]) == 2 and result.epochs_run == 2


def test_optimizer_takes_a_schedule_from_the_config():
    from tfdl.schedules import CosineDecayWithWarmup

    config = OptimizerConfig(schedule={"name": "cosine_warmup",
                                       "params": {"peak_learning_rate": 0.01, "warmup_steps": 10, "decay_steps": 100}})
    optimizer = make_optimizer(config)
    assert isinstance(optimizer._learning_rate, CosineDecayWithWarmup)
    assert float(optimizer._learning_rate(10)) == pytest.approx(0.01)


def test_a_bad_schedule_in_the_run_config_is_named():
    from tfdl.config import load_config
    from tfdl.schema import ConfigError

    with pytest.raises(ConfigError, match="training.optimizer.schedule"):
        load_config(None, ["training.optimizer.schedule={name: exponential, params: {decay_steps: 0}}"])
    with pytest.raises(ConfigError, match="training.optimizer.schedule.name"):
        load_config(None, ["training.optimizer.schedule={name: linear}"])


def test_strategies_are_described_by_their_public_names():
    from tfdl.training import describe_strategy

    assert describe_strategy(make_strategy("default")) == "the default strategy (1 replica)"
    assert describe_strategy(make_strategy("one_device", ["/cpu:0"])) == "OneDeviceStrategy (1 replica)"
    assert describe_strategy(make_strategy("mirrored", ["/cpu:0"])) == "MirroredStrategy (1 replica)"
