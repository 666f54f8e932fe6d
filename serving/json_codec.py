"""The TensorFlow Serving JSON format for predict: requests to arrays, arrays to responses.

Follows TF Serving's `json_tensor.cc`:

* row format: `{"instances": [...]}`; each instance is one example, either a
  plain value/list (one input) or an object keyed by input name; the
  response is `{"predictions": [...]}`, one entry per example (an object
  keyed by output name when there are several outputs);
* columnar format: `{"inputs": value}` or `{"inputs": {"name": value}}`,
  answered with `{"outputs": value}` or `{"outputs": {"name": value}}`;
* binary strings travel as `{"b64": "..."}`; outputs whose name ends in
  `_bytes` are sent back that way;
* an optional `"signature_name"` picks the signature (default
  `serving_default`).

Arrays are built with numpy in one call (not value by value), then checked
against the signature's dtype and shape, so a bad request gets a message
naming the input, and the model never sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np

from tfdl.serving.errors import InvalidArgument

DEFAULT_SIGNATURE = "serving_default"
Format = Literal["row", "columnar"]


@dataclass(frozen=True)
class TensorSpec:
    """What a signature expects of one input: dtype (numpy) and shape (None: any size)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def describe(self) -> str:
        dims = ", ".join("-1" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype.name if self.dtype != object else 'string'}[{dims}]"


@dataclass
class PredictRequest:
    signature_name: str
    body: dict
    format: Format


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_json(body: bytes) -> dict:
    """Parse a request body; it must be a JSON object."""
    if not body:
        raise InvalidArgument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"JSON Parse error: {error}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"JSON Value: {_short(doc)} Is not object")
    return doc


def read_predict_request(doc: dict) -> PredictRequest:
    """Check the request's top-level keys and pick its format and signature."""
    signature = doc.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise InvalidArgument(
            "JSON Value: signature_name not formatted correctly. 'signature_name' key must be a string value."
        )
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidArgument("Not formatted correctly: expecting only one of 'inputs' or 'instances' keys to exist")
    if has_instances:
        if not isinstance(doc["instances"], list):
            raise InvalidArgument("Expecting 'instances' to be an list/array")
        if not doc["instances"]:
            raise InvalidArgument("No values in 'instances' array")
        return PredictRequest(signature or DEFAULT_SIGNATURE, doc, "row")
    if has_inputs:
        return PredictRequest(signature or DEFAULT_SIGNATURE, doc, "columnar")
    raise InvalidArgument("Missing 'inputs' or 'instances' key")


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(value: Any) -> Any:
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("Unable to base64 decode") from None
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidArgument(f"JSON Value: {_short(value)} is not of expected type: string")


_KIND_OK = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}


def to_array(value: Any, spec: TensorSpec) -> np.ndarray:
    """Convert the JSON value of one input (batch dimension included) to an array."""
    if spec.dtype == object:
        try:
            array = np.array(_decode_b64(value), dtype=object)
        except ValueError:
            raise InvalidArgument(f"input '{spec.name}': lists of unequal length; every example must have the same shape") from None
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise InvalidArgument(
                f"input '{spec.name}': lists of unequal length (ragged); every example must have the "
                f"same shape, expected {spec.describe()}"
            ) from None
        allowed = _KIND_OK.get(spec.dtype.kind, "")
        if array.dtype.kind not in allowed:
            found = {"U": "string", "O": "mixed or null values", "b": "bool", "f": "float"}.get(array.dtype.kind, array.dtype.name)
            raise InvalidArgument(
                f"input '{spec.name}': values of type {found} are not of expected type {spec.dtype.name} "
                f"(signature {spec.describe()})"
            )
        if spec.dtype.kind in "iu" and array.size:
            info = np.iinfo(spec.dtype)
            if array.min() < info.min or array.max() > info.max:
                raise InvalidArgument(f"input '{spec.name}': values outside the range of {spec.dtype.name}")
        array = array.astype(spec.dtype, copy=False)
    _check_shape(array, spec)
    return array


def _check_shape(array: np.ndarray, spec: TensorSpec) -> None:
    fits = array.ndim == len(spec.shape) and all(
        want is None or want == got for want, got in zip(spec.shape, array.shape)
    )
    if not fits:
        raise InvalidArgument(
            f"input '{spec.name}' has shape {list(array.shape)} but the signature expects "
            f"{spec.describe()} (-1: any size; the first dimension is the batch)"
        )


def decode_inputs(request: PredictRequest, specs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    """The request's input arrays keyed by input name, checked against `specs`."""
    names = sorted(specs)
    if request.format == "row":
        instances = request.body["instances"]
        if isinstance(instances[0], dict) and not _is_b64(instances[0]):
            columns: dict[str, list] = {name: [] for name in names}
            for i, item in enumerate(instances):
                if not isinstance(item, dict) or _is_b64(item) or set(item) != set(names):
                    raise InvalidArgument(
                        f"Failed to process element: {i} of 'instances' list. JSON object: {_short(item)} "
                        f"keys must be equal to: {','.join(names)}"
                    )
                for name in names:
                    columns[name].append(item[name])
            return {name: to_array(columns[name], specs[name]) for name in names}
        if len(names) > 1:
            raise InvalidArgument(
                "instances is a plain list, but expecting list of objects as multiple input tensors "
                f"required: {','.join(names)}"
            )
        return {names[0]: to_array(instances, specs[names[0]])}
    value = request.body["inputs"]
    if isinstance(value, dict) and not _is_b64(value):
        missing = [name for name in names if name not in value]
        if missing:
            raise InvalidArgument(f"Missing named input: {missing[0]} in 'inputs' object.")
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise InvalidArgument(f"JSON object: does not have named input: {unknown[0]}")
        return {name: to_array(value[name], specs[name]) for name in names}
    if len(names) > 1:
        raise InvalidArgument(
            "inputs is a plain value/list, but expecting an object as multiple input tensors "
            f"required: {','.join(names)}"
        )
    return {names[0]: to_array(value, specs[names[0]])}


def _jsonable(name: str, array: np.ndarray) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        as_b64 = name.endswith("_bytes")
        flat = [
            {"b64": base64.b64encode(v).decode("ascii")} if as_b64 else v.decode("utf-8", "replace")
            for v in array.ravel()
        ]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def encode_outputs(outputs: Mapping[str, np.ndarray], request_format: Format) -> bytes:
    """The JSON response body for the outputs, in the request's format."""
    names = sorted(outputs)
    if request_format == "columnar":
        body = {name: _jsonable(name, outputs[name]) for name in names}
        payload = {"outputs": body if len(names) > 1 else body[names[0]]}
    else:
        batch = {len(outputs[name]) for name in names}
        if len(batch) > 1:
            raise InvalidArgument(f"outputs have inconsistent batch sizes {sorted(batch)}; use the columnar format")
        columns = {name: _jsonable(name, outputs[name]) for name in names}
        if len(names) == 1:
            payload = {"predictions": columns[names[0]]}
        else:
            payload = {"predictions": [{name: columns[name][i] for name in names} for i in range(batch.pop())]}
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")
