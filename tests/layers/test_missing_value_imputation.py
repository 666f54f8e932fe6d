"""MissingValueImputation: numpy reference, indicators, config, .keras round trip, SavedModel, TFLite."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from tfdl.layers.missing_value_imputation import MissingValueImputation

NAN = np.nan
FILL = [1.5, -2.0, 10.0]
X = np.array(
    [[NAN, 1.0, 2.0], [3.0, NAN, NAN], [4.0, 5.0, 6.0], [NAN, NAN, NAN], [np.inf, 0.0, -np.inf]],
    dtype=np.float32,
)


def reference(x: np.ndarray, fill, indicator_columns=()) -> np.ndarray:
    missing = np.isnan(x)
    filled = np.where(missing, np.asarray(fill, dtype=np.float32), x)
    return np.concatenate([filled, missing[:, list(indicator_columns)].astype(np.float32)], axis=1)


def test_fills_nan_per_column_and_leaves_other_values_alone():
    out = np.asarray(MissingValueImputation(FILL)(X))
    np.testing.assert_array_equal(out, reference(X, FILL))
    # Infinities are values, not missing.
    assert out[4, 0] == np.inf and out[4, 2] == -np.inf


def test_indicator_columns_follow_the_given_order():
    out = np.asarray(MissingValueImputation(FILL, indicator_columns=[2, 0])(X))
    assert out.shape == (5, 5)
    np.testing.assert_array_equal(out[:, 3], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(out[:, 4], [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(out, reference(X, FILL, [2, 0]))


def test_round_trip_saved_model_and_tflite_through_the_harness(tmp_path):
    run_layer_test(
        MissingValueImputation(FILL, indicator_columns=[0, 1]),
        X[:4],
        tmp_path,
        expected_shape=(4, 5),
        reference=reference(X[:4], FILL, [0, 1]),
        atol=0,
        tflite=True,
        tflite_atol=0,
    )


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    inputs = keras.Input((3,), name="features")
    hidden = MissingValueImputation(FILL, indicator_columns=[1])(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones")(hidden))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(reloaded(X[:4])), np.asarray(model(X[:4])))
    layer = reloaded.layers[1]
    assert isinstance(layer, MissingValueImputation)
    assert layer.fill_values == FILL and layer.indicator_columns == [1]


def test_from_keras_model_tflite_matches_keras_on_nan_input(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input((3,), name="features")
    model = keras.Model(inputs, MissingValueImputation(FILL, indicator_columns=[2])(inputs))
    flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interpreter = Interpreter(model_content=flat)
    runner = interpreter.get_signature_runner()
    (served,) = runner(features=X).values()
    np.testing.assert_array_equal(served, np.asarray(model(X)))
    np.testing.assert_array_equal(served, reference(X, FILL, [2]))


def test_config_holds_plain_lists():
    layer = MissingValueImputation(np.array([1, 2], dtype=np.float64), indicator_columns=np.array([1]), name="imp")
    config = layer.get_config()
    assert config["fill_values"] == [1.0, 2.0] and type(config["fill_values"]) is list
    assert config["indicator_columns"] == [1] and type(config["indicator_columns"]) is list
    assert MissingValueImputation.from_config(config).get_config() == config


def test_runs_inside_a_tf_data_map():
    layer = MissingValueImputation(FILL)
    ds = tf.data.Dataset.from_tensor_slices(X[:4]).batch(2).map(layer, num_parallel_calls=tf.data.AUTOTUNE)
    out = np.concatenate([batch.numpy() for batch in ds])
    np.testing.assert_array_equal(out, reference(X[:4], FILL))


def test_bad_arguments_and_wrong_column_count_are_refused():
    with pytest.raises(ValueError, match=r"must be finite.*columns \[1\]"):
        MissingValueImputation([0.0, NAN])
    with pytest.raises(ValueError, match=r"distinct column indices in \[0, 2\); got \[2\]"):
        MissingValueImputation([0.0, 1.0], indicator_columns=[2])
    with pytest.raises(ValueError, match=r"distinct.*got \[0, 0\]"):
        MissingValueImputation([0.0, 1.0], indicator_columns=[0, 0])
    with pytest.raises(ValueError, match=r"fitted on 3 columns but its input has 2"):
        MissingValueImputation(FILL)(np.zeros((1, 2), dtype=np.float32))
