"""A SavedModel that TF Serving serves fully: predict, classify and regress, warmed up on load.

`export_serving_model` writes one version folder of the TF Serving layout:
- `serving_default` (predict): inputs keyed by the Keras input names,
  outputs by the Keras output names, as `export_saved_model` writes it;
- `classification` (classify) and `regression` (regress) when asked:
  serialized `tf.train.Example`s in, TF Serving's keys and method names
  (see `tfdl.export.signatures`);
- `assets.extra/tf_serving_warmup_requests` when warm-up inputs are given;
- `manifest.json` (`tfdl.export.manifest`): library versions, the
  signatures as written, labels, preprocessing constants, and each file's
  size and SHA-256, which the server checks before it serves the version.

The folder is written under a hidden name next to `directory` and renamed
into place when complete, so a server polling the model's base path never
loads a version without its method names, warm-up file or manifest.

Clients pick the extra signatures by name: a classify or regress request
without `signature_name` goes to `serving_default` in TF Serving.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tfdl.export.manifest import write_manifest
from tfdl.export.saved_model import input_signature, named_outputs
from tfdl.export.signatures import (
    CLASSIFY_METHOD_NAME,
    REGRESS_METHOD_NAME,
    classify_signature,
    regress_signature,
    write_method_names,
)
from tfdl.export.warmup import write_warmup_requests

CLASSIFY_SIGNATURE = "classification"
REGRESS_SIGNATURE = "regression"


def export_serving_model(
    model,
    directory: Path | str,
    *,
    class_names: Sequence[str] | None = None,
    classify: bool = False,
    classify_output: str | None = None,
    regress: str | None = None,
    warmup: Mapping[str, np.ndarray] | None = None,
    warmup_records: int = 10,
    model_name: str = "model",
    preprocessing: Mapping | None = None,
    tflite: Sequence[str] | None = None,
) -> Path:
    """Write `model` as a SavedModel with the signatures TF Serving's APIs call.

    Args:
        model: the Keras model to serve (raw input in, as `inference_model`
            makes it).
        directory: the version folder to create, e.g. `<base>/<name>/3`;
            it must not exist or be empty.
        class_names: one name per class; used when `classify` is true.
        classify: add the `classification` signature.
        classify_output: the output holding class scores, for models with
            several outputs.
        regress: the name of a one-value-per-example output to serve through
            a `regression` signature; `None` for none.
        warmup: example inputs keyed by input name; each of the first
            `warmup_records` examples becomes one warm-up predict request.
        warmup_records: most warm-up records, 1 to 1000.
        model_name: the served model name written in the warm-up requests.
        preprocessing: fitted preprocessing constants for the manifest
            (JSON-serializable, see `export_stage.preprocessing_constants`).
        tflite: the TFLite modes converted from this version, for the
            manifest (`[]`: none); None records nothing.

    Returns:
        `directory`.

    Raises:
        ValueError: `directory` holds files, `classify` without
            `class_names`, or a signature or warm-up input that does not fit
            the model (see `classify_signature`, `regress_signature`,
            `write_warmup_requests`).
    """
    import keras

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} already holds files; export each version into a new folder (next_version)")
    if classify and not class_names:
        raise ValueError("classify=True needs class_names, one name per output column")
    specs = input_signature(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", _predict(model, [spec.name for spec in specs]), input_signature=specs)
    method_names = {}
    if classify:
        signature = classify_signature(model, class_names=class_names, output=classify_output)
        archive.add_endpoint(CLASSIFY_SIGNATURE, signature)
        method_names[CLASSIFY_SIGNATURE] = CLASSIFY_METHOD_NAME
    if regress is not None:
        archive.add_endpoint(REGRESS_SIGNATURE, regress_signature(model, output=regress))
        method_names[REGRESS_SIGNATURE] = REGRESS_METHOD_NAME

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        archive.write_out(str(staging), verbose=False)
        if method_names:
            write_method_names(staging, method_names)
        if warmup is not None:
            write_warmup_requests(staging, model_name, warmup, num_records=warmup_records)
        write_manifest(staging, labels=class_names, preprocessing=preprocessing, tflite=tflite)
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _predict(model, names: list[str]):
    """The `serving_default` function: positional tensors in, outputs keyed by name out."""
    takes_dict = isinstance(model.input, dict) or len(names) > 1

    def serve(*args):
        return named_outputs(model, model(dict(zip(names, args)) if takes_dict else args[0], training=False))

    return serve
