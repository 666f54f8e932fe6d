"""The export stage of a run: one trained model out to every target the config asks for.

    export/model.keras                      raw input -> prediction (safe_mode loads it)
    export/serving/NAME/VERSION/            SavedModel: serving_default, classification,
                                            warm-up records in assets.extra/, manifest.json
    export/serving/models.config            TF Serving model config for the base path
    export/model.tflite, model_MODE.tflite  one file per TFLite mode, each with a
                                            .tflite.json sidecar (signature, labels,
                                            preprocessing constants)
    export/model.onnx                       when asked (tf2onnx)
    export/sample_request.json              a predict request with test examples

When TFLite is asked for, recurrent layers with a fixed sequence length are
unrolled in the SavedModel and TFLite files (`recurrent_unroll`): TFLite
builtins run them only unrolled, and TFLite is converted from the
SavedModel; `model.keras` keeps them as trained.
`manifest.json` records the TFLite modes asked for.

Then each artifact is checked against Keras on the test split: the float
targets by their largest difference, each TFLite mode by its own report
(difference, class agreement, accuracy, size, latency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tfdl.export.config import ExportConfig
from tfdl.export.inference_model import inference_model
from tfdl.export.parity import ParityReport, check_parity, keras_outputs
from tfdl.export.serving_layout import next_version, version_dir


@dataclass
class ExportResult:
    """Where everything went, and how each artifact compares with Keras."""

    artifacts: dict[str, Path]
    parity: ParityReport
    tflite: list = field(default_factory=list)
    version: int = 1
    serving_model_dir: Path | None = None
    saved_model_dir: Path | None = None
    sample_request: Path | None = None
    notes: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # measured by the export (e.g. served latency)

    @property
    def passed(self) -> bool:
        return self.parity.passed and all(r.passed is not False for r in self.tflite)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "files": {k: str(p) for k, p in self.artifacts.items()},
            "parity": self.parity.to_dict(),
            "tflite": [r.to_dict() for r in self.tflite],
            "notes": self.notes,
            "figures": self.figures,
            "passed": self.passed,
        }


def preprocessing_constants(preprocessing) -> dict:
    """The fitted constants of the preprocessing layers (normalization mean and variance, fill values)."""
    if preprocessing is None:
        return {}
    layers = getattr(preprocessing, "layers", None) or [preprocessing]
    keys = ("mean", "variance", "axis", "fill_values", "indicator_columns")
    constants = {}
    for layer in layers:
        config = layer.get_config()
        kept = {k: np.asarray(config[k]).tolist() for k in keys if config.get(k) is not None}
        if kept:
            constants[layer.name] = {"class": type(layer).__name__, **kept}
    return constants


def export_stage(model, data, config: ExportConfig, export_dir: Path, *, classifier: bool = True,
                 log: Callable[[str], None] = print) -> ExportResult:
    """Export `model` with the data stage's preprocessing in front, to every target in `config`.

    Args:
        model: the trained Keras model (it takes what the feed gives).
        data: the data stage's `Pipeline` (preprocessing, the raw input's
            name, shape and dtype, class names, test inputs and labels, and
            calibration inputs drawn from the training split).
        config: the export section of the run config.
        export_dir: the run's `export/` folder.
        classifier: the model's first output holds class probabilities.
    """
    from tfdl.export.model_server_config import ModelEntry, write_model_server_config
    from tfdl.export.recurrent_unroll import unroll_recurrent
    from tfdl.export.serving_model import export_serving_model

    export_dir.mkdir(parents=True, exist_ok=True)
    trained = unroll_recurrent(model) if config.tflite else model
    served = inference_model(trained, data.preprocessing, name=config.model_name,
                             raw_shape=data.input_shape, raw_dtype=data.input_dtype)
    inputs = {data.input_name: data.test_inputs}
    serving_model_dir = export_dir / "serving" / config.model_name
    version = config.version or next_version(serving_model_dir)
    warmup = {data.input_name: data.test_inputs[: config.warmup_requests]} if config.warmup_requests else None
    saved = export_serving_model(
        served, version_dir(serving_model_dir, version), class_names=data.class_names,
        classify=config.classify and classifier and _classify_fits(served), warmup=warmup,
        warmup_records=max(config.warmup_requests, 1), model_name=config.model_name,
        preprocessing=preprocessing_constants(data.preprocessing), tflite=config.tflite,
    )
    artifacts = {"SavedModel (TF Serving layout)": saved}
    artifacts["TF Serving models.config"] = write_model_server_config(
        export_dir / "serving" / "models.config",
        [ModelEntry(name=config.model_name, base_path=str(serving_model_dir.resolve()))],
    )
    if config.keras:
        # Rolled, as trained: an unrolled model trains much slower (recurrent_unroll).
        keras_form = served if trained is model else inference_model(
            model, data.preprocessing, name=config.model_name, raw_shape=data.input_shape, raw_dtype=data.input_dtype)
        artifacts["Keras"] = export_dir / "model.keras"
        keras_form.save(artifacts["Keras"])
    result = ExportResult(artifacts, ParityReport(examples=len(data.test_inputs), atol=config.parity_atol),
                          version=version, serving_model_dir=serving_model_dir, saved_model_dir=saved)
    exports = _tflite_exports(saved, data, config, export_dir, result, log)
    onnx_path = None
    if config.onnx:
        from tfdl.export.onnx import to_onnx

        onnx_path = artifacts["ONNX"] = to_onnx(saved, export_dir / "model.onnx")
    float32 = next((e.path for e in exports if e.mode == "float32" and not e.tf_ops), None)
    result.parity = check_parity(served, inputs, saved, float32, atol=config.parity_atol, onnx_path=onnx_path)
    result.tflite = _tflite_reports(served, inputs, data, exports, config)
    for name, path in data.save_assets(export_dir).items():
        artifacts[name] = path
    sample = export_dir / "sample_request.json"
    sample.write_text(json.dumps({"instances": data.test_inputs[: config.sample_size].tolist()}))
    artifacts["sample request"] = result.sample_request = sample
    return result


def _classify_fits(served) -> bool:
    """TF Serving's classify API takes tf.Examples of one fixed-shape numeric input."""
    if len(served.inputs) != 1:
        return False
    spec = served.inputs[0]
    return None not in spec.shape[1:] and spec.dtype != "string"


def _tflite_exports(saved: Path, data, config: ExportConfig, export_dir: Path, result: ExportResult, log) -> list:
    from tfdl.export.tflite import (
        TFLiteConversionError,
        convert_tflite,
        representative_from_arrays,
        write_tflite_metadata,
    )

    exports = []
    for mode in config.tflite:
        path = export_dir / ("model.tflite" if mode == "float32" else f"model_{mode}.tflite")
        representative = None
        if mode == "int8":
            representative = representative_from_arrays(
                {data.input_name: data.calibration_inputs}, samples=config.calibration_samples
            )
        try:
            exported = convert_tflite(
                saved, path, mode=mode, representative=representative,
                io_dtype=config.tflite_io if mode == "int8" else "float32", allow_tf_ops=config.tflite_tf_ops,
            )
        except TFLiteConversionError as error:
            note = f"TFLite {mode} not written: {error}"
            result.notes.append(note)
            log(f"      {note}")
            continue
        write_tflite_metadata(path, labels=data.class_names, preprocessing=preprocessing_constants(data.preprocessing),
                              mode=mode)
        result.artifacts[f"TFLite {mode}"] = path
        exports.append(exported)
    return exports


def _tflite_reports(served, inputs: dict, data, exports: list, config: ExportConfig) -> list:
    from tfdl.export.tflite_report import tflite_mode_report

    if not exports:
        return []
    name, keras_output = next(iter(keras_outputs(served, inputs).items()))
    return [
        tflite_mode_report(
            e, inputs, np.asarray(keras_output, dtype=np.float64), data.test_labels, name,
            float32_atol=config.parity_atol, float16_atol=config.float16_atol,
            min_agreement=config.quantized_agreement,
        )
        for e in exports
    ]
