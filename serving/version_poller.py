"""Hot reload: a daemon thread that makes the store follow its models' base paths.

TF Serving polls each model's base path every `--file_system_poll_wait_seconds`
(1 s by default here too) and loads new versions while the old ones keep
serving. `VersionPoller` does the same by calling `ModelStore.refresh` on
that interval; the store decides what to load, unload, retry and report.

    store = ModelStore()
    store.reload_config(read_model_config("models.yaml"))
    with VersionPoller(store, interval_s=1.0), BackgroundServer(store) as server:
        ...  # a version folder dropped under a base path serves about a second later
"""

from __future__ import annotations

import logging
import threading

from tfdl.serving.model_store import ModelStore

log = logging.getLogger("tfdl.serving")


class VersionPoller:
    """Calls `store.refresh()` every `interval_s` seconds in a daemon thread, until `stop()`.

    Args:
        store: the models to keep in step with their folders.
        interval_s: seconds between the end of one poll and the start of the
            next (TF Serving's `--file_system_poll_wait_seconds`); positive.

    Raises:
        ValueError: `interval_s` is not positive.
    """

    def __init__(self, store: ModelStore, interval_s: float = 1.0):
        if not interval_s > 0:
            raise ValueError(
                f"interval_s must be positive, got {interval_s}; to load versions once without polling, "
                "call store.refresh() instead of starting a poller"
            )
        self.store = store
        self.interval_s = float(interval_s)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tfdl-version-poller", daemon=True)

    def start(self) -> VersionPoller:
        """Start polling; returns `self`."""
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling and wait (up to `timeout` seconds) for a load in progress to finish."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread.is_alive()

    def __enter__(self) -> VersionPoller:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.store.refresh()
            except Exception:  # noqa: BLE001
                # A bug in one poll must not end hot reload for the server's lifetime;
                # it is logged whole, and the next poll tries again.
                log.exception("polling the model base paths failed; trying again in %.3g s", self.interval_s)
