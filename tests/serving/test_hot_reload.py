"""Hot reload under traffic: new versions switch in with no failed request; bad or half-written ones never serve."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time

import numpy as np
import pytest

from tfdl.export.model_server_config import ModelEntry
from tfdl.export.serving_model import export_serving_model
from tfdl.serving.model_store import ModelStore
from tfdl.serving.version_poller import VersionPoller
from served_models import constant_model

ROW = np.ones((1, 2), "float32")
POLL_S = 0.1


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """Versions 1, 2 and 4 exported (with warm-up records) outside any base path, ready to be dropped in."""
    root = tmp_path_factory.mktemp("staged")
    for version in (1, 2, 4):
        export_serving_model(constant_model(version), root / str(version), warmup={"x": np.zeros((2, 2), "float32")})
    return root


def wait_until(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_S / 4)


class Traffic:
    """A thread calling `store.get(name)` and predicting in a loop, recording (version, answer) or the error."""

    def __init__(self, store: ModelStore, name: str):
        self.store, self.name = store, name
        self.answers: list[tuple[int, float]] = []
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                servable = self.store.get(self.name)
                self.answers.append((servable.version, float(servable.signature(None)({"x": ROW})["y"][0, 0])))
            except Exception as error:  # noqa: BLE001 - the test counts every failure
                self.errors.append(error)

    def answered(self, value: float) -> bool:
        return bool(self.answers) and self.answers[-1][1] == value

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join()


def states(store: ModelStore) -> list[tuple[str, str, str]]:
    return [(s["version"], s["state"], s["status"]["error_code"]) for s in store.status("m")["model_version_status"]]


def test_versions_switch_under_traffic_and_bad_ones_never_serve(tmp_path, staged, caplog):
    caplog.set_level(logging.INFO, logger="tfdl.serving")
    base = tmp_path / "m"
    shutil.copytree(staged / "1", base / "1")
    store = ModelStore()
    store.add_model("m", base)
    first = store.get("m")
    with VersionPoller(store, POLL_S) as poller, Traffic(store, "m") as traffic:
        wait_until(lambda: traffic.answered(1.0), "the first answer")

        # Version 2 appears in one rename, as export_serving_model writes it.
        shutil.copytree(staged / "2", tmp_path / ".2.staging")
        os.rename(tmp_path / ".2.staging", base / "2")
        wait_until(lambda: traffic.answered(2.0), "answers from version 2")
        assert states(store) == [("2", "AVAILABLE", "OK"), ("1", "END", "OK")]
        # A request that got version 1 before the switch still completes on it.
        assert float(first.signature(None)({"x": ROW})["y"][0, 0]) == 1.0

        # A corrupt version 3: reported, logged once, skipped; version 2 keeps serving.
        (tmp_path / ".3.staging").mkdir()
        (tmp_path / ".3.staging" / "saved_model.pb").write_bytes(b"\x08garbage, not a SavedModel")
        os.rename(tmp_path / ".3.staging", base / "3")
        wait_until(lambda: states(store)[0] == ("3", "END", "UNKNOWN"), "version 3 to fail")
        time.sleep(5 * POLL_S)
        assert "Cannot parse file" in store.status("m", 3)["model_version_status"][0]["status"]["error_message"]
        assert store.get("m").version == 2 and traffic.answered(2.0)

        # A half-written version 4 (variables/ but no saved_model.pb yet) is waited for, then served.
        shutil.copytree(staged / "4", base / "4", ignore=shutil.ignore_patterns("saved_model.pb"))
        time.sleep(5 * POLL_S)
        assert store.get("m").version == 2 and "4" not in [v for v, _, _ in states(store)]
        shutil.copy2(staged / "4" / "saved_model.pb", base / "4" / "saved_model.pb")
        wait_until(lambda: traffic.answered(4.0), "answers from version 4")
        time.sleep(2 * POLL_S)
    assert not poller.running

    assert traffic.errors == []
    # Every answer came from the version the store handed out, and versions only moved forward.
    assert all(answer == version for version, answer in traffic.answers)
    seen = [version for version, _ in traffic.answers]
    assert seen == sorted(seen) and set(seen) == {1, 2, 4}
    assert states(store) == [
        ("4", "AVAILABLE", "OK"),
        ("3", "END", "UNKNOWN"),
        ("2", "END", "OK"),
        ("1", "END", "OK"),
    ]
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "version 3" in m and "failed to load" in m]) == 1
    assert len([m for m in messages if "has no saved_model.pb yet" in m]) == 1


def test_reload_config_while_polling_adds_and_removes_models(tmp_path, staged):
    for name in ("m", "n"):
        shutil.copytree(staged / "1", tmp_path / name / "1")
    store = ModelStore()
    store.add_model("m", tmp_path / "m")
    with VersionPoller(store, POLL_S):
        store.reload_config([ModelEntry("n", str(tmp_path / "n"))])
        assert store.model_names() == ["n"]
        shutil.copytree(staged / "2", tmp_path / "n" / "2")
        wait_until(lambda: store.get("n").version == 2, "version 2 of the added model")
    assert states(store) == [("1", "END", "OK")]


def test_the_poll_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval_s must be positive, got 0"):
        VersionPoller(ModelStore(), 0)
