"""The OpenAPI 3.0 document of the REST API, served at `GET /v1/openapi.json`.

It describes the TF Serving REST API as tfdl serves it (`tfdl.serving.rest`):
model status and metadata, predict in row and columnar form, classify and
regress on `tf.train.Example`s, each also under `/versions/{version}` and
`/labels/{label}`, and the `{"error": ...}` body of every 4xx answer. Client
generators and API explorers read it; the REST fuzz test generates requests
from its request schemas and checks answers against its response schemas.

JSON numbers here may also be the tokens `NaN`, `Infinity` and `-Infinity`,
which TF Serving reads and writes although strict JSON does not have them.
"""

from __future__ import annotations

import copy

OPENAPI_PATH = "/v1/openapi.json"

# The three ways a request names a model version, as TF Serving's path regex has them.
_ADDRESSES = [
    ("", "", []),
    ("/versions/{version}", "Version", ["version"]),
    ("/labels/{label}", "Label", ["label"]),
]

_PARAMETERS = {
    "model_name": {
        "name": "model_name", "in": "path", "required": True,
        "description": "The served model name (`--model_name`).",
        "schema": {"type": "string"},
    },
    "version": {
        "name": "version", "in": "path", "required": True,
        "description": "A model version number; without it the highest version served answers.",
        "schema": {"type": "integer", "format": "int64", "minimum": 0},
    },
    "label": {
        "name": "label", "in": "path", "required": True,
        "description": "A version label (`stable`, `canary`) assigned in the model config.",
        "schema": {"type": "string"},
    },
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "Every error answer; the message follows TF Serving's text where it has one.",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Base64": {
        "type": "object",
        "description": "Binary data (an image, a serialized proto), base64-encoded.",
        "required": ["b64"],
        "additionalProperties": False,
        "properties": {"b64": {"type": "string", "format": "byte"}},
    },
    "TensorValue": {
        "description": "A tensor in nested-list form: a number, string, boolean or Base64 object, or a list of "
                       "tensor values of equal shape.",
        "anyOf": [
            {"type": "number"},
            {"type": "string"},
            {"type": "boolean"},
            _ref("Base64"),
            {"type": "array", "items": _ref("TensorValue")},
        ],
    },
    "NamedTensors": {
        "type": "object",
        "description": "Tensors keyed by signature input (or output) name.",
        "additionalProperties": _ref("TensorValue"),
    },
    "PredictRequest": {
        "type": "object",
        "description": "Row format (`instances`: one entry per example, an object keyed by input name when the "
                       "signature has several inputs) or columnar format (`inputs`), never both.",
        "properties": {
            "signature_name": {"type": "string", "default": "serving_default"},
            "instances": {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [_ref("TensorValue"), _ref("NamedTensors")]},
            },
            "inputs": {"anyOf": [_ref("TensorValue"), _ref("NamedTensors")]},
        },
        "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    },
    "PredictResponse": {
        "type": "object",
        "description": "`predictions` answers a row request, `outputs` a columnar one; an object keyed by output "
                       "name when the signature has several outputs. Outputs named `*_bytes` come as Base64.",
        "properties": {
            "predictions": {"type": "array", "items": {"anyOf": [_ref("TensorValue"), _ref("NamedTensors")]}},
            "outputs": {"anyOf": [_ref("TensorValue"), _ref("NamedTensors")]},
        },
        "oneOf": [{"required": ["predictions"]}, {"required": ["outputs"]}],
    },
    "FeatureValue": {
        "description": "One value of a tf.train.Example feature: integers and booleans go to int64_list, numbers "
                       "with a fraction or exponent to float_list, strings and Base64 to bytes_list.",
        "anyOf": [
            {"type": "integer", "format": "int64"},
            {"type": "number"},
            {"type": "string"},
            {"type": "boolean"},
            _ref("Base64"),
        ],
    },
    "Example": {
        "type": "object",
        "description": "A tf.train.Example: feature name to one value or a list of values of one kind.",
        "additionalProperties": {
            "anyOf": [_ref("FeatureValue"), {"type": "array", "items": _ref("FeatureValue")}],
        },
    },
    "ExamplesRequest": {
        "type": "object",
        "description": "A classify or regress request. Name the classify/regress signature: the default is "
                       "`serving_default`, as in TF Serving (models exported by tfdl call them `classification` "
                       "and `regression`). `context` features go into every example.",
        "required": ["examples"],
        "properties": {
            "signature_name": {"type": "string", "default": "serving_default"},
            "context": _ref("Example"),
            "examples": {"type": "array", "minItems": 1, "items": _ref("Example")},
        },
    },
    "ClassifyResponse": {
        "type": "object",
        "description": "Per example, a `[label, score]` pair per class (label `\"\"` when the signature has no "
                       "classes output).",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                    },
                },
            },
        },
    },
    "RegressResponse": {
        "type": "object",
        "description": "One value per example, in request order.",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": {"type": "number"}}},
    },
    "ModelStatusResponse": {
        "type": "object",
        "required": ["model_version_status"],
        "properties": {
            "model_version_status": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["version", "state", "status"],
                    "properties": {
                        "version": {"type": "string"},
                        "state": {"type": "string", "enum": ["UNKNOWN", "START", "LOADING", "AVAILABLE",
                                                             "UNLOADING", "END"]},
                        "status": {
                            "type": "object",
                            "required": ["error_code", "error_message"],
                            "properties": {"error_code": {"type": "string"}, "error_message": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
    "TensorInfo": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "dtype": {"type": "string"},
            "tensor_shape": {"type": "object"},
        },
    },
    "SignatureDef": {
        "type": "object",
        "properties": {
            "inputs": {"type": "object", "additionalProperties": _ref("TensorInfo")},
            "outputs": {"type": "object", "additionalProperties": _ref("TensorInfo")},
            "method_name": {"type": "string"},
            "defaults": {"type": "object"},
        },
    },
    "ModelMetadataResponse": {
        "type": "object",
        "required": ["model_spec", "metadata"],
        "properties": {
            "model_spec": {
                "type": "object",
                "required": ["name", "version"],
                "properties": {
                    "name": {"type": "string"},
                    "signature_name": {"type": "string"},
                    "version": {"type": "string"},
                },
            },
            "metadata": {
                "type": "object",
                "required": ["signature_def"],
                "properties": {
                    "signature_def": {
                        "type": "object",
                        "properties": {
                            "signature_def": {"type": "object", "additionalProperties": _ref("SignatureDef")},
                        },
                    },
                    "manifest": {
                        "type": "object",
                        "description": "tfdl extension: the version's manifest.json (library versions, signatures, "
                                       "file checksums); absent when the version has none",
                    },
                },
            },
        },
    },
}


def _json(schema: str) -> dict:
    return {"application/json": {"schema": _ref(schema)}}


def _errors(*statuses: int) -> dict:
    reasons = {
        400: "A malformed request: bad JSON, a missing key, a value of the wrong type or shape, an unknown "
             "signature or version label.",
        404: "No such model or version.",
        413: "The body is larger than the server's --max-body-bytes.",
    }
    return {str(status): {"description": reasons[status], "content": _json("Error")} for status in statuses}


def _operation(operation_id: str, summary: str, parameters: list[str], ok: str,
               request: str | None = None) -> dict:
    operation = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in parameters],
        "responses": {"200": {"description": "Success.", "content": _json(ok)},
                      **_errors(*((400, 404, 413) if request else (400, 404)))},
    }
    if request:
        operation["requestBody"] = {"required": True, "content": _json(request)}
    return operation


def _model_paths() -> dict:
    paths = {}
    for address, suffix, extra in _ADDRESSES:
        base = "/v1/models/{model_name}" + address
        parameters = ["model_name", *extra]
        paths[base] = {"get": _operation(
            f"getModelStatus{suffix}", "The state of the model's versions.", parameters, "ModelStatusResponse")}
        paths[base + "/metadata"] = {"get": _operation(
            f"getModelMetadata{suffix}", "The model's signature defs.", parameters, "ModelMetadataResponse")}
        paths[base + ":predict"] = {"post": _operation(
            f"predict{suffix}", "Run a signature on tensors in row or columnar format.", parameters,
            "PredictResponse", "PredictRequest")}
        paths[base + ":classify"] = {"post": _operation(
            f"classify{suffix}", "Classify tf.train.Examples with a classify signature.", parameters,
            "ClassifyResponse", "ExamplesRequest")}
        paths[base + ":regress"] = {"post": _operation(
            f"regress{suffix}", "Regress tf.train.Examples with a regress signature.", parameters,
            "RegressResponse", "ExamplesRequest")}
    return paths


def openapi_document() -> dict:
    """The OpenAPI 3.0 document of the REST API.

    Returns:
        A new dict (the caller may change it), ready for `json.dumps`: the
        model paths in each of their three address forms (latest,
        `/versions/{version}`, `/labels/{label}`), `/v1/openapi.json`
        itself, and the request, response and error schemas.
    """
    from tfdl import __version__

    paths = _model_paths()
    paths[OPENAPI_PATH] = {"get": {
        "operationId": "getOpenApi",
        "summary": "This document (tfdl's own; TF Serving has no such path).",
        "responses": {"200": {"description": "The OpenAPI document.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tfdl serving: the TensorFlow Serving REST API",
            "version": __version__,
            "description": "The REST API of TensorFlow Serving (https://www.tensorflow.org/tfx/serving/api_rest) "
                           "as `tfdl serve` answers it. Numbers may be NaN, Infinity or -Infinity.",
        },
        "paths": paths,
        "components": {"schemas": copy.deepcopy(_SCHEMAS), "parameters": copy.deepcopy(_PARAMETERS)},
    }
