"""The TensorFlow Serving REST API as an ASGI app.

Routes, bodies and error texts follow TF Serving's `http_rest_api_handler`:

    GET  /v1/models/NAME[/versions/N | /labels/L]            model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature defs
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    row or columnar

Every error answers `{"error": "..."}`: 400 for a bad request, 404 for an
unknown model or version, 413 for a body over the limit. Decoding, the model
call and encoding run in a worker thread, so a large request never blocks
the event loop that accepts the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tfdl.serving.errors import InvalidArgument, PayloadTooLarge, ServingError
from tfdl.serving.json_codec import decode_inputs, encode_outputs, parse_json, read_predict_request
from tfdl.serving.model_store import ModelStore

log = logging.getLogger("tfdl.serving")

API_PATH = re.compile(r"/v1/", re.IGNORECASE)
_VERSION = r"(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?"
PREDICT_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)" + _VERSION + r":(?P<method>classify|regress|predict)", re.IGNORECASE
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?" + _VERSION + r"(?:/(?P<metadata>metadata))?", re.IGNORECASE
)
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


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


def _version(match: re.Match) -> int | None:
    return int(match["version"]) if match["version"] else None


def _predict(store: ModelStore, match: re.Match, body: bytes) -> bytes:
    # TF Serving parses the body before it looks the model up, so malformed
    # JSON is a 400 whatever model it names.
    request = read_predict_request(parse_json(body))
    servable = store.get(match["name"], _version(match), match["label"])
    signature = servable.signature(request.signature_name)
    return encode_outputs(signature(decode_inputs(request, signature.inputs)), request.format)


def create_app(store: ModelStore, max_body_bytes: int = 16 * 1024 * 1024) -> Starlette:
    """The REST app serving the models in `store`."""

    async def dispatch(request: Request) -> Response:
        path, method = request.url.path, request.method
        if not API_PATH.match(path):
            return _error(404, f"Not Found: {method} {path}; the API lives under /v1/models/")
        try:
            if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
                if match["method"].lower() != "predict":
                    return _error(501, f"{match['method']} is not supported by this server yet; use :predict")
                body = await _read_body(request, max_body_bytes)
                return _json_response(await run_in_threadpool(_predict, store, match, body))
            if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
                if not match["name"]:
                    raise InvalidArgument("Missing model name in request.")
                if match["metadata"]:
                    return _json_response(store.metadata(match["name"], _version(match), match["label"]))
                if match["label"]:
                    servable = store.get(match["name"], label=match["label"])
                    return _json_response(store.status(match["name"], servable.version))
                return _json_response(store.status(match["name"], _version(match)))
            raise InvalidArgument(f"Malformed request: {method} {path}")
        except ServingError as error:
            return _error(error.status, error.message)
        except Exception:  # a bug of ours: log it whole, answer 500, keep serving
            log.exception("internal error serving %s %s", method, path)
            return _error(500, "internal server error; the server log has the details")

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=_METHODS)], lifespan=_warm_worker_threads)


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
