"""Recurrent models on TFLite builtins: unrolled over a fixed sequence length they convert and match Keras.

With no fixed length they cannot, and the error names the layer and says to fix the length.
"""

from __future__ import annotations

import numpy as np
import pytest

from tfdl.export.litert import LiteRTModel
from tfdl.export.recurrent_unroll import recurrent_sequence_lengths, unroll_recurrent
from tfdl.export.serving_model import export_serving_model
from tfdl.export.tflite import TFLiteConversionError, convert_tflite
from tfdl.models import build_model

STATIC_LSTM = {"input_shape": (9, 2), "mask_value": 0.0, "cell": "lstm", "units": (6, 4), "outputs": 2}
STATIC_BIDIRECTIONAL_GRU = {"vocabulary_size": 20, "max_length": 7, "num_classes": 3, "cell": "gru",
                            "bidirectional": True, "units": (5,), "embed_dim": 4}


def padded_batch(model, rng) -> np.ndarray:
    """Five sequences for `model`'s input, two of them padded (zeros, which the model masks)."""
    spec = model.inputs[0]
    if "int" in spec.dtype:
        batch = rng.integers(1, 20, size=(5, *spec.shape[1:])).astype("int32")
    else:
        batch = rng.normal(size=(5, *spec.shape[1:])).astype("float32")
    batch[1, 4:] = 0
    batch[3, 2:] = 0
    return batch


@pytest.mark.parametrize("name, params", [
    pytest.param("rnn_regressor", STATIC_LSTM, id="masked_stacked_lstm"),
    pytest.param("rnn", STATIC_BIDIRECTIONAL_GRU, id="token_bidirectional_gru"),
])
def test_a_fixed_length_recurrent_model_converts_unrolled_and_matches_keras(tmp_path, name, params):
    model = build_model(name, params)
    length = params.get("max_length") or params["input_shape"][0]
    assert set(recurrent_sequence_lengths(model).values()) == {length}
    # The trained model's loop does not convert, even at a fixed length (the batch is free)...
    rolled = export_serving_model(model, tmp_path / "rolled")
    with pytest.raises(TFLiteConversionError, match="TensorList"):
        convert_tflite(rolled, tmp_path / "rolled.tflite")
    # ... its unrolled copy does, and runs any batch size on builtins.
    unrolled = unroll_recurrent(model)
    assert unrolled is not model and not any(layer.get_config().get("unroll") for layer in model.layers)
    exported = convert_tflite(export_serving_model(unrolled, tmp_path / "unrolled"), tmp_path / "model.tflite")
    assert exported.tf_ops == []
    batch = padded_batch(model, np.random.default_rng(0))
    (output,) = LiteRTModel(exported.path)({model.inputs[0].name: batch}).values()
    # Keras skips the padded steps of rows 1 and 3; an unrolling that dropped the mask would not.
    np.testing.assert_allclose(output, np.asarray(model(batch, training=False)), atol=1e-5)


def test_a_dynamic_length_recurrent_model_is_named_with_the_fix_the_length_suggestion(tmp_path):
    model = build_model("rnn_regressor", {**STATIC_LSTM, "input_shape": (None, 2), "units": (4,)})
    assert recurrent_sequence_lengths(model) == {"lstm_1": None}
    assert unroll_recurrent(model) is model  # nothing it can unroll
    saved = export_serving_model(model, tmp_path / "saved")
    with pytest.raises(TFLiteConversionError) as raised:
        convert_tflite(saved, tmp_path / "model.tflite")
    message = str(raised.value)
    assert "recurrent layer(s) lstm_1" in message and "TensorListReserve in layer 'lstm_1'" in message
    assert "fix the sequence length of the model's input" in message and "input_shape: [T, features]" in message
    assert "_experimental_lower_tensor_list_ops" not in message  # the converter's advice is no fix here
    assert not (tmp_path / "model.tflite").exists()


def test_a_fixed_length_loop_exported_without_unrolling_gets_the_unroll_suggestion(tmp_path):
    model = build_model("rnn_regressor", {**STATIC_LSTM, "units": (4,)})
    with pytest.raises(TFLiteConversionError) as raised:
        convert_tflite(export_serving_model(model, tmp_path / "saved"), tmp_path / "model.tflite")
    assert "the sequence length is fixed" in str(raised.value) and "unroll" in str(raised.value)
    assert "fix the sequence length" not in str(raised.value)
