"""ASGI middleware around the REST app: metrics, bearer auth, per-request timeout, access log, CORS.

Each is a plain ASGI callable (no `BaseHTTPMiddleware`, which costs a task
and a stream copy per request). `build_middleware` puts them in the order
they must run, outermost first:

    RequestLogMiddleware   sees every answer, 401 and 504 included, and names the request
    MetricsMiddleware      counts every answer; serves /monitoring/prometheus/metrics
    CORSMiddleware         answers browser preflights, which carry no credentials
    BearerAuthMiddleware   401 unless `Authorization: Bearer <token>`
    TimeoutMiddleware      504 once a request runs past its time

The metrics page sits outside the auth check on purpose: TF Serving's is
open too, and Prometheus scrapes it without credentials. It shows model
names and traffic counts, never request data; a deployment that must hide
even those keeps the port off untrusted networks, as it would for TF Serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Collection
from urllib.parse import unquote

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tfdl.serving.errors import ServingError
from tfdl.serving.metrics import METRICS_PATH, ServingMetrics

log = logging.getLogger("tfdl.serving")

# A client's X-Request-ID is kept only if it cannot break a log line or a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# RFC 6750's b64token: what may follow "Bearer " in a header.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class Unauthenticated(ServingError):
    """No valid credentials; TF Serving's UNAUTHENTICATED, HTTP 401."""

    status = 401


class DeadlineExceeded(ServingError):
    """Not answered in time; TF Serving's DEADLINE_EXCEEDED, HTTP 504."""

    status = 504


def route_of(scope: Scope) -> tuple[str, str]:
    """The model and API a request addresses, parsed as rest.py routes it.

    Args:
        scope: the ASGI scope of an HTTP request.

    Returns:
        `(model, api)`: the model name from the path (`""` if it names none),
        and predict, classify, regress, status, metadata, or other.
    """
    # Imported here, not at the top: rest.py imports this module to build its
    # app, so a top-level import would fail whenever this module loads first.
    from tfdl.serving.rest import PREDICT_PATH, STATUS_PATH

    method, path = scope["method"], _path(scope)
    if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
        return unquote(match["name"]), match["method"].lower()
    if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
        return unquote(match["name"] or ""), "metadata" if match["metadata"] else "status"
    return "", "other"


def _path(scope: Scope) -> str:
    # The path as sent, as rest.py matches it: `%2F` inside a model name
    # stays inside the name.
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


async def _answer_error(error: ServingError, scope: Scope, receive: Receive, send: Send,
                        headers: dict[str, str] | None = None) -> None:
    await JSONResponse({"error": error.message}, status_code=error.status, headers=headers)(scope, receive, send)


def _checked_token(token: str) -> str:
    if not token or not _TOKEN.fullmatch(token):
        raise ValueError(
            "the auth token must be non-empty and hold only letters, digits and -._~+/ "
            "(with = at the end), as an HTTP bearer token must; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return token


def _checked_timeout(seconds: float) -> float:
    if not seconds > 0:
        raise ValueError(f"the request timeout must be above 0 seconds, got {seconds!r}")
    return seconds


class MetricsMiddleware:
    """Counts and times every request into `metrics`; answers `GET /monitoring/prometheus/metrics`.

    Args:
        app: the ASGI app to wrap.
        metrics: where the counts go.
        model_names: the models the server holds (e.g. `store.model_names`);
            a request naming any other model is labelled `model_name=""`,
            which keeps the number of series bounded whatever clients send.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, model_names: Callable[[], Collection[str]]):
        self.app = app
        self.metrics = metrics
        self.model_names = model_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == METRICS_PATH and scope["method"] == "GET":
            return await self.metrics.metrics_response()(scope, receive, send)
        start = time.perf_counter()
        code = 500  # what the client gets if the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            model, api = route_of(scope)
            if model not in self.model_names():
                model = ""
            self.metrics.observe_request(model, api, code, time.perf_counter() - start)


class BearerAuthMiddleware:
    """Answers 401 `{"error": ...}` unless the request carries `Authorization: Bearer <token>`.

    The token is compared as a SHA-256 digest with `hmac.compare_digest`, so
    the time a check takes tells nothing about the token, its length included.

    Args:
        app: the ASGI app to wrap.
        token: the shared secret; RFC 6750 token characters only
            (letters, digits, `-._~+/`, trailing `=`).

    Raises:
        ValueError: if `token` is empty or holds other characters.
    """

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._digest = hashlib.sha256(_checked_token(token).encode("ascii")).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        header = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        if header is None:
            error = Unauthenticated("missing Authorization header; send `Authorization: Bearer <token>`")
            return await _answer_error(error, scope, receive, send, {"WWW-Authenticate": 'Bearer realm="tfdl"'})
        scheme, _, credentials = header.strip().partition(b" ")
        given = hashlib.sha256(credentials.strip()).digest()
        if not (hmac.compare_digest(given, self._digest) and scheme.lower() == b"bearer"):
            error = Unauthenticated("invalid bearer token; send `Authorization: Bearer <token>` "
                                    "with the token the server was started with")
            return await _answer_error(
                error, scope, receive, send, {"WWW-Authenticate": 'Bearer realm="tfdl", error="invalid_token"'}
            )
        await self.app(scope, receive, send)


class TimeoutMiddleware:
    """Answers 504 `{"error": ...}` to a request still unanswered after `seconds`.

    The client is freed at the deadline, but the work is not stopped: a model
    call runs in a worker thread, and Python cannot kill a thread, so the
    call finishes in the background and its answer is dropped. Requests that
    keep timing out therefore still fill the worker pool; the server's
    `limit_concurrency` is what bounds that. A response whose headers were
    sent before the deadline is left to finish, since its status is already
    on the wire.

    Args:
        app: the ASGI app to wrap.
        seconds: the most a request may take, from arrival to its headers.

    Raises:
        ValueError: if `seconds` is not above 0.
    """

    def __init__(self, app: ASGIApp, seconds: float):
        self.app = app
        self.seconds = _checked_timeout(seconds)
        # asyncio keeps only weak references to tasks; an abandoned request
        # must not be garbage-collected mid-flight.
        self._abandoned: set[asyncio.Task] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = timed_out = False

        async def send_unless_late(message: Message) -> None:
            nonlocal started
            if timed_out:  # the client already has its 504
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_unless_late))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.seconds)
        except asyncio.CancelledError:  # the server gave up on this request (its shutdown timeout)
            task.cancel()  # asyncio.wait does not pass a cancel on to what it waits for
            raise
        if done or started:
            return await task
        timed_out = True
        log.warning("%s %s took longer than %g s: answered 504; its work goes on in the background",
                    scope["method"], _path(scope), self.seconds)
        # Cancelling stops the request at its next await; a worker thread it
        # waits on still runs to the end (anyio shields it), then it stops.
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)
        error = DeadlineExceeded(
            f"the request took longer than the server's limit of {self.seconds:g} s; send fewer "
            "instances per request, or ask for a server started with a longer timeout"
        )
        await _answer_error(error, scope, receive, send)

    def _forget(self, task: asyncio.Task) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a request abandoned at its timeout failed afterwards", exc_info=task.exception())


class RequestLogMiddleware:
    """Writes one JSON line per request to the `tfdl.serving` logger, at INFO.

    The line holds `request_id`, `method`, `path`, `model`, `api`, `status`
    and `ms` (arrival to last byte sent); the record carries the same dict as
    `record.request` for a JSON log formatter. The request id is the
    client's `X-Request-ID` when it is a safe token (letters, digits,
    `._:-`, at most 128), otherwise a new UUID; it is sent back in
    `X-Request-ID` and put in `scope["state"]["request_id"]` for handlers.

    Args:
        app: the ASGI app to wrap.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            model, api = route_of(scope)
            record = {
                "request_id": request_id,
                "method": scope["method"],
                "path": _path(scope),
                "model": model,
                "api": api,
                "status": status,
                "ms": round((time.perf_counter() - start) * 1000, 3),
            }
            log.info(json.dumps(record), extra={"request": record})


def _request_id(scope: Scope) -> str:
    given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
    text = given.decode("latin-1")
    return text if _REQUEST_ID.fullmatch(text) else uuid.uuid4().hex


def build_middleware(
    metrics: ServingMetrics | None = None,
    model_names: Callable[[], Collection[str]] | None = None,
    auth_token: str | None = None,
    timeout_s: float | None = None,
    cors_origins: Collection[str] = (),
    access_log: bool = True,
) -> list[Middleware]:
    """The middleware for `Starlette(middleware=...)`, outermost first; each only when configured.

    Args:
        metrics: count and time requests into it, and serve its page;
            None leaves metrics out.
        model_names: the models the server holds (`store.model_names`);
            needed with `metrics`.
        auth_token: require `Authorization: Bearer <auth_token>` on every
            request but the metrics page; None leaves the API open.
        timeout_s: answer 504 to a request unanswered after this long;
            None waits as long as the request takes.
        cors_origins: origins a browser page may call the API from
            (e.g. `["https://app.example.com"]`, or `["*"]`); empty sends no
            CORS headers, so browsers allow only same-origin pages.
        access_log: write one JSON line per request.

    Returns:
        The middleware list.

    Raises:
        ValueError: if `metrics` comes without `model_names`, or `auth_token`
            or `timeout_s` is not valid (see the middleware classes).
    """
    stack = []
    if access_log:
        stack.append(Middleware(RequestLogMiddleware))
    if metrics is not None:
        if model_names is None:
            raise ValueError("metrics need model_names (e.g. store.model_names) to label requests by model")
        stack.append(Middleware(MetricsMiddleware, metrics=metrics, model_names=model_names))
    if cors_origins:
        stack.append(Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        ))
    if auth_token is not None:
        # Checked now: Starlette builds the stack only at the first request.
        stack.append(Middleware(BearerAuthMiddleware, token=_checked_token(auth_token)))
    if timeout_s is not None:
        stack.append(Middleware(TimeoutMiddleware, seconds=_checked_timeout(timeout_s)))
    return stack
