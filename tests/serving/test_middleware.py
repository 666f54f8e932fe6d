"""The REST middleware over real HTTP: bearer auth, timeouts, CORS, the JSON access log, and a
SIGTERM that lets the request in flight finish while refusing new connections."""

import contextlib
import http.client
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tfdl.serving.metrics import METRICS_PATH, ServingMetrics
from tfdl.serving.middleware import (
    BearerAuthMiddleware,
    MetricsMiddleware,
    RequestLogMiddleware,
    TimeoutMiddleware,
    build_middleware,
)

TOKEN = "s3cret-Token_1"
ORIGIN = "https://app.example.com"


class FakeRest:
    """Routes shaped like rest.py's; `POST ...:predict` with body `slow` runs 0.8 s in a worker thread."""

    def __init__(self):
        self.finished = threading.Event()  # set when a slow prediction's thread is done

    async def status(self, request):
        return JSONResponse({"model_version_status": []})

    def run_model(self, seconds):
        time.sleep(seconds)
        if seconds:
            self.finished.set()

    async def predict(self, request):
        await run_in_threadpool(self.run_model, 0.8 if await request.body() == b"slow" else 0.0)
        return JSONResponse({"predictions": [[1.0]]})

    async def stream(self, request):
        async def chunks():
            yield b'{"part": 1}'
            await run_in_threadpool(time.sleep, 0.4)
            yield b'{"part": 2}'

        return StreamingResponse(chunks(), media_type="application/json")

    def app(self, middleware) -> Starlette:
        return Starlette(routes=[
            Route("/v1/models/digits", self.status, methods=["GET"]),
            Route("/v1/models/digits:predict", self.predict, methods=["POST"]),
            Route("/v1/models/stream", self.stream, methods=["GET"]),
        ], middleware=middleware)


@contextlib.contextmanager
def serving(app):
    """The app under uvicorn on a free port, in a thread; yields the port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def call(port, method, path, headers=None, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


@pytest.fixture(scope="module")
def fake():
    return FakeRest()


@pytest.fixture(scope="module")
def guarded(fake):
    """Everything on: metrics, auth, a 0.2 s timeout, CORS for one origin, the access log."""
    middleware = build_middleware(metrics=ServingMetrics(), model_names=lambda: ["digits"],
                                  auth_token=TOKEN, timeout_s=0.2, cors_origins=[ORIGIN])
    with serving(fake.app(middleware)) as port:
        yield port


@pytest.fixture(scope="module")
def plain(fake):
    """Only the access log: no auth, no timeout, no CORS."""
    with serving(fake.app(build_middleware())) as port:
        yield port


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_requests_without_a_valid_bearer_token_get_401(guarded):
    for headers, message in [
        ({}, "missing Authorization header; send `Authorization: Bearer <token>`"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "invalid bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "invalid bearer token"),
        ({"Authorization": "Bearer"}, "invalid bearer token"),
    ]:
        status, response_headers, body = call(guarded, "GET", "/v1/models/digits", headers)
        assert status == 401, headers
        assert response_headers["content-type"] == "application/json"
        assert response_headers["www-authenticate"].startswith('Bearer realm="tfdl"')
        assert json.loads(body)["error"].startswith(message)
    assert call(guarded, "GET", "/v1/models/digits", AUTH)[0] == 200
    # The auth scheme is case-insensitive (RFC 7235); the token is not.
    assert call(guarded, "GET", "/v1/models/digits", {"Authorization": f"bearer {TOKEN}"})[0] == 200
    assert call(guarded, "GET", "/v1/models/digits", {"Authorization": f"Bearer {TOKEN.upper()}"})[0] == 401


def test_metrics_page_stays_open_under_auth_and_counts_the_401s(fake):
    metrics = ServingMetrics()  # its own, so no other test's requests land in it
    middleware = build_middleware(metrics=metrics, model_names=lambda: ["digits"], auth_token=TOKEN)
    line = (':tensorflow:serving:request_count_total'
            '{API="status",code="401",model_name="digits",status="UNAUTHENTICATED"}')
    with serving(fake.app(middleware)) as port:
        assert call(port, "GET", "/v1/models/digits")[0] == 401
        deadline = time.monotonic() + 5  # the count lands just after the client has its answer
        while True:
            status, headers, body = call(port, "GET", METRICS_PATH)
            assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
            if line in body.decode() or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    assert f"{line} 1.0" in body.decode().splitlines()


def test_invalid_auth_token_timeout_or_metrics_without_model_names_fail_at_build():
    with pytest.raises(ValueError, match="auth token must be non-empty"):
        build_middleware(auth_token="")
    with pytest.raises(ValueError, match="auth token must be non-empty and hold only letters"):
        build_middleware(auth_token="two words")
    with pytest.raises(ValueError, match="request timeout must be above 0 seconds, got 0"):
        build_middleware(timeout_s=0)
    with pytest.raises(ValueError, match="metrics need model_names"):
        build_middleware(metrics=ServingMetrics())


def test_a_request_past_its_timeout_gets_504_at_the_deadline_and_its_work_finishes(guarded, fake):
    fake.finished.clear()
    start = time.monotonic()
    status, headers, body = call(guarded, "POST", "/v1/models/digits:predict", AUTH, b"slow")
    waited = time.monotonic() - start
    assert status == 504 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "the request took longer than the server's limit of 0.2 s; send fewer "
                                         "instances per request, or ask for a server started with a longer timeout"}
    assert 0.2 <= waited < 0.6  # freed at the deadline, not when the 0.8 s prediction ends
    assert not fake.finished.is_set()  # the worker thread was not killed ...
    assert fake.finished.wait(timeout=5)  # ... it ran to its end, and its answer was dropped
    # A request within its time is untouched, and the server keeps serving.
    assert call(guarded, "POST", "/v1/models/digits:predict", AUTH, b"fast")[:1] == (200,)


def test_a_response_already_started_at_the_deadline_is_left_to_finish(guarded):
    status, _, body = call(guarded, "GET", "/v1/models/stream", AUTH)
    assert status == 200 and body == b'{"part": 1}{"part": 2}'


def test_cors_headers_only_when_origins_are_configured(guarded, plain):
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    # Configured: the preflight (which carries no credentials) is answered before auth.
    status, headers, _ = call(guarded, "OPTIONS", "/v1/models/digits:predict", preflight)
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in headers["access-control-allow-headers"].lower()
    assert "POST" in headers["access-control-allow-methods"]
    status, headers, _ = call(guarded, "GET", "/v1/models/digits", {"Origin": ORIGIN, **AUTH})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-expose-headers"].lower() == "x-request-id"
    status, headers, _ = call(guarded, "OPTIONS", "/v1/models/digits:predict",
                              {**preflight, "Origin": "https://evil.example"})
    assert status == 400 and "access-control-allow-origin" not in headers
    # Not configured: no CORS headers at all, so browsers keep to same-origin pages.
    for method, headers_sent in [("OPTIONS", preflight), ("GET", {"Origin": ORIGIN})]:
        _, headers, _ = call(plain, method, "/v1/models/digits", headers_sent)
        assert not [name for name in headers if name.startswith("access-control-")]
    assert not any(m.cls is CORSMiddleware for m in build_middleware(cors_origins=()))


def access_log_lines(caplog, request_ids):
    """The access log records of these requests, in order; the server thread logs each just after answering."""
    deadline = time.monotonic() + 5
    while True:
        records = {r.request["request_id"]: r for r in caplog.records if hasattr(r, "request")}
        if set(request_ids) <= set(records) or time.monotonic() > deadline:
            return [records[request_id] for request_id in request_ids]
        time.sleep(0.01)


def test_access_log_writes_one_json_line_per_request(guarded, caplog):
    caplog.set_level(logging.INFO, logger="tfdl.serving")
    _, first, _ = call(guarded, "POST", "/v1/models/digits/versions/1:predict", AUTH, b"fast")
    _, second, _ = call(guarded, "GET", "/v1/models/digits", {"X-Request-ID": "client-42.a"})
    _, third, _ = call(guarded, "GET", "/v1/models/digits", {"X-Request-ID": "no spaces allowed", **AUTH})
    # The id is sent back; a client's own is kept when it is a safe token, replaced when not.
    ids = [first["x-request-id"], second["x-request-id"], third["x-request-id"]]
    assert ids[1] == "client-42.a"
    assert re.fullmatch(r"[0-9a-f]{32}", ids[0]) and re.fullmatch(r"[0-9a-f]{32}", ids[2]) and ids[0] != ids[2]
    records = access_log_lines(caplog, ids)
    assert all(r.name == "tfdl.serving" and r.levelno == logging.INFO for r in records)
    lines = [json.loads(r.getMessage()) for r in records]
    assert lines == [r.request for r in records]  # the same dict, for a JSON log formatter
    assert [line.pop("request_id") for line in lines] == ids
    assert all(isinstance(line.pop("ms"), float) for line in lines)
    assert lines == [
        {"method": "POST", "path": "/v1/models/digits/versions/1:predict", "model": "digits", "api": "predict",
         "status": 404},  # FakeRest has no versioned route; the log shows what the client got
        {"method": "GET", "path": "/v1/models/digits", "model": "digits", "api": "status", "status": 401},
        {"method": "GET", "path": "/v1/models/digits", "model": "digits", "api": "status", "status": 200},
    ]


def test_build_middleware_orders_the_stack_outermost_first():
    stack = build_middleware(metrics=ServingMetrics(), model_names=list, auth_token=TOKEN, timeout_s=1,
                             cors_origins=[ORIGIN])
    assert [m.cls for m in stack] == [RequestLogMiddleware, MetricsMiddleware, CORSMiddleware,
                                      BearerAuthMiddleware, TimeoutMiddleware]
    assert [m.cls for m in build_middleware(access_log=False)] == []


SLOW_SERVER = '''
import socket, time
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route
from tfdl.serving.middleware import build_middleware

async def slow(request):
    print("in flight", flush=True)
    await run_in_threadpool(time.sleep, 1.0)  # a model call: a worker thread, not the event loop
    return JSONResponse({"finished": True})

app = Starlette(routes=[Route("/slow", slow)], middleware=build_middleware(timeout_s=30, access_log=False))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()  # connections wait in the backlog until uvicorn accepts them
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10)).run(sockets=[sock])
'''


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections(tmp_path):
    script = tmp_path / "slow_server.py"
    script.write_text(SLOW_SERVER)
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        port = int(server.stdout.readline())
        answer = {}

        def slow_client():
            status, _, body = call(port, "GET", "/slow")
            answer.update(status=status, body=json.loads(body))

        client = threading.Thread(target=slow_client)
        client.start()
        assert server.stdout.readline().strip() == "in flight"
        server.send_signal(signal.SIGTERM)
        refused, deadline = False, time.monotonic() + 0.8
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                time.sleep(0.02)
            except ConnectionRefusedError:
                refused = True
        assert refused and not answer  # new connections refused while the slow request still runs
        client.join(timeout=10)
        assert answer == {"status": 200, "body": {"finished": True}}
        # uvicorn re-raises the SIGTERM once drained, so the exit reads as the signal's.
        assert server.wait(timeout=10) == -signal.SIGTERM
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
