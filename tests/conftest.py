"""Shared fixtures: one short digits run whose export the export and serving tests reuse."""

from __future__ import annotations

import socket

import pytest

# A short budget: enough epochs to learn the digits well past chance, few
# enough to keep the suite fast on two cores.
SHORT_RUN = [
    "training.epochs=4",
    "training.early_stopping=null",
    "data.batch_size=64",
    "export.sample_size=4",
]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The default config run end to end on a reduced budget."""
    from tfdl.config import load_config
    from tfdl.run import run

    config = load_config(None, SHORT_RUN)
    return run(config, output_dir=tmp_path_factory.mktemp("runs") / "digits", log=lambda _: None)


@pytest.fixture(scope="session")
def digits_store(digits_run):
    from tfdl.serving.model_store import ModelStore

    store = ModelStore()
    store.add_model("digits", digits_run.serving_dir)
    return store


@pytest.fixture(scope="session")
def digits_server(digits_store):
    from tfdl.serving.server import BackgroundServer

    with BackgroundServer(digits_store, max_body_bytes=64 * 1024) as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
