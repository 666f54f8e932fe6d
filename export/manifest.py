"""`manifest.json`: what a SavedModel version holds, written beside `saved_model.pb` and checked before it serves.

    <base>/<name>/<version>/manifest.json
    {
      "format": 1,
      "versions": {"tfdl": "0.1.0", "tensorflow": "2.21.0", "keras": "3.15.0"},
      "signatures": {"serving_default": {"method_name": "tensorflow/serving/predict",
                     "inputs": {"pixels": {"dtype": "float32", "shape": [-1, 64]}},
                     "outputs": {"probabilities": {"dtype": "float32", "shape": [-1, 10]}}}},
      "labels": ["0", "1", ...],                   # when known
      "preprocessing": {"normalization": {...}},   # fitted constants, when known
      "tflite": ["float32"],                       # TFLite modes the export writes, when known ([]: none)
      "files": {"saved_model.pb": {"size": 123, "sha256": "..."}, "variables/variables.index": {...}}
    }

The signatures are read back from the written `saved_model.pb`, so the
manifest says what a client of TF Serving will see, not what the exporter
meant. The manifest sits next to `saved_model.pb` (TF Serving and
`tf.saved_model.load` read only the files they know, so it is ignored there).

`tflite` says whether the version was made for TFLite too: the modes of
the export config (`export.tflite`), `[]` when it deliberately writes no
`.tflite` file; absent when the exporter did not say. `tfdl doctor` reads
it to judge whether ops TFLite cannot run are a problem for this version.

`files` covers every file of the version folder except the manifest itself
and `assets.extra/`: that folder is TF Serving's place for side files added
after export (warm-up records regenerated from logged traffic), which do
not change what the model computes, and a bad warm-up record already fails
a load on its own. `verify_manifest` refuses a version whose listed files
are missing or changed, or that holds model files the manifest does not list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

MANIFEST_FILENAME = "manifest.json"
MANIFEST_FORMAT = 1
# TF Serving's folder for files added after export (warm-up records); not checksummed.
SIDE_FILES_DIRECTORY = "assets.extra"
_CHUNK_BYTES = 1 << 20


class ManifestMismatch(ValueError):
    """A version's files differ from what its manifest lists; the message names each file."""


def write_manifest(
    version_dir: Path | str,
    *,
    labels: Sequence[str] | None = None,
    preprocessing: Mapping | None = None,
    tflite: Sequence[str] | None = None,
) -> Path:
    """Write `manifest.json` for the complete SavedModel in `version_dir`.

    Call it last, once every other file of the version is written: the
    checksums cover the files as they are now.

    Args:
        version_dir: a SavedModel directory (holding `saved_model.pb`).
        labels: the class names, in output column order, when the model
            classifies.
        preprocessing: the fitted preprocessing constants (JSON-serializable),
            as `tfdl.export.export_stage.preprocessing_constants` gives them.
        tflite: the TFLite modes the export writes from this version (`[]`:
            none); None records nothing.

    Returns:
        The path of the written manifest.

    Raises:
        ValueError: `version_dir` holds no `saved_model.pb`, or `preprocessing`
            is not JSON-serializable.
    """
    version_dir = Path(version_dir)
    manifest = {
        "format": MANIFEST_FORMAT,
        "versions": library_versions(),
        "signatures": saved_model_signatures(version_dir),
        "files": file_digests(version_dir),
    }
    if labels is not None:
        manifest["labels"] = [str(label) for label in labels]
    if preprocessing:
        manifest["preprocessing"] = dict(preprocessing)
    if tflite is not None:
        manifest["tflite"] = [str(mode) for mode in tflite]
    try:
        text = json.dumps(manifest, indent=1, sort_keys=True)
    except TypeError as error:
        raise ValueError(
            f"preprocessing constants must be JSON-serializable (lists, numbers, strings): {error}"
        ) from None
    path = version_dir / MANIFEST_FILENAME
    path.write_text(text + "\n")
    return path


def read_manifest(version_dir: Path | str) -> dict | None:
    """The manifest of the version in `version_dir`, or None when it has none (an export by other tools).

    Raises:
        ManifestMismatch: the manifest is not valid JSON or not a manifest.
    """
    path = Path(version_dir) / MANIFEST_FILENAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestMismatch(f"{path} is not valid JSON ({error}); re-export the version") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ManifestMismatch(f"{path} has no 'files' table; it is not a tfdl manifest: re-export the version")
    return manifest


def verify_manifest(version_dir: Path | str) -> dict | None:
    """Check the files of `version_dir` against its manifest.

    Args:
        version_dir: a SavedModel version folder.

    Returns:
        The manifest, or None when the folder has none (nothing to check).

    Raises:
        ManifestMismatch: a listed file is missing or its size or SHA-256
            differs, or a file outside `assets.extra/` is not listed; the
            message names every such file.
    """
    version_dir = Path(version_dir)
    manifest = read_manifest(version_dir)
    if manifest is None:
        return None
    expected, actual = manifest["files"], file_digests(version_dir)
    problems = []
    for name in sorted(expected):
        if name not in actual:
            problems.append(f"{name} is missing")
        elif actual[name] != expected[name]:
            problems.append(
                f"{name} does not match its checksum (size {actual[name]['size']}, sha256 "
                f"{actual[name]['sha256'][:12]}...; the manifest lists size {expected[name].get('size')}, "
                f"sha256 {str(expected[name].get('sha256'))[:12]}...)"
            )
    problems += [f"{name} is not in the manifest" for name in sorted(actual.keys() - expected.keys())]
    if problems:
        raise ManifestMismatch(
            f"{version_dir} does not match its {MANIFEST_FILENAME}: " + "; ".join(problems)
            + ". The files were changed after export: re-export the version (or restore its files)"
        )
    return manifest


def file_digests(version_dir: Path | str) -> dict[str, dict]:
    """Size and SHA-256 of each file of `version_dir` (relative POSIX path -> `{"size", "sha256"}`).

    Leaves out the manifest and `assets.extra/` (see the module docstring).
    """
    version_dir = Path(version_dir)
    digests = {}
    for path in sorted(version_dir.rglob("*")):
        relative = path.relative_to(version_dir)
        if not path.is_file() or relative.as_posix() == MANIFEST_FILENAME or relative.parts[0] == SIDE_FILES_DIRECTORY:
            continue
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                sha.update(chunk)
        digests[relative.as_posix()] = {"size": path.stat().st_size, "sha256": sha.hexdigest()}
    return digests


def saved_model_signatures(version_dir: Path | str) -> dict[str, dict]:
    """Each serving signature of the SavedModel in `version_dir`: method name, inputs and outputs with dtype and shape.

    Read from `saved_model.pb` (the `serve` meta graph), as TF Serving reads
    it; a dimension of unknown size is -1 and a shape of unknown rank is None.

    Raises:
        ValueError: there is no `saved_model.pb` or it has no `serve` meta graph.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(version_dir) / "saved_model.pb"
    if not path.is_file():
        raise ValueError(f"{path} does not exist; write the SavedModel before its manifest")
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    served = [graph for graph in saved_model.meta_graphs if "serve" in graph.meta_info_def.tags]
    if not served:
        raise ValueError(f"{path} has no meta graph tagged 'serve'; TF Serving could not load it")

    def tensors(infos) -> dict:
        return {
            key: {
                "dtype": tf.as_dtype(info.dtype).name,
                "shape": None if info.tensor_shape.unknown_rank else [int(d.size) for d in info.tensor_shape.dim],
            }
            for key, info in sorted(infos.items())
        }

    return {
        key: {"method_name": signature.method_name, "inputs": tensors(signature.inputs),
              "outputs": tensors(signature.outputs)}
        for key, signature in sorted(served[0].signature_def.items())
        if not key.startswith("__")  # `__saved_model_init_op` is TensorFlow's, not a serving signature
    }


def library_versions() -> dict[str, str]:
    """The versions of tfdl, TensorFlow and Keras that wrote the export."""
    import keras
    import tensorflow as tf

    import tfdl

    return {"tfdl": tfdl.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
