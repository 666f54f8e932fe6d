"""A property-based fuzz of the REST API against its OpenAPI document: no request makes the server answer 5xx.

Requests come from the document the server serves (`GET /v1/openapi.json`):
each documented operation with its path parameters drawn at random (the real
model name or junk, versions up to 2**70, any label) and a body drawn from
its request schema; plus near-valid digits requests with one value broken,
random junk (bytes, deep nesting, huge numbers, wrong types, bodies over the
limit), other HTTP methods, and random paths under `/v1/`. Every answer must
be below 500 with a JSON body; a documented operation must answer one of its
documented statuses, a 200 must match the documented response schema, and an
error must be exactly `{"error": "<message>"}`.

Hypothesis runs derandomized (the same examples every run) and keeps no
example database, so the test is deterministic and writes no files.
"""

import base64
import http.client
import json
import math
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MODEL = "digits"
LIMIT = 64 * 1024  # the digits_server fixture's max_body_bytes
# Strings include lone surrogates: valid JSON escapes (\ud800) that no UTF-8 encoder takes.
TEXT = st.one_of(st.text(max_size=12), st.text(max_size=12),
                 st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2))
# Sizes around the limits that break naive JSON handling: Python's recursion limit (about 1000
# levels) and its 4300-digit limit on integer text.
DEPTHS = st.sampled_from([1, 2, 100, 999, 1001, 5000, 30000])
DIGITS = st.sampled_from([1, 19, 20, 309, 4300, 4301, 30000])


def send(server, method: str, path: str, body: bytes | None):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, raw


@pytest.fixture(scope="module")
def document(digits_server):
    status, raw = send(digits_server, "GET", "/v1/openapi.json", None)
    assert status == 200
    return json.loads(raw)


# --- JSON schema (the OpenAPI subset the document uses) -> values, and values -> conformance ----------


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def from_schema(schema: dict, document: dict, depth: int = 0) -> st.SearchStrategy:
    """Values that the schema describes (and, through `oneOf` branches, some that break it)."""
    schema = _resolve(schema, document)
    if depth > 4:  # recursive schemas (TensorValue) end in scalars
        return st.one_of(st.floats(), st.integers(), st.text(max_size=5))
    for key in ("anyOf", "oneOf"):
        if key in schema and "properties" not in schema:
            return st.one_of([from_schema(s, document, depth + 1) for s in schema[key]])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, document, depth)
    if kind == "array":
        items = from_schema(schema.get("items", {}), document, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=schema.get("maxItems", 4))
    if kind == "string":
        if schema.get("format") == "byte":
            return st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=8)
        return TEXT | st.sampled_from(["serving_default", "classification", "pixels", "inputs"])
    if kind == "integer":
        return st.integers(min_value=-(2**70), max_value=2**70)
    if kind == "number":
        return st.floats() | st.integers(min_value=-(10**30), max_value=10**30)
    if kind == "boolean":
        return st.booleans()
    return st.none() | st.booleans() | st.floats() | st.text(max_size=5)


def _object(schema: dict, document: dict, depth: int) -> st.SearchStrategy:
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    branches = [b.get("required", []) for b in schema.get("oneOf", [])] or [[]]

    @st.composite
    def build(draw):
        required = set(schema.get("required", [])) | set(draw(st.sampled_from(branches)))
        value = {}
        for name, sub in properties.items():
            if name in required or draw(st.booleans()):
                value[name] = draw(from_schema(sub, document, depth + 1))
        if isinstance(extra, dict):
            keys = TEXT | st.sampled_from(["pixels", "x", "b64", "inputs"])
            value.update(draw(st.dictionaries(keys, from_schema(extra, document, depth + 1), max_size=3)))
        return value

    return build()


def conforms(value, schema: dict, document: dict) -> bool:
    """Whether `value` matches `schema` (type, properties, required, items, sizes, enum, anyOf, oneOf)."""
    schema = _resolve(schema, document)
    if "anyOf" in schema and not any(conforms(value, s, document) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(conforms(value, s, document) for s in schema["oneOf"]) != 1:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    }
    if kind and not checks[kind](value):
        return False
    if isinstance(value, dict):
        if not set(schema.get("required", [])) <= set(value):
            return False
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = properties.get(key, extra)
            if sub is False or (isinstance(sub, dict) and not conforms(item, sub, document)):
                return False
    if isinstance(value, list) and kind == "array":
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", math.inf):
            return False
        return all(conforms(item, schema.get("items", {}), document) for item in value)
    return True


# --- Requests -----------------------------------------------------------------------------------


def _parameter(name: str) -> st.SearchStrategy:
    if name == "version":
        return st.sampled_from(["1", "2"]) | st.integers(min_value=0, max_value=2**70).map(str)
    if name == "model_name":
        return st.sampled_from([MODEL, MODEL.upper(), "nope", "openapi.json"]) | st.text(min_size=1, max_size=10)
    return st.sampled_from(["stable", "canary"]) | st.text(min_size=1, max_size=10)


@st.composite
def documented_requests(draw, document):
    """A documented operation: path parameters filled (percent-encoded) and a body from its request schema."""
    template = draw(st.sampled_from(sorted(document["paths"])))
    method, operation = draw(st.sampled_from(sorted(document["paths"][template].items())))
    path = template
    for reference in operation.get("parameters", []):
        name = reference["$ref"].rsplit("/", 1)[1]
        path = path.replace("{" + name + "}", quote(draw(_parameter(name)), safe=""))
    body = None
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        body = json.dumps(draw(from_schema(schema, document))).encode()
    return method.upper(), path, body, operation


def _pixels(draw) -> list:
    return draw(st.lists(st.floats(0, 16, width=32), min_size=64, max_size=64))


@st.composite
def near_valid_requests(draw):
    """Requests the digits model can answer, then (mostly) one part broken."""
    rows = [_pixels(draw) for _ in range(draw(st.integers(1, 3)))]
    kind = draw(st.sampled_from(["row", "columnar", "classify", "regress"]))
    if kind in ("row", "columnar"):
        path, body = f"/v1/models/{MODEL}:predict", {"instances": rows} if kind == "row" else {"inputs": {"pixels": rows}}
    else:
        path = f"/v1/models/{MODEL}:{kind}"
        body = {"signature_name": "classification", "examples": [{"pixels": row} for row in rows]}
    junk = st.none() | st.booleans() | TEXT | st.integers(-(2**80), 2**80) | st.just({"b64": "!"}) \
        | st.just([]) | st.just([[1.0]]) | st.just(float("nan"))
    breakage = draw(st.sampled_from(["none", "value", "row length", "signature", "key"]))
    if breakage == "value":
        rows[0][draw(st.integers(0, 63))] = draw(junk)
    elif breakage == "row length":
        rows[-1] = rows[-1][: draw(st.integers(0, 63))]
    elif breakage == "signature":
        body["signature_name"] = draw(junk | st.sampled_from(["serving_default", "classification", "nope"]))
    elif breakage == "key":
        body[draw(st.sampled_from(["instances", "inputs", "examples", "context"]))] = draw(junk)
    return "POST", path, json.dumps(body).encode(), None


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
NASTY_BODIES = st.one_of(
    DEPTHS.map(lambda d: b"[" * d + b"]" * d),
    DEPTHS.map(lambda d: b'{"instances": ' + b"[" * d + b"1" + b"]" * d + b"}"),
    DEPTHS.map(lambda d: b'{"examples": [{"x": ' + b"[" * d + b"]" * d + b"}]}"),
    DIGITS.map(lambda n: b'{"instances": [' + b"9" * n + b"]}"),
    DIGITS.map(lambda n: b'{"examples": [{"x": -' + b"9" * n + b"}]}"),
    st.sampled_from([
        b'{"instances": [1e999]}', b'{"instances": [[-Infinity, NaN]]}', b'{"examples": [{"x": 1e400}]}',
        b'{"instances": ["\\ud800"], "signature_name": "classification"}', b'{"examples": [{"\\udfff": 1}]}',
        b"\xef\xbb\xbf{}", b"\xff\xfe", b'{"instances": [1]} trailing', b"x" * (LIMIT + 1), b"",
    ]),
)


@st.composite
def junk_bodies(draw):
    """Bodies no client should send, posted to predict, classify and regress."""
    address = draw(st.sampled_from(["", "/versions/1", "/versions/2", "/labels/stable"]))
    method = draw(st.sampled_from(["predict", "classify", "regress"]))
    body = draw(NASTY_BODIES | st.binary(max_size=200) | ANY_JSON.map(lambda v: json.dumps(v).encode()))
    return "POST", f"/v1/models/{MODEL}{address}:{method}", body, None


@st.composite
def random_paths(draw):
    """Any method on random paths under /v1/ (and a few near-misses), with a small body."""
    method = draw(st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = draw(
        st.text(max_size=30).map(lambda t: "/v1/" + quote(t, safe="/:"))
        | st.sampled_from(["/v1/", "/v1/models", "/v1/models/", f"/v1/models/{MODEL}/versions/", "/v1/openapi.json",
                           f"/v1/models/{MODEL}/versions/1/labels/stable", f"/v1/models/{MODEL}:predict:predict",
                           f"/v1/models/{MODEL}/metadata/metadata", "/v1/models//versions/1"])
    )
    body = draw(st.none() | ANY_JSON.map(lambda v: json.dumps(v).encode()))
    return method, path, body, None


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_no_request_makes_the_server_fail(digits_server, document, data):
    method, path, body, operation = data.draw(
        documented_requests(document) | near_valid_requests() | junk_bodies() | random_paths(), label="request")
    status, raw = send(digits_server, method, path, body)
    assert status < 500, raw
    if method == "HEAD":  # no body comes back
        return
    answer = json.loads(raw)
    if status >= 400:
        assert isinstance(answer, dict) and list(answer) == ["error"] and isinstance(answer["error"], str)
    if operation is not None:
        assert str(status) in operation["responses"], (status, answer)
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        assert conforms(answer, schema, document), (status, answer)


def test_the_document_is_self_consistent(document):
    """Every $ref resolves and every path parameter is declared, so generators and validators can use it."""
    text = json.dumps(document)
    for reference in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        _, _, kind, name = reference.split("/")
        assert name in document["components"][kind], reference
    for template, operations in document["paths"].items():
        for operation in operations.values():
            declared = {r["$ref"].rsplit("/", 1)[1] for r in operation.get("parameters", [])}
            assert declared == {part.split("}")[0] for part in template.split("{")[1:]}, template
            assert "200" in operation["responses"]
