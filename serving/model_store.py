"""The models a server holds: each name maps to its loaded SavedModel versions.

A model's base path holds numbered version folders (the TF Serving layout).
Which of them are served follows the model's version policy (TF Serving's
`latest` N, `all`, `specific`; see `tfdl.serving.model_config`), and
`get(name)` without a version answers with the highest one served. Version
labels (`stable`, `canary`) name versions for `/labels/LABEL` requests.

`refresh` re-lists every base path and loads and unloads versions to match:
the `VersionPoller` thread calls it every few seconds, which is hot reload.
A new version is loaded before it is switched in, and the switch replaces a
model's whole version dict under the lock, so a request sees either the old
versions or the new ones; a request that already holds a `Servable` keeps
using it after it is unloaded (the Servable holds its loaded SavedModel). A
version that fails to load is logged once, shown as `END` with its error in
`status`, and not tried again until its folder changes; a folder without
`saved_model.pb` is still being written and is looked at again on the next
refresh. Version numbers come only from folder names under the configured
base path, so no request can make the store read anything outside it.

A version exported with a `manifest.json` (`tfdl.export.manifest`) is
checked against it before it loads: a file changed or missing since export
fails the load like a corrupt file (logged, `END` in `status`, the other
versions keep serving), with a message naming the file. The metadata
response carries the manifest under `metadata.manifest`, beside TF
Serving's `signature_def`.

Each version's signatures are called directly as concrete functions; no
`model.predict`, which costs tens of milliseconds a call.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from tfdl.export.model_server_config import ModelEntry
from tfdl.export.serving_layout import list_versions
from tfdl.serving.errors import InvalidArgument, NotFound
from tfdl.serving.json_codec import DEFAULT_SIGNATURE, TensorSpec
from tfdl.serving.model_config import ModelConfigError, check_model_entry, check_unique_names, select_versions

log = logging.getLogger("tfdl.serving")

# TF Serving reads a version from a folder name of digits (leading zeros allowed).
_VERSION_FOLDER = re.compile(r"^[0-9]+$")


@dataclass
class Signature:
    """One callable signature of a loaded SavedModel."""

    name: str
    function: object
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    # Set when the server batches: calls go through it and merge with others.
    batcher: object = field(repr=False, default=None)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature; with batching on, as part of a batch of concurrent calls."""
        if self.batcher is not None:
            return self.batcher.submit(inputs)
        return self.run(inputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature on exactly these inputs."""
        import tensorflow as tf

        try:
            outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise InvalidArgument(f"the model rejected the input: {_error_text(error)}") from None
        return {k: v.numpy() for k, v in outputs.items()}


def _error_text(error: Exception) -> str:
    """What a TensorFlow error says was wrong, without the graph's traceback.

    A graph error's first line is only "Graph execution error:"; the cause is
    the last line before the `[[{{node ...}}]]` trailer.
    """
    import tensorflow as tf

    message = (getattr(error, "message", None) or str(error)).strip()
    if not isinstance(error, tf.errors.OpError):
        return message.splitlines()[0] if message else type(error).__name__
    useful = [line.strip() for line in message.splitlines() if line.strip() and not line.strip().startswith("[[")]
    return useful[-1] if useful else message


@dataclass
class Servable:
    """A loaded model version: its signatures and the metadata the REST API reports."""

    name: str
    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_def: dict
    # The loaded SavedModel object: its variables live as long as it does.
    handle: object = field(repr=False, default=None)
    # The version's checked manifest.json; None for a SavedModel written without one.
    manifest: dict | None = field(repr=False, default=None)

    def close(self) -> None:
        """Stop the version's batchers once their queued work is done."""
        for signature in self.signatures.values():
            if signature.batcher is not None:
                signature.batcher.close()

    def signature(self, name: str | None) -> Signature:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
        return self.signatures[name]


def _spec(name: str, tensor_spec) -> TensorSpec:
    dtype = object if tensor_spec.dtype.name == "string" else np.dtype(tensor_spec.dtype.as_numpy_dtype)
    return TensorSpec(name, np.dtype(dtype), tuple(tensor_spec.shape.as_list()))


def _signature_def_json(path: Path) -> dict:
    """The SavedModel's signature defs as TF Serving's metadata API prints them."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            for key, value in meta_graph.signature_def.items():
                signature_map.signature_def[key].CopyFrom(value)
    return json_format.MessageToDict(
        signature_map, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def load_servable(name: str, path: Path, version: int, batching=None, on_batch=None) -> Servable:
    """Load one SavedModel version, wrap its signatures, replay its warm-up records.

    Raises `tfdl.export.manifest.ManifestMismatch` (a ValueError) when the
    version's files do not match its manifest. With `batching`
    (`tfdl.serving.batching.BatchingParameters`) each signature gets a
    `Batcher`; `on_batch(name, size)` hears of each batch.
    """
    import tensorflow as tf

    from tfdl.export.manifest import verify_manifest

    # Before loading: a tampered file must not run, not even its warm-up.
    manifest = verify_manifest(path)
    handle = tf.saved_model.load(str(path), tags=["serve"])
    signatures = {}
    for key, function in handle.signatures.items():
        _, kwargs = function.structured_input_signature
        signatures[key] = Signature(
            name=key,
            function=function,
            inputs={k: _spec(k, s) for k, s in kwargs.items()},
            outputs={k: _spec(k, s) for k, s in function.structured_outputs.items()},
        )
    servable = Servable(name, version, path, signatures, _signature_def_json(path), handle, manifest)
    _warm_up(servable)
    if batching is not None:
        from tfdl.serving.batching import Batcher

        for signature in signatures.values():
            hook = (lambda size, name=name: on_batch(name, size)) if on_batch else None
            signature.batcher = Batcher(signature.run, batching, on_batch=hook)
    return servable


def _warm_up(servable: Servable) -> int:
    """Replay the version's warm-up requests, as TF Serving does, so no client pays the first call.

    The first call of a signature builds its graph runtime state (tens of
    milliseconds); a version with `assets.extra/tf_serving_warmup_requests`
    is called once per record before it takes traffic. A bad record fails
    the load, as in TF Serving: a model that cannot answer its own warm-up
    would fail clients too.
    """
    import tensorflow as tf

    from tfdl.export.warmup import WARMUP_DIRECTORY, WARMUP_FILENAME, read_warmup_requests

    path = servable.path / WARMUP_DIRECTORY / WARMUP_FILENAME
    if not path.is_file():
        return 0
    records = read_warmup_requests(path)
    for index, record in enumerate(records):
        request = record.predict_log.request
        signature = servable.signature(request.model_spec.signature_name or None)
        try:
            signature({k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except InvalidArgument as error:
            raise ValueError(f"{path}, record {index}: the warm-up request failed: {error}") from None
    log.info("%s version %d: replayed %d warm-up requests", servable.name, servable.version, len(records))
    return len(records)


class ModelLoadError(ValueError):
    """A model that was added but has no version to serve; the message says why, version by version."""


@dataclass(frozen=True)
class VersionStatus:
    """A version's state, as TF Serving's model status reports it.

    `state` is one of TF Serving's `ModelVersionStatus` states: `LOADING`
    while the version loads, `AVAILABLE` while it serves, `END` once it is
    unloaded or when its load failed (then `error_code`, a TensorFlow error
    code name such as `UNKNOWN` or `NOT_FOUND`, and `error_message` say why).
    """

    state: str
    error_code: str = "OK"
    error_message: str = ""

    def as_json(self, version: int) -> dict:
        """This status as one entry of `model_version_status`."""
        return {
            "version": str(version),
            "state": self.state,
            "status": {"error_code": self.error_code, "error_message": self.error_message},
        }


@dataclass(frozen=True)
class _VersionFolder:
    version: int
    path: Path
    complete: bool  # holds saved_model.pb; without it the folder is still being written
    fingerprint: tuple  # changes when the folder, its variables/ or its saved_model.pb is written to


def _scan(base_path: Path) -> dict[int, _VersionFolder]:
    """The version folders directly under `base_path`; raises OSError when it cannot be listed."""
    folders: dict[int, _VersionFolder] = {}
    for child in sorted(base_path.iterdir()):
        if _VERSION_FOLDER.match(child.name) and int(child.name) > 0 and child.is_dir():
            folders.setdefault(int(child.name), _version_folder(int(child.name), child))
    return folders


def _version_folder(version: int, path: Path) -> _VersionFolder:
    stamps = []
    for part in (path, path / "variables", path / "saved_model.pb"):
        try:
            stat = part.stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return _VersionFolder(version, path, (path / "saved_model.pb").is_file(), tuple(stamps))


def _error_code(error: BaseException) -> str:
    """TF Serving's `error_code` for a failed load: the TensorFlow code name, else UNKNOWN."""
    import tensorflow as tf

    if isinstance(error, tf.errors.OpError):
        names = {getattr(tf.errors, name): name for name in dir(tf.errors) if name.isupper()}
        return names.get(error.error_code, "UNKNOWN")
    return "UNKNOWN"


# A request that picked a version just before it was unloaded finishes on it:
# the version's batchers stop only after this long (above any request timeout).
_RETIRE_AFTER_S = 60.0


class ModelStore:
    """Loaded models by name, each with its versions; safe to read from many threads.

    Reads (`get`, `status`, `metadata`) take a short lock and never wait for
    a load. Changes (`add_model`, `reload_config`, `refresh`) run one at a
    time, load outside that lock, and switch a model's versions in one step.
    """

    def __init__(self, batching=None, on_batch=None, on_state=None):
        """
        Args:
            batching: `BatchingParameters` to batch every signature's calls
                (TF Serving's `--enable_batching`); None calls them one by one.
            on_batch: `on_batch(model, size)` after each batch runs.
            on_state: `on_state(model, version, available)` when a version
                starts or stops serving (the Prometheus load-state gauge).
        """
        self._batching, self._on_batch, self._on_state = batching, on_batch, on_state
        self._lock = threading.Lock()  # held only to look up or swap the dicts below
        self._sync = threading.RLock()  # one change at a time; held while versions load
        self._entries: dict[str, ModelEntry] = {}
        # Each model's dict is replaced whole, never changed in place, so a reader's copy stays consistent.
        self._models: dict[str, dict[int, Servable]] = {}
        self._states: dict[str, dict[int, VersionStatus]] = {}
        self._labels: dict[str, dict[str, int]] = {}
        # Used only under _sync: what to retry, and what was already logged (each condition once).
        self._failed: dict[Path, tuple] = {}  # version folder -> its fingerprint when its load failed
        self._waiting: set[Path] = set()  # version folders without saved_model.pb yet
        self._unlistable: set[Path] = set()  # base paths that could not be listed

    def add_model(
        self,
        name: str,
        base_path: Path | str,
        *,
        version_policy: str = "latest",
        num_versions: int = 1,
        versions: Sequence[int] = (),
        version_labels: Mapping[str, int] | None = None,
    ) -> Servable:
        """Serve the versions under `base_path` that the policy selects as `name` (replacing a model of that name).

        Args:
            name: the served name (`/v1/models/NAME`); letters, digits, `_.-`.
            base_path: the folder holding the numbered version folders.
            version_policy: `latest` (the `num_versions` highest), `all`, or
                `specific` (`versions`), as in TF Serving.
            num_versions: how many of the latest versions; only with `latest`.
            versions: the versions to serve; only with `specific`.
            version_labels: version by label, e.g. `{"stable": 1, "canary": 2}`.

        Returns:
            The highest version now served.

        Raises:
            FileNotFoundError: `base_path` holds no complete version folder.
            ModelConfigError: a bad name, policy or label (see `reload_config`).
            ModelLoadError: no version the policy selects could be loaded.
        """
        base_path = Path(base_path).expanduser().absolute()
        try:
            entry = ModelEntry(name, str(base_path), version_policy, num_versions, versions, version_labels or {})
        except ValueError as error:
            raise ModelConfigError(str(error)) from None
        check_model_entry(entry, "add_model")
        if not list_versions(base_path):
            raise FileNotFoundError(
                f"no SavedModel version under {base_path}: expected numbered folders such as "
                f"{base_path / '1'} holding saved_model.pb (run `tfdl run` to export one)"
            )
        with self._sync:
            with self._lock:
                entries = {**self._entries, name: entry}
            self.reload_config(list(entries.values()))
        return self.get(name)

    def reload_config(self, entries: Sequence[ModelEntry]) -> None:
        """Serve exactly `entries`: add new models, drop the ones not listed, apply changed policies and labels.

        TF Serving's `ReloadConfig`. Versions load before labels are assigned,
        so a label may name a version that this same config makes available.
        A config is taken whole or not at all: models it drops are unloaded
        only once every model it lists serves and every label is assigned;
        when that fails, the previous config is restored, so a bad reload
        (from gRPC's `HandleReloadConfigRequest`, say) loses no model.

        Args:
            entries: the models to serve, e.g. from `read_model_config`.

        Raises:
            ModelConfigError: a bad or repeated name, or a label naming a
                version that is not AVAILABLE (TF Serving's text).
            ModelLoadError: a newly added model has no version to serve (none
                on disk, or every selected one failed to load); `status`
                still shows its failed versions.
        """
        entries = list(entries)
        for index, entry in enumerate(entries):
            check_model_entry(entry, f"models[{index}]")
        check_unique_names(entries, "the model config")
        with self._sync:
            with self._lock:
                previous, self._entries = self._entries, {entry.name: entry for entry in entries}
            try:
                labels = self._apply(entries, previous)
            except (ModelLoadError, ModelConfigError):
                self._restore(previous)
                raise
            with self._lock:
                self._labels = labels
            for name in sorted(previous.keys() - self._entries.keys()):
                self._unload_model(name)

    def _apply(self, entries: Sequence[ModelEntry], previous: Mapping[str, ModelEntry]) -> dict[str, dict[str, int]]:
        """Load what `entries` select; the labels to assign. Raises when a new model has nothing to serve."""
        problems = []
        for entry in entries:
            failures = self._sync_model(entry)
            # Read without the lock: under _sync this thread is the only writer.
            if entry.name not in previous and not self._models.get(entry.name):
                problems.append(self._nothing_to_serve(entry, failures))
        if problems:
            raise ModelLoadError("\n".join(problems))
        return self._label_map(entries)

    def _restore(self, previous: Mapping[str, ModelEntry]) -> None:
        """Undo a failed reload: drop the models it added, put back the policies it changed."""
        with self._lock:
            added, self._entries = self._entries.keys() - previous.keys(), dict(previous)
        for name in sorted(added):
            self._unload_model(name)
        for entry in previous.values():
            self._sync_model(entry)  # for a model the reload left as it was, only a refresh

    def refresh(self) -> None:
        """Re-list every model's base path; load the versions its policy now selects, unload the others.

        The `VersionPoller` calls this every `interval_s`. A new version
        serves only once loaded (and warmed up); a version that fails is
        logged once, reported by `status`, and retried only after its folder
        changes; a folder still being written is looked at again next time.
        """
        with self._sync:
            with self._lock:
                entries = list(self._entries.values())
            for entry in entries:
                self._sync_model(entry)

    def model_names(self) -> list[str]:
        """The names of the configured models, sorted."""
        with self._lock:
            return sorted(self._entries)

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request addresses; errors use TF Serving's texts.

        Args:
            name: the model name.
            version: a version number; `None` for the highest one served.
            label: a version label, instead of `version`.

        Returns:
            The loaded version; it stays usable after it is unloaded.

        Raises:
            InvalidArgument: an unknown label.
            NotFound: an unknown model, or a version (or a label's version)
                that is not served.
        """
        with self._lock:
            versions = self._models.get(name, {})
            if label is not None:
                if label not in self._labels.get(name, {}):
                    raise InvalidArgument(f"Unrecognized servable version label: {label}")
                version = self._labels[name][label]
        if version is None:
            if not versions:
                raise NotFound(f"Servable not found for request: Latest({name})")
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return versions[version]

    def status(self, name: str, version: int | None = None) -> dict:
        """The model status response (`GET /v1/models/NAME`), newest version first.

        Lists every version the store has loaded, is loading, has unloaded,
        or failed to load, as TF Serving does.

        Args:
            name: the model name.
            version: one version only; `None` for all.

        Returns:
            `{"model_version_status": [{"version", "state", "status"}, ...]}`.

        Raises:
            NotFound: the model, or that version of it, was never seen.
        """
        with self._lock:
            states = dict(self._states.get(name, {}))
        if version is not None:
            if version not in states:
                raise NotFound(f"Could not find version {version} of model {name}")
            chosen = [version]
        else:
            if not states:
                raise NotFound(f"Could not find any versions of model {name}")
            chosen = sorted(states, reverse=True)
        return {"model_version_status": [states[v].as_json(v) for v in chosen]}

    def metadata(self, name: str, version: int | None = None, label: str | None = None) -> dict:
        """The model metadata response (`GET /v1/models/NAME/metadata`).

        TF Serving's body, plus `metadata.manifest` when the version has a
        manifest: `metadata` is a map keyed by metadata field, so clients that
        read `signature_def` are unaffected.
        """
        servable = self.get(name, version, label)
        metadata = {"signature_def": servable.signature_def}
        if servable.manifest is not None:
            metadata["manifest"] = servable.manifest
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": metadata,
        }

    def _sync_model(self, entry: ModelEntry) -> list[str]:
        """Load and unload `entry`'s versions to match its folders and policy; the failures, one line each."""
        base_path = Path(entry.base_path)
        try:
            folders = _scan(base_path)
        except OSError as error:
            # As TF Serving does when a file system poll fails: keep serving what is loaded.
            if base_path not in self._unlistable:
                log.warning("%s: cannot list %s (%s); serving what is loaded", entry.name, base_path, error)
            self._unlistable.add(base_path)
            return [f"cannot list {base_path}: {error}"]
        self._unlistable.discard(base_path)
        with self._lock:
            current = self._models.get(entry.name, {})
        # A version loaded from another folder (the base path changed) is replaced, not kept.
        loaded = {v: s for v, s in current.items() if v in folders and s.path == folders[v].path}
        candidates = self._candidates(base_path, folders, loaded)
        self._report_waiting(entry, base_path, folders, loaded, candidates)
        failures = []
        while missing := sorted(set(select_versions(entry, candidates)) - loaded.keys(), reverse=True):
            for version in missing:
                servable = self._load(entry.name, folders[version])
                if servable is None:
                    candidates.discard(version)
                    failures.append(f"version {version}: {self._states[entry.name][version].error_message}")
                else:
                    loaded[version] = servable
        self._publish(entry.name, {v: loaded[v] for v in select_versions(entry, candidates)})
        return failures

    def _candidates(self, base_path: Path, folders: dict[int, _VersionFolder], loaded: dict) -> set[int]:
        """The versions the policy may choose from: loaded, or complete and not failed as they are now."""
        present = {folder.path for folder in folders.values()}
        for path in [p for p in self._failed if p.parent == base_path and p not in present]:
            del self._failed[path]
        candidates = set(loaded)
        for version, folder in folders.items():
            if self._failed.get(folder.path, folder.fingerprint) != folder.fingerprint:
                del self._failed[folder.path]  # written to since it failed: worth another try
            if folder.complete and folder.path not in self._failed:
                candidates.add(version)
        return candidates

    def _report_waiting(self, entry: ModelEntry, base_path: Path, folders, loaded, candidates: set[int]) -> None:
        """Log, once each, the folders the policy would serve but that have no saved_model.pb yet."""
        waiting = {
            folder.path
            for version, folder in folders.items()
            if not folder.complete
            and version not in loaded
            and version in select_versions(entry, candidates | {version})
        }
        for path in sorted(waiting - self._waiting):
            log.info("%s: %s has no saved_model.pb yet; it is loaded once the export completes", entry.name, path)
        self._waiting = {p for p in self._waiting if p.parent != base_path} | waiting

    def _load(self, name: str, folder: _VersionFolder) -> Servable | None:
        """Load one version; on failure record it (status, log, retry rule) and return None."""
        with self._lock:
            self._states.setdefault(name, {})[folder.version] = VersionStatus("LOADING")
        log.info("loading %s version %d from %s", name, folder.version, folder.path)
        try:
            return load_servable(name, folder.path, folder.version, self._batching, self._on_batch)
        except Exception as error:  # noqa: BLE001
            # Any load failure (a corrupt file, a failed warm-up) must leave the other
            # versions serving, as in TF Serving. It is not swallowed: it is logged and
            # shown in the version's status until the folder changes.
            message = (getattr(error, "message", None) or str(error)).strip()
            with self._lock:
                self._states[name][folder.version] = VersionStatus("END", _error_code(error), message)
            self._failed[folder.path] = folder.fingerprint
            log.error(
                "%s version %d at %s failed to load; skipped until its folder changes: %s",
                name, folder.version, folder.path, message,
            )
            return None

    def _publish(self, name: str, chosen: dict[int, Servable]) -> None:
        """Switch `name` to the servables `chosen` in one step; the versions left out are unloaded."""
        with self._lock:
            previous = self._models.get(name, {})
            self._models[name] = chosen
            states = self._states.setdefault(name, {})
            unloaded = [v for v in previous if chosen.get(v) is not previous[v]]
            added = [v for v in chosen if previous.get(v) is not chosen[v]]
            for version in unloaded:
                states[version] = VersionStatus("END")
            for version in chosen:
                states[version] = VersionStatus("AVAILABLE")
        for version in sorted(added):
            log.info("serving %s version %d from %s", name, version, chosen[version].path)
            self._announce(name, version, True)
        for version in sorted(unloaded):
            log.info("unloaded %s version %d: its version policy no longer selects it", name, version)
            self._retire(previous[version])

    def _announce(self, name: str, version: int, available: bool) -> None:
        if self._on_state is not None:
            self._on_state(name, version, available)

    def _retire(self, servable: Servable) -> None:
        """Stop an unloaded version's batchers once requests that hold it have had time to finish."""
        self._announce(servable.name, servable.version, False)
        if self._batching is not None:
            timer = threading.Timer(_RETIRE_AFTER_S, servable.close)
            timer.daemon = True
            timer.start()

    def _unload_model(self, name: str) -> None:
        with self._lock:
            servables = self._models.pop(name, {})
            states = self._states.setdefault(name, {})
            for version in servables:
                states[version] = VersionStatus("END")
            self._labels.pop(name, None)
        log.info("stopped serving %s (versions %s): it is no longer configured", name, sorted(servables))
        for servable in servables.values():
            self._retire(servable)

    def _nothing_to_serve(self, entry: ModelEntry, failures: list[str]) -> str:
        where = f"model {entry.name!r} ({entry.base_path})"
        if failures:
            return f"{where}: nothing to serve: " + "; ".join(failures)
        return (
            f"{where}: no SavedModel version that its {entry.version_policy!r} version policy serves: expected "
            f"numbered folders such as {Path(entry.base_path) / '1'} holding saved_model.pb "
            "(run `tfdl run` to export one)"
        )

    def _label_map(self, entries: Sequence[ModelEntry]) -> dict[str, dict[str, int]]:
        """Each model's labels, once every label is checked to name a served version."""
        labels = {}
        for entry in entries:
            served = self._models.get(entry.name, {})
            for label, version in entry.version_labels.items():
                if version not in served:
                    raise ModelConfigError(
                        f"Request to assign label to version {version} of model {entry.name}, which is not "
                        f"currently available for inference (label {label!r}; served versions: {sorted(served)})"
                    )
            labels[entry.name] = dict(entry.version_labels)
        return labels
