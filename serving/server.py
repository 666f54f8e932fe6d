"""Run the REST app with uvicorn: `tfdl serve`, or in a background thread.

Binds to 127.0.0.1 unless told otherwise: exposing a model server is a
decision, not a default.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from tfdl.serving.model_store import ModelStore
from tfdl.serving.rest import create_app

log = logging.getLogger("tfdl.serving")


def _uvicorn_server(store: ModelStore, host: str, port: int, max_body_bytes: int, log_level: str = "warning"):
    import uvicorn

    config = uvicorn.Config(
        create_app(store, max_body_bytes),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        # A connection flood gets 503s instead of exhausting memory.
        limit_concurrency=2048,
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def serve(
    model_base_path: Path | str,
    model_name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8501,
    max_body_bytes: int = 16 * 1024 * 1024,
) -> None:
    """Load the model under `model_base_path` and serve it until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    base = Path(model_base_path)
    name = model_name or base.resolve().name
    store = ModelStore()
    servable = store.add_model(name, base)
    print(
        f"tfdl serving {name} version {servable.version} at http://{host}:{port}/v1/models/{name} "
        f"(signatures: {', '.join(sorted(servable.signatures))})",
        flush=True,
    )
    _uvicorn_server(store, host, port, max_body_bytes).run()


class BackgroundServer:
    """The REST server in a daemon thread, for tests, benchmarks and notebooks.

        with BackgroundServer(store) as server:
            Client(server.url, "digits").predict(instances=rows)

    `port=0` picks a free port; `server.url` tells which.
    """

    def __init__(self, store: ModelStore, host: str = "127.0.0.1", port: int = 0,
                 max_body_bytes: int = 16 * 1024 * 1024):
        self._server = _uvicorn_server(store, host, port, max_body_bytes)
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
