"""TFLite op attribution: each op outside the builtins is named with the Keras layer that made it and its fix."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from tfdl.export.op_attribution import (
    OpAttribution,
    attribute_ops,
    builtin_attributions,
    describe_attributions,
    flex_attributions,
    layer_from_node,
    suggest_fix,
)
from tfdl.export.saved_model import export_saved_model
from tfdl.export.tflite import TFLiteConversionError, convert_tflite
from tfdl.layers import Sampling


@keras.saving.register_keras_serializable(package="tfdl_test_attribution")
class Inverse(keras.layers.Layer):
    """A layer whose op (MatrixInverse) has no TFLite builtin."""

    def call(self, x):
        return tf.linalg.inv(x)


@pytest.mark.parametrize(
    "node, names, layer",
    [
        # Node names as the TF 2.21 converter reports them for Keras 3 models.
        ("mymodel_1/lstm_a_1/TensorArrayV2_1", None, "lstm_a"),
        ("mymodel_1/sampler_1/stateless_random_normal/StatelessRandomNormalV2@__inference___call___687", None,
         "sampler"),
        ("model/lstm_1/while/TensorListReserve", ["lstm_1", "dense"], "lstm_1"),  # the exact name beats the suffix rule
        ("model/lstm_1/while/TensorListReserve", ["lstm", "dense"], "lstm"),
        ("outer_1/block_2/inner_3/MatMul", ["outer", "block_2", "inner"], "inner"),  # the innermost known layer
        ("outer_1/block_2/inner_3/MatMul", ["other"], None),
        ("StatefulPartitionedCall_1:1", None, None),
        ("serving_default_s:0", None, None),
        (None, None, None),
    ],
)
def test_layer_from_node_reads_the_layer_scope(node, names, layer):
    assert layer_from_node(node, names) == layer


@pytest.mark.parametrize(
    "op, words",
    [
        ("TensorListReserve", "unroll=True"),
        ("tf.TensorListSetItem", "static sequence length"),
        ("StatelessRandomNormalV2", "Sampling(mean_at_inference=True)"),
        ("FlexRandomStandardNormal", "mean_at_inference"),
        ("StringLower", "input pipeline"),
        ("RaggedTensorToTensor", "token ids"),
        ("StridedSlice", "expand_dims"),
        ("MatrixInverse", "outside the model"),
    ],
)
def test_known_fixes(op, words):
    assert words in suggest_fix(op)


def test_unknown_op_has_no_fix():
    assert suggest_fix("Conv2D") is None


def test_attribute_ops_dedupes_and_sorts_by_layer_then_op():
    found = attribute_ops([
        ("tf.StatelessRandomNormalV2", "m_1/sampler_1/x/StatelessRandomNormalV2@f"),
        ("tf.StatelessRandomNormalV2", "m_1/sampler_1/x/StatelessRandomNormalV2@f"),
        ("FlexMatrixInverse", "m_1/inverse_1/MatrixInverse"),
        ("Erf", None),
    ])
    assert [(a.op, a.layer, a.node) for a in found] == [
        ("Erf", None, None),
        ("MatrixInverse", "inverse", "m_1/inverse_1/MatrixInverse"),
        ("StatelessRandomNormalV2", "sampler", "m_1/sampler_1/x/StatelessRandomNormalV2"),
    ]
    assert found[0].describe() == "Erf in no layer found"
    assert describe_attributions(found[1:2]) == (
        "- MatrixInverse in layer 'inverse' (node m_1/inverse_1/MatrixInverse): " + suggest_fix("MatrixInverse")
    )
    assert OpAttribution("A", None, "l", None).to_dict() == {"op": "A", "node": None, "layer": "l", "fix": None}


@pytest.fixture(scope="module")
def flex_model(tmp_path_factory):
    """A SavedModel whose `inverse` and `sampler` layers need Select TF ops, and its layer names."""
    keras.utils.set_random_seed(0)
    matrices = keras.Input((2, 2), name="matrices")
    flat = keras.layers.Flatten(name="flat")(Inverse(name="inverse")(matrices))
    mean = keras.layers.Dense(2, name="mean")(flat)
    log_var = keras.layers.Dense(2, name="log_var")(flat)
    model = keras.Model(matrices, Sampling(seed=1, name="sampler")([mean, log_var]), name="flexy")
    saved = export_saved_model(model, tmp_path_factory.mktemp("flex") / "saved")
    return saved, [layer.name for layer in model.layers]


def _layers_and_ops(attributions):
    return {(a.layer, a.op) for a in attributions}


EXPECTED = {
    ("inverse", "MatrixInverse"),
    ("sampler", "StatelessRandomGetKeyCounter"),
    ("sampler", "StatelessRandomNormalV2"),
}


def test_builtin_conversion_names_each_op_with_its_layer(flex_model):
    saved, names = flex_model
    found = builtin_attributions(saved, names)
    assert _layers_and_ops(found) == EXPECTED
    assert {a.fix for a in found if a.layer == "sampler"} == {suggest_fix("StatelessRandomNormalV2")}


def test_convert_tflite_error_and_flex_export_name_the_layers(flex_model, tmp_path):
    saved, _ = flex_model
    with pytest.raises(TFLiteConversionError) as caught:
        convert_tflite(saved, tmp_path / "builtins.tflite")
    message = str(caught.value)
    assert "- MatrixInverse in layer 'inverse'" in message
    assert "- StatelessRandomNormalV2 in layer 'sampler'" in message and "mean_at_inference=True" in message
    exported = convert_tflite(saved, tmp_path / "flex.tflite", allow_tf_ops=True)
    assert exported.tf_ops == sorted(op for _, op in EXPECTED)
    assert _layers_and_ops(exported.tf_op_layers) == EXPECTED
    # Read back from the file alone, through its tensor names.
    assert _layers_and_ops(flex_attributions(exported.path.read_bytes())) == EXPECTED


def test_builtin_model_has_nothing_to_attribute(tmp_path):
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs))
    saved = export_saved_model(model, tmp_path / "saved")
    assert builtin_attributions(saved) == []
    assert flex_attributions(convert_tflite(saved, tmp_path / "m.tflite").path.read_bytes()) == []


def test_builtin_attributions_rejects_a_folder_without_saved_model(tmp_path):
    with pytest.raises(ValueError, match="not a SavedModel"):
        builtin_attributions(tmp_path)
