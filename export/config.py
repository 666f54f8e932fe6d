"""Typed configuration of the export stage."""

from __future__ import annotations

from pydantic import Field

from tfdl.schema import StrictModel


class ExportConfig(StrictModel):
    """What a run exports, and under which name and version it serves.

    Attributes:
        model_name: the name clients use (`/v1/models/NAME`) and the folder
            of the TF Serving layout `serving/NAME/VERSION/`.
        version: the version folder to write; None writes one above the
            highest version already there, so a new run never overwrites a
            version a server may be serving.
        keras: write `model.keras` (raw input, preprocessing included).
        tflite: write a float32 `model.tflite`.
        parity_atol: largest absolute difference between Keras, SavedModel
            and TFLite outputs that the parity check accepts.
        sample_size: test examples written to `sample_request.json`.
    """

    model_name: str = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: int | None = Field(None, ge=1)
    keras: bool = True
    tflite: bool = True
    parity_atol: float = Field(1e-4, gt=0.0)
    sample_size: int = Field(3, ge=1)
