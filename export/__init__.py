"""tfdl.export: a trained model to SavedModel, TFLite and the TF Serving layout.

Installed as `tfdl.export`; it never imports `tfdl.serving`. Names load their
module on first use, so `tfdl.export.litert` (the LiteRT runner) imports
neither TensorFlow nor pydantic and runs on a device with only LiteRT and numpy.
"""

# A name equal to its module's name must be bound here: once the submodule
# is imported, Python sets the package attribute to the module itself.
# (inference_model.py imports nothing heavy.)
from tfdl.export.inference_model import inference_model

_LAZY = {
    "ExportConfig": "tfdl.export.config",
    "write_manifest": "tfdl.export.manifest",
    "read_manifest": "tfdl.export.manifest",
    "verify_manifest": "tfdl.export.manifest",
    "ManifestMismatch": "tfdl.export.manifest",
    "load_interpreter": "tfdl.export.litert",
    "LiteRTModel": "tfdl.export.litert",
    "TensorInfo": "tfdl.export.litert",
    "EdgeInputError": "tfdl.export.litert",
    "EdgeModelError": "tfdl.export.litert",
    "convert_tflite": "tfdl.export.tflite",
    "TFLiteExport": "tfdl.export.tflite",
    "TFLiteConversionError": "tfdl.export.tflite",
    "representative_from_arrays": "tfdl.export.tflite",
    "write_tflite_metadata": "tfdl.export.tflite",
    "read_tflite_metadata": "tfdl.export.tflite",
    "export_serving_model": "tfdl.export.serving_model",
    "classify_signature": "tfdl.export.signatures",
    "regress_signature": "tfdl.export.signatures",
    "write_warmup_requests": "tfdl.export.warmup",
    "read_warmup_requests": "tfdl.export.warmup",
    "ModelEntry": "tfdl.export.model_server_config",
    "write_model_server_config": "tfdl.export.model_server_config",
    "read_model_server_config": "tfdl.export.model_server_config",
    "to_onnx": "tfdl.export.onnx",
    "ParityReport": "tfdl.export.parity",
    "ParityResult": "tfdl.export.parity",
    "check_parity": "tfdl.export.parity",
    "export_saved_model": "tfdl.export.saved_model",
    "input_signature": "tfdl.export.saved_model",
    "list_versions": "tfdl.export.serving_layout",
    "next_version": "tfdl.export.serving_layout",
    "version_dir": "tfdl.export.serving_layout",
    "to_tflite": "tfdl.export.tflite",
}

__all__ = sorted([*_LAZY, "inference_model"])


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tfdl.export' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
