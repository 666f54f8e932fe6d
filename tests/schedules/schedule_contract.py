"""Checks every tfdl schedule must pass: compiled use, the `.keras` round trip, and config.

    assert_schedule_contract(StepDecay(0.1, every_steps=3), tmp_path)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

PROBE_STEPS = np.array([0, 1, 2, 3, 7, 50, 999, 1000, 4321, 100_000])


def values(schedule, steps=PROBE_STEPS) -> np.ndarray:
    """The schedule at each step, evaluated eagerly one step at a time."""
    return np.array([float(schedule(int(step))) for step in steps])


def assert_schedule_contract(schedule, tmp_path, steps=PROBE_STEPS) -> None:
    """from_config rebuilds it; it runs compiled on int64 steps; an Adam using it fits and round-trips."""
    rebuilt = type(schedule).from_config(schedule.get_config())
    assert rebuilt.get_config() == schedule.get_config()
    eager = values(schedule, steps)
    np.testing.assert_allclose(values(rebuilt, steps), eager, rtol=1e-7)

    # The optimizer passes its int64 `iterations` variable, inside a graph (XLA too).
    compiled = tf.function(lambda step: schedule(step), jit_compile=True)
    np.testing.assert_allclose([float(compiled(tf.constant(s, tf.int64))) for s in steps], eager, rtol=1e-6)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
    x = np.ones((4, 3), "float32")
    model.fit(x, np.zeros((4, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 2
    np.testing.assert_allclose(float(model.optimizer.learning_rate), float(schedule(2)), rtol=1e-6)

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert reloaded.optimizer.get_config() == model.optimizer.get_config()
    reloaded_schedule = reloaded.optimizer._learning_rate
    assert type(reloaded_schedule) is type(schedule)
    assert reloaded_schedule.get_config() == schedule.get_config()
    np.testing.assert_allclose(values(reloaded_schedule, steps), eager, rtol=1e-7)
