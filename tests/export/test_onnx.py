"""ONNX export through tf2onnx, checked against Keras with ONNX Runtime."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfdl.export import check_parity, export_saved_model
from tfdl.export.onnx import ONNXExportError, to_onnx


def small_cnn():
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probabilities")(x))


def test_onnx_keeps_signature_names_and_matches_keras(tmp_path):
    model = small_cnn()
    saved = export_saved_model(model, tmp_path / "m" / "1")
    onnx_path = to_onnx(saved, tmp_path / "model.onnx")
    x = np.random.default_rng(0).random((6, 8, 8, 1), dtype=np.float32)
    report = check_parity(model, {"pixels": x}, onnx_path=onnx_path, atol=1e-5)
    assert report.passed and report.to_dict()["targets"]["onnx"]["argmax_agreement"] == 1.0


def test_unconvertible_directory_is_an_onnx_export_error(tmp_path):
    with pytest.raises(ONNXExportError, match="could not convert"):
        to_onnx(tmp_path, tmp_path / "model.onnx")
