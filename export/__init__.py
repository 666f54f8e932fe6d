"""tfdl.export: a trained model to SavedModel, TFLite and the TF Serving layout.

Installed as `tfdl.export`; it never imports `tfdl.serving`.
"""

from tfdl.export.config import ExportConfig
from tfdl.export.inference_model import inference_model
from tfdl.export.litert import load_interpreter
from tfdl.export.parity import ParityReport, ParityResult, check_parity
from tfdl.export.saved_model import export_saved_model, input_signature
from tfdl.export.serving_layout import list_versions, next_version, version_dir
from tfdl.export.tflite import to_tflite

__all__ = [
    "ExportConfig",
    "ParityReport",
    "ParityResult",
    "check_parity",
    "export_saved_model",
    "inference_model",
    "input_signature",
    "list_versions",
    "load_interpreter",
    "next_version",
    "to_tflite",
    "version_dir",
]
