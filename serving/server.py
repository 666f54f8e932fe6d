"""Run the REST app with uvicorn: `tfdl serve`, or in a background thread.

Binds to 127.0.0.1 unless told otherwise: exposing a model server is a
decision, not a default.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from tfdl.serving.model_store import ModelStore
from tfdl.serving.rest import create_app

log = logging.getLogger("tfdl.serving")


@dataclass(frozen=True)
class ServerOptions:
    """How `tfdl serve` serves, with TF Serving's flag names where it has them.

    Attributes:
        rest_api_port: the REST port (TF Serving's `--rest_api_port`).
        grpc_port: the gRPC port (TF Serving's `--port`); 0 turns gRPC off.
        file_system_poll_wait_seconds: how often base paths are polled for
            new versions; 0 loads once and never polls.
        batching: `BatchingParameters` when `--enable_batching` is on.
        max_body_bytes: largest REST request body.
        request_timeout_s: REST requests taking longer get 504
            (TF Serving's `--rest_api_timeout_in_ms`).
        auth_token: required as `Authorization: Bearer TOKEN` (REST).
        cors_origins: origins allowed by CORS; none: no CORS headers.
        access_log: one JSON log line per REST request.
        drain_seconds: on SIGTERM, how long in-flight requests may finish.
    """

    host: str = "127.0.0.1"
    rest_api_port: int = 8501
    grpc_port: int = 8500
    file_system_poll_wait_seconds: float = 1.0
    batching: object = None
    max_body_bytes: int = 16 * 1024 * 1024
    request_timeout_s: float | None = 30.0
    auth_token: str | None = None
    cors_origins: tuple[str, ...] = ()
    access_log: bool = True
    drain_seconds: float = 25.0


def build_store(options: ServerOptions, metrics=None, model_base_path=None, model_name=None,
                model_config_file=None) -> ModelStore:
    """The model store of a server: one model by base path, or several from a config file."""
    on_batch = metrics.observe_batch if metrics is not None else None
    on_state = metrics.set_model_available if metrics is not None else None
    store = ModelStore(batching=options.batching, on_batch=on_batch, on_state=on_state)
    if model_config_file is not None:
        from tfdl.serving.model_config import read_model_config

        store.reload_config(read_model_config(model_config_file))
    elif model_base_path is not None:
        base = Path(model_base_path)
        store.add_model(model_name or base.resolve().name, base)
    else:
        raise ValueError("give a model base path (--model_base_path) or a model config file (--model_config_file)")
    return store


def _uvicorn_server(store: ModelStore, host: str, port: int, max_body_bytes: int, log_level: str = "warning",
                    options: ServerOptions | None = None, metrics=None):
    import uvicorn

    options = options or ServerOptions()
    config = uvicorn.Config(
        create_app(
            store, max_body_bytes, metrics=metrics, auth_token=options.auth_token,
            timeout_s=options.request_timeout_s, cors_origins=options.cors_origins, access_log=options.access_log,
        ),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        # A connection flood gets 503s instead of exhausting memory.
        limit_concurrency=2048,
        timeout_keep_alive=30,
        # SIGTERM: stop accepting, let in-flight requests finish, then exit.
        timeout_graceful_shutdown=options.drain_seconds,
    )
    return uvicorn.Server(config)


def serve(options: ServerOptions, *, model_base_path=None, model_name: str | None = None,
          model_config_file=None) -> None:
    """Load the models and serve them over REST (and gRPC) until SIGTERM or Ctrl-C."""
    from tfdl.serving.metrics import ServingMetrics
    from tfdl.serving.version_poller import VersionPoller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    metrics = ServingMetrics()
    store = build_store(options, metrics, model_base_path, model_name, model_config_file)
    grpc_server = None
    if options.grpc_port:
        from tfdl.serving.grpc_server import GrpcServer

        grpc_server = GrpcServer(store, host=options.host, port=options.grpc_port).start()
    poller = None
    if options.file_system_poll_wait_seconds > 0:
        poller = VersionPoller(store, options.file_system_poll_wait_seconds).start()
    for name in store.model_names():
        servable = store.get(name)
        print(f"tfdl serving {name} version {servable.version} (signatures: {', '.join(sorted(servable.signatures))})",
              flush=True)
    print(f"REST at http://{options.host}:{options.rest_api_port}/v1/models/NAME"
          + (f", gRPC at {grpc_server.address}" if grpc_server else "")
          + (", batching on" if options.batching else ""), flush=True)
    try:
        _uvicorn_server(store, options.host, options.rest_api_port, options.max_body_bytes, options=options,
                        metrics=metrics).run()
    finally:
        if poller:
            poller.stop()
        if grpc_server:
            grpc_server.stop(grace=options.drain_seconds)


class BackgroundServer:
    """The REST server in a daemon thread, for tests, benchmarks and notebooks.

        with BackgroundServer(store) as server:
            Client(server.url, "digits").predict(instances=rows)

    `port=0` picks a free port; `server.url` tells which.
    """

    def __init__(self, store: ModelStore, host: str = "127.0.0.1", port: int = 0,
                 max_body_bytes: int = 16 * 1024 * 1024, options: ServerOptions | None = None, metrics=None):
        options = options or ServerOptions(access_log=False)
        self._server = _uvicorn_server(store, host, port, max_body_bytes, options=options, metrics=metrics)
        self._thread = threading.Thread(target=self._server.run, name="tfdl-rest", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self._thread.start()
        stopped = threading.Event()
        while not self._server.started:
            if not self._thread.is_alive() or stopped.wait(0.01) or timeout <= 0:
                raise RuntimeError(f"the REST server did not start on {self.host}:{self.port}")
            timeout -= 0.01
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
