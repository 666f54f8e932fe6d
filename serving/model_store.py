"""The models a server holds: each name maps to loaded SavedModel versions.

A model's base path holds numbered version folders (the TF Serving layout).
As TF Serving does by default, the store serves the highest version. Each
version's signatures are called directly as concrete functions; no
`model.predict`, which costs tens of milliseconds a call.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from tfdl.export.serving_layout import list_versions, version_dir
from tfdl.serving.errors import InvalidArgument, NotFound
from tfdl.serving.json_codec import DEFAULT_SIGNATURE, TensorSpec

log = logging.getLogger("tfdl.serving")


@dataclass
class Signature:
    """One callable signature of a loaded SavedModel."""

    name: str
    function: object
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        try:
            outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            message = getattr(error, "message", None) or str(error)
            raise InvalidArgument(f"the model rejected the input: {message.splitlines()[0]}") from None
        return {k: v.numpy() for k, v in outputs.items()}


@dataclass
class Servable:
    """A loaded model version: its signatures and the metadata the REST API reports."""

    name: str
    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_def: dict
    # The loaded SavedModel object: its variables live as long as it does.
    handle: object = field(repr=False, default=None)

    def signature(self, name: str | None) -> Signature:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
        return self.signatures[name]


def _spec(name: str, tensor_spec) -> TensorSpec:
    dtype = object if tensor_spec.dtype.name == "string" else np.dtype(tensor_spec.dtype.as_numpy_dtype)
    return TensorSpec(name, np.dtype(dtype), tuple(tensor_spec.shape.as_list()))


def _signature_def_json(path: Path) -> dict:
    """The SavedModel's signature defs as TF Serving's metadata API prints them."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            for key, value in meta_graph.signature_def.items():
                signature_map.signature_def[key].CopyFrom(value)
    return json_format.MessageToDict(
        signature_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def load_servable(name: str, path: Path, version: int) -> Servable:
    """Load one SavedModel version and wrap its signatures."""
    import tensorflow as tf

    handle = tf.saved_model.load(str(path), tags=["serve"])
    signatures = {}
    for key, function in handle.signatures.items():
        _, kwargs = function.structured_input_signature
        signatures[key] = Signature(
            name=key,
            function=function,
            inputs={k: _spec(k, s) for k, s in kwargs.items()},
            outputs={k: _spec(k, s) for k, s in function.structured_outputs.items()},
        )
    servable = Servable(name, version, path, signatures, _signature_def_json(path), handle)
    _warm_up(servable)
    return servable


def _warm_up(servable: Servable) -> int:
    """Replay the version's warm-up requests, as TF Serving does, so no client pays the first call.

    The first call of a signature builds its graph runtime state (tens of
    milliseconds); a version with `assets.extra/tf_serving_warmup_requests`
    is called once per record before it takes traffic. A bad record fails
    the load, as in TF Serving: a model that cannot answer its own warm-up
    would fail clients too.
    """
    import tensorflow as tf

    from tfdl.export.warmup import WARMUP_DIRECTORY, WARMUP_FILENAME, read_warmup_requests

    path = servable.path / WARMUP_DIRECTORY / WARMUP_FILENAME
    if not path.is_file():
        return 0
    records = read_warmup_requests(path)
    for index, record in enumerate(records):
        request = record.predict_log.request
        signature = servable.signature(request.model_spec.signature_name or None)
        try:
            signature({k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except InvalidArgument as error:
            raise ValueError(f"{path}, record {index}: the warm-up request failed: {error}") from None
    log.info("%s version %d: replayed %d warm-up requests", servable.name, servable.version, len(records))
    return len(records)


class ModelStore:
    """Loaded models by name, each with its versions; safe to read from many threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._models: dict[str, dict[int, Servable]] = {}
        self._labels: dict[str, dict[str, int]] = {}

    def add_model(self, name: str, base_path: Path | str) -> Servable:
        """Load the highest version under `base_path` and serve it as `name`."""
        base_path = Path(base_path)
        versions = list_versions(base_path)
        if not versions:
            raise FileNotFoundError(
                f"no SavedModel version under {base_path}: expected numbered folders such as "
                f"{base_path / '1'} holding saved_model.pb (run `tfdl run` to export one)"
            )
        version = versions[-1]
        servable = load_servable(name, version_dir(base_path, version), version)
        with self._lock:
            self._models.setdefault(name, {})[version] = servable
        log.info("serving %s version %d from %s", name, version, servable.path)
        return servable

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request addresses; errors use TF Serving's texts."""
        with self._lock:
            versions = self._models.get(name, {})
            if label is not None:
                if label not in self._labels.get(name, {}):
                    raise InvalidArgument(f"Unrecognized servable version label: {label}")
                version = self._labels[name][label]
            if version is None:
                if not versions:
                    raise NotFound(f"Servable not found for request: Latest({name})")
                return versions[max(versions)]
            if version not in versions:
                raise NotFound(f"Servable not found for request: Specific({name}, {version})")
            return versions[version]

    def status(self, name: str, version: int | None = None) -> dict:
        """The model status response (`GET /v1/models/NAME`)."""
        with self._lock:
            versions = self._models.get(name, {})
            if version is not None:
                if version not in versions:
                    raise NotFound(f"Could not find version {version} of model {name}")
                chosen = [version]
            else:
                if not versions:
                    raise NotFound(f"Could not find any versions of model {name}")
                chosen = sorted(versions, reverse=True)
        return {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in chosen
            ]
        }

    def metadata(self, name: str, version: int | None = None, label: str | None = None) -> dict:
        """The model metadata response (`GET /v1/models/NAME/metadata`)."""
        servable = self.get(name, version, label)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": servable.signature_def},
        }
