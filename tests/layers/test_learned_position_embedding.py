"""LearnedPositionEmbedding: table slices, start_index, dynamic lengths, training, errors, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from tfdl.layers.learned_position_embedding import LearnedPositionEmbedding


def _table(layer) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer.embeddings)


def test_output_is_the_table_slice_broadcast_over_the_batch():
    layer = LearnedPositionEmbedding(max_length=10)
    out = np.asarray(layer(np.zeros((3, 6, 4), "float32")))
    assert layer.embeddings.shape == (10, 4)
    np.testing.assert_array_equal(out, np.broadcast_to(_table(layer)[:6], (3, 6, 4)))


def test_start_index_selects_later_rows():
    layer = LearnedPositionEmbedding(max_length=10)
    x = np.zeros((1, 3, 4), "float32")
    layer(x)
    for start in (0, 4, 7, tf.constant(5)):
        begin = int(start)
        np.testing.assert_array_equal(np.asarray(layer(x, start_index=start))[0], _table(layer)[begin : begin + 3])


def test_dynamic_sequence_length():
    inputs = keras.Input(shape=(None, 4))
    layer = LearnedPositionEmbedding(max_length=20)
    model = keras.Model(inputs, layer(inputs))
    for length in (3, 20):
        out = np.asarray(model(np.zeros((2, length, 4), "float32")))
        np.testing.assert_array_equal(out[1], _table(layer)[:length])


def test_table_is_trainable():
    layer = LearnedPositionEmbedding(max_length=8)
    x = np.zeros((2, 5, 4), "float32")
    layer(x)
    assert [w.path for w in layer.trainable_weights] == [layer.embeddings.path]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) * np.arange(4, dtype="float32"))
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    grad = tf.convert_to_tensor(grad).numpy()
    # Rows 0..4 each get the batch size (2) times the channel weights; unused rows get nothing.
    np.testing.assert_allclose(grad[:5], np.broadcast_to(2 * np.arange(4.0), (5, 4)))
    np.testing.assert_array_equal(grad[5:], 0.0)


def test_initializer_is_used_and_serialized():
    layer = LearnedPositionEmbedding(max_length=4, initializer="ones")
    layer(np.zeros((1, 2, 3), "float32"))
    np.testing.assert_array_equal(_table(layer), 1.0)
    rebuilt = LearnedPositionEmbedding.from_config(layer.get_config())
    rebuilt(np.zeros((1, 2, 3), "float32"))
    np.testing.assert_array_equal(_table(rebuilt), 1.0)


def test_too_long_sequences_are_rejected():
    with pytest.raises(ValueError, match=r"sequence length 9.*max_length=8"):
        LearnedPositionEmbedding(max_length=8)(keras.Input(shape=(9, 4)))
    layer = LearnedPositionEmbedding(max_length=8)
    with pytest.raises(ValueError, match=r"start_index 6.*max_length=8"):
        layer(np.zeros((1, 3, 4), "float32"), start_index=6)


def test_unknown_dimension_is_rejected():
    with pytest.raises(ValueError, match=r"d known.*\(None, 3, None\)"):
        LearnedPositionEmbedding(max_length=8).build((None, 3, None))


def test_round_trip_and_tflite(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 6, 4)).astype("float32")
    layer = LearnedPositionEmbedding(max_length=8)
    out = run_layer_test(layer, x, tmp_path, expected_shape=(2, 6, 4), tflite=True)
    np.testing.assert_array_equal(out, np.broadcast_to(_table(layer)[:6], (2, 6, 4)))
