"""The TensorFlow Serving REST API as an ASGI app.

Routes, bodies and error texts follow TF Serving's `http_rest_api_handler`:

    GET  /v1/models/NAME[/versions/N | /labels/L]            model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature defs
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    row or columnar
    POST /v1/models/NAME[/versions/N | /labels/L]:classify   tf.Examples in JSON
    POST /v1/models/NAME[/versions/N | /labels/L]:regress    tf.Examples in JSON
    GET  /v1/openapi.json                                    this API as OpenAPI 3.0

The last is tfdl's own (TF Serving has no such path); it sits outside
`/v1/models/`, so no model name can shadow it. Every error answers
`{"error": "..."}`: 400 for a bad request, 404 for an unknown model or
version, 413 for a body over the limit. Decoding, the model call and
encoding run in a worker thread, so a large request never blocks the event
loop that accepts the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Sequence
from urllib.parse import unquote

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from tfdl.serving.errors import InvalidArgument, PayloadTooLarge, ServingError
from tfdl.serving.example_codec import (
    EXAMPLES_INPUT,
    classification_results,
    examples_signature,
    read_examples_request,
    regression_results,
)
from tfdl.serving.json_codec import decode_inputs, encode_outputs, parse_json, read_predict_request
from tfdl.serving.model_store import ModelStore
from tfdl.serving.openapi import OPENAPI_PATH, openapi_document

log = logging.getLogger("tfdl.serving")

API_PATH = re.compile(r"/v1/", re.IGNORECASE)
# [0-9], not \d: TF Serving's RE2 `\d` is ASCII only; Python's would take "/versions/٣".
_VERSION = r"(?:(?:/versions/(?P<version>[0-9]+))|(?:/labels/(?P<label>[^/:]+)))?"
PREDICT_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)" + _VERSION + r":(?P<method>classify|regress|predict)", re.IGNORECASE
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?" + _VERSION + r"(?:/(?P<metadata>metadata))?", re.IGNORECASE
)
OPENAPI = re.compile(re.escape(OPENAPI_PATH), re.IGNORECASE)
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_MAX_VERSION = 2**63 - 1
# A \uD800-\uDFFF escape: only then can the parsed body hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _json_response(body: bytes | dict, status: int = 200) -> Response:
    if isinstance(body, dict):
        body = json.dumps(body, indent=1).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json_response({"error": message}, status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes exceeds the limit of {limit} bytes; send fewer "
            "instances per request or start the server with a larger --max-body-bytes"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"request body exceeds the limit of {limit} bytes; send fewer instances per request "
                "or start the server with a larger --max-body-bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _raw_path(request: Request) -> str:
    """The path as sent, so that `%2F` in a model name stays in the name, as TF Serving matches it."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.scope["path"]


def _model(match: re.Match) -> tuple[str, int | None, str | None]:
    """Model name, version and label of a matched path, decoded as TF Serving's `ParseModelInfo` does."""
    version = match["version"]
    if version and int(version) > _MAX_VERSION:
        raise InvalidArgument(f"Failed to convert version: {version} to numeric.")
    label = match["label"]
    return unquote(match["name"]), int(version) if version else None, unquote(label) if label else None


def _parse_body(body: bytes) -> dict:
    """The request body as a JSON object; anything `json.loads` refuses or TF Serving's parser would is a 400."""
    try:
        doc = parse_json(body)
    except RecursionError:
        raise InvalidArgument("JSON Parse error: the document nests arrays or objects too deeply") from None
    except ValueError as error:  # an integer past Python's 4300-digit limit
        raise InvalidArgument(f"JSON Parse error: {error}") from None
    if _SURROGATE_ESCAPE.search(body):
        # rapidjson refuses an unpaired \uD800-\uDFFF escape; Python keeps it as a string no UTF-8 encoder takes.
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument("JSON Parse error: The surrogate pair in string is invalid.") from None
    return doc


def _predict(store: ModelStore, match: re.Match, body: bytes) -> bytes:
    # TF Serving parses the body before it looks the model up, so malformed
    # JSON is a 400 whatever model it names.
    request = read_predict_request(_parse_body(body))
    servable = store.get(*_model(match))
    signature = servable.signature(request.signature_name)
    return encode_outputs(signature(decode_inputs(request, signature.inputs)), request.format)


def _classify_or_regress(store: ModelStore, match: re.Match, body: bytes) -> bytes:
    method = match["method"].lower()
    request = read_examples_request(_parse_body(body), method)
    servable = store.get(*_model(match))
    signature = examples_signature(servable, method, request.signature_name)
    outputs = signature({EXAMPLES_INPUT: np.array(request.examples, dtype=object)})
    encode = classification_results if method == "classify" else regression_results
    return encode(outputs, len(request.examples))


def create_app(
    store: ModelStore,
    max_body_bytes: int = 16 * 1024 * 1024,
    *,
    metrics=None,
    auth_token: str | None = None,
    timeout_s: float | None = None,
    cors_origins: Sequence[str] = (),
    access_log: bool = False,
) -> Starlette:
    """The REST app serving the models in `store`.

    Args:
        store: the loaded models.
        max_body_bytes: the largest request body accepted; a larger one is
            answered 413 before it is read whole.
        metrics: a `ServingMetrics` to count and time requests into, served
            at `/monitoring/prometheus/metrics`; None leaves metrics out.
        auth_token: require `Authorization: Bearer TOKEN` on the API.
        timeout_s: answer 504 when a request takes longer.
        cors_origins: origins allowed by CORS; none: no CORS headers.
        access_log: one JSON log line per request.

    Returns:
        A Starlette app; run it with uvicorn (see `tfdl.serving.server`).
    """
    openapi = json.dumps(openapi_document(), indent=1).encode("utf-8")

    async def dispatch(request: Request) -> Response:
        path, method = _raw_path(request), request.method
        if not API_PATH.match(path):
            return _error(404, f"Not Found: {method} {path}; the API lives under /v1/models/")
        try:
            if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
                handler = _predict if match["method"].lower() == "predict" else _classify_or_regress
                body = await _read_body(request, max_body_bytes)
                return _json_response(await run_in_threadpool(handler, store, match, body))
            if method == "GET" and OPENAPI.fullmatch(path):
                return _json_response(openapi)
            if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
                if not match["name"]:
                    raise InvalidArgument("Missing model name in request.")
                name, version, label = _model(match)
                if match["metadata"]:
                    return _json_response(store.metadata(name, version, label))
                if label is not None:
                    version = store.get(name, label=label).version
                return _json_response(store.status(name, version))
            raise InvalidArgument(f"Malformed request: {method} {path}")
        except ServingError as error:
            return _error(error.status, error.message)
        except Exception:  # a bug of ours: log it whole, answer 500, keep serving
            log.exception("internal error serving %s %s", method, path)
            return _error(500, "internal server error; the server log has the details")

    from tfdl.serving.middleware import build_middleware

    middleware = build_middleware(
        metrics=metrics, model_names=store.model_names, auth_token=auth_token, timeout_s=timeout_s,
        cors_origins=cors_origins, access_log=access_log,
    )
    app = Starlette(
        routes=[Route("/{path:path}", dispatch, methods=_METHODS)], middleware=middleware,
        lifespan=_warm_worker_threads,
    )
    # The route's pattern does not match a path holding a newline (`%0A`);
    # such requests must still get the API's JSON error, not Starlette's text.
    app.router.default = request_response(dispatch)
    return app


@contextlib.asynccontextmanager
async def _warm_worker_threads(app):
    """Start the worker thread pool before the first request, not during it.

    Predictions run in worker threads; the first hand-off imports anyio's
    thread machinery and starts a thread (about 20 ms, ten times a request).
    Doing it at startup keeps the first request as fast as the rest, which is
    what the models' warm-up records are for.
    """
    await run_in_threadpool(lambda: None)
    yield
