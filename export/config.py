"""Typed configuration of the export stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tfdl.schema import StrictModel

TFLiteMode = Literal["float32", "dynamic_range", "float16", "int8"]


class ExportConfig(StrictModel):
    """What a run exports, and under which name and version it serves.

    Attributes:
        model_name: the name clients use (`/v1/models/NAME`) and the folder
            of the TF Serving layout `serving/NAME/VERSION/`.
        version: the version folder to write; None writes one above the
            highest version already there, so a new run never overwrites a
            version a server may be serving.
        keras: write `model.keras` (raw input, preprocessing included).
        tflite: the TFLite modes to write (`model.tflite` for float32,
            `model_MODE.tflite` for the others); true means float32, false none.
        tflite_io: input/output type of the int8 model: `int8` or `uint8`
            (full integer, for integer-only accelerators) or `float32`
            (quantize and dequantize inside the model).
        tflite_tf_ops: let TFLite fall back to TensorFlow ops (Select TF ops)
            for ops it has no builtin for; the runtime then needs the Flex
            delegate. Off: such a model fails, naming the ops.
        calibration_samples: training examples that calibrate int8 ranges.
        onnx: also write `model.onnx` through tf2onnx (the `onnx` extra).
        classify: add TF Serving's `classification` signature (tf.Example
            in, class names and scores out) to classifiers.
        warmup_requests: test examples written as TF Serving warm-up
            records, replayed when a server loads the model (0: none).
        parity_atol: largest absolute difference between Keras and the
            float32 artifacts (SavedModel, TFLite float32, ONNX) accepted.
        float16_atol: the same for TFLite float16.
        quantized_agreement: smallest share of test examples on which a
            quantized TFLite model (dynamic range, int8) must predict the
            same class as Keras.
        sample_size: test examples written to `sample_request.json`.
    """

    model_name: str = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: int | None = Field(None, ge=1)
    keras: bool = True
    tflite: list[TFLiteMode] = ["float32"]
    tflite_io: Literal["float32", "int8", "uint8"] = "float32"
    tflite_tf_ops: bool = False
    calibration_samples: int = Field(200, ge=1)
    onnx: bool = False
    classify: bool = True
    warmup_requests: int = Field(10, ge=0, le=1000)
    parity_atol: float = Field(1e-4, gt=0.0)
    float16_atol: float = Field(1e-2, gt=0.0)
    quantized_agreement: float = Field(0.97, ge=0.0, le=1.0)
    sample_size: int = Field(3, ge=1)

    @field_validator("tflite", mode="before")
    @classmethod
    def _true_means_float32(cls, value):
        if value is True:
            return ["float32"]
        if value is False or value is None:
            return []
        return value

    @field_validator("tflite")
    @classmethod
    def _each_mode_once(cls, value):
        if len(set(value)) != len(value):
            raise ValueError(f"each TFLite mode once, got {value}")
        return value
