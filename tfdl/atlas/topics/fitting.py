"""Shared by the topic modules: train a Keras model for a fixed number of steps on arrays."""

from __future__ import annotations


def fit_steps(model, x, y, *, steps: int, learning_rate: float, batch_size: int = 64, seed: int = 0, loss=None) -> None:
    """Train `model` with Adam for `steps` mini-batch steps over shuffled, repeated `(x, y)`.

    One long epoch fed by tf.data: Keras's per-epoch cost on numpy arrays
    would dominate these tiny experiments.
    """
    import keras
    import tensorflow as tf

    feed = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat().batch(batch_size)
    model.compile(keras.optimizers.Adam(learning_rate), loss or "sparse_categorical_crossentropy",
                  steps_per_execution=min(steps, 50))
    model.fit(feed, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
