"""Which models a server serves, and which of their versions: a `models.config` or a YAML file.

Two formats, one result (a list of `tfdl.export.ModelEntry`):

* TF Serving's `models.config`, a text-format `ModelServerConfig`, read with
  `tfdl.export.read_model_server_config`, so a file that works with
  `tensorflow_model_server --model_config_file=...` works here unchanged;
* YAML with the same fields, for people who write configs by hand:

      models:
        - name: digits
          base_path: /models/digits
          version_policy: latest      # latest | all | specific
          num_versions: 2             # only with latest
          versions: [3, 5]            # only with specific
          version_labels: {stable: 3, canary: 5}

A relative `base_path` is taken relative to the config file's folder (what
TF Serving does with `--model_config_list_root_dir` set to that folder), so a
config means the same whatever directory the server starts in.

`select_versions` applies a version policy as TF Serving's file system source
does: `latest` serves the N highest versions, `all` every version, `specific`
the listed ones that exist.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

from tfdl.export.model_server_config import VERSION_POLICIES, ModelEntry, read_model_server_config

# A name goes into URLs (/v1/models/NAME) and logs; it never names a folder.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
YAML_SUFFIXES = (".yaml", ".yml")
_YAML_FIELDS = ("name", "base_path", "version_policy", "num_versions", "versions", "version_labels")
# A scheme such as gs:// or s3://: TF Serving reads those through its file systems; tfdl reads local folders.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ModelConfigError(ValueError):
    """A model config that cannot be served; the message names the file, the model and the field."""


def read_model_config(path: Path | str) -> list[ModelEntry]:
    """Read the models to serve from a YAML file (`.yaml`, `.yml`) or a TF Serving `models.config`.

    Args:
        path: the config file; its suffix picks the format.

    Returns:
        One `ModelEntry` per model, in file order, each `base_path` absolute.

    Raises:
        ModelConfigError: the file is missing or unreadable, a field has the
            wrong type or value (the message names the model and field), a
            name is listed twice or does not match `MODEL_NAME`, a base path
            is a URI, or the platform is not `tensorflow`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelConfigError(f"no model config at {path}; give a models.config or a .yaml file")
    if path.suffix.lower() in YAML_SUFFIXES:
        entries = _read_yaml(path)
    else:
        try:
            entries = read_model_server_config(path)
        except ValueError as error:
            raise ModelConfigError(str(error)) from None
    for index, entry in enumerate(entries):
        check_model_entry(entry, f"{path}, models[{index}]")
    check_unique_names(entries, str(path))
    return [_resolved(entry, path.parent) for entry in entries]


def check_model_entry(entry: ModelEntry, where: str) -> None:
    """Check what tfdl needs beyond what `ModelEntry` checks itself.

    Args:
        entry: the model to check.
        where: where the entry came from, for the message (`models.yaml, models[2]`).

    Raises:
        ModelConfigError: the name does not match `MODEL_NAME`, the base path
            is a URI, or the platform is not `tensorflow`.
    """
    if not MODEL_NAME.match(entry.name):
        raise ModelConfigError(
            f"{where}, field 'name': {entry.name!r} is not a model name; use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    if _URI.match(entry.base_path):
        raise ModelConfigError(
            f"{where} ({entry.name!r}), field 'base_path': {entry.base_path!r} is a URI; tfdl serves from local "
            "folders, so copy the model to a local path (or serve it with TF Serving)"
        )
    if entry.model_platform != "tensorflow":
        raise ModelConfigError(
            f"{where} ({entry.name!r}), field 'model_platform': {entry.model_platform!r} is not served by tfdl; "
            "use 'tensorflow' (SavedModels)"
        )


def check_unique_names(entries: Iterable[ModelEntry], where: str) -> None:
    """Check that each model name appears once.

    Args:
        entries: the models of one config.
        where: the config, for the message.

    Raises:
        ModelConfigError: naming every model listed more than once.
    """
    names = [entry.name for entry in entries]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ModelConfigError(f"{where}: models {twice} are listed more than once; list each name once")


def select_versions(entry: ModelEntry, available: Iterable[int]) -> list[int]:
    """The versions `entry`'s policy serves out of `available`, ascending (TF Serving's semantics).

    Args:
        entry: the model, with its version policy.
        available: the versions that could be served (complete, loadable folders).

    Returns:
        `latest`: the `num_versions` highest; `all`: every one; `specific`:
        those of `entry.versions` that are available (a listed version not
        on disk is simply not served, as in TF Serving).
    """
    available = sorted(set(available))
    if entry.version_policy == "latest":
        return available[-entry.num_versions :]
    if entry.version_policy == "all":
        return available
    return [version for version in available if version in entry.versions]


def _read_yaml(path: Path) -> list[ModelEntry]:
    import yaml

    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ModelConfigError(f"{path}: not a readable YAML file: {error}") from None
    if not isinstance(tree, dict) or set(tree) != {"models"}:
        found = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise ModelConfigError(f"{path}: expected one top-level key 'models' holding a list of models, found {found}")
    models = tree["models"]
    if not isinstance(models, list) or not models:
        raise ModelConfigError(f"{path}, field 'models': expected a non-empty list of models, got {models!r}")
    return [_yaml_entry(model, f"{path}, models[{index}]") for index, model in enumerate(models)]


def _yaml_entry(model: object, where: str) -> ModelEntry:
    if not isinstance(model, dict):
        raise ModelConfigError(f"{where}: expected a mapping with fields {list(_YAML_FIELDS)}, got {model!r}")
    unknown = sorted(set(model) - set(_YAML_FIELDS), key=str)
    if unknown:
        raise ModelConfigError(f"{where}: unknown fields {unknown}; the fields are {list(_YAML_FIELDS)}")
    for field in ("name", "base_path"):
        if not isinstance(model.get(field), str) or not model[field]:
            raise ModelConfigError(f"{where}, field {field!r}: required, a non-empty string; got {model.get(field)!r}")
    where = f"{where} ({model['name']!r})"
    policy = model.get("version_policy", "latest")
    if policy not in VERSION_POLICIES:
        raise ModelConfigError(
            f"{where}, field 'version_policy': {policy!r} is not a policy; use one of {', '.join(VERSION_POLICIES)}"
        )
    num_versions = model.get("num_versions", 1)
    if not _is_int(num_versions):
        raise ModelConfigError(f"{where}, field 'num_versions': expected an integer, got {num_versions!r}")
    versions = model.get("versions", [])
    if not isinstance(versions, list) or not all(_is_int(v) for v in versions):
        raise ModelConfigError(f"{where}, field 'versions': expected a list of integers, got {versions!r}")
    labels = model.get("version_labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and _is_int(v) for k, v in labels.items()):
        raise ModelConfigError(
            f"{where}, field 'version_labels': expected a mapping of label to version number, got {labels!r}"
        )
    try:
        return ModelEntry(model["name"], model["base_path"], policy, num_versions, versions, labels)
    except ValueError as error:  # ModelEntry's own checks: policy fields, labels
        raise ModelConfigError(f"{where}: {error}") from None


def _is_int(value: object) -> bool:
    # YAML reads `true` as a bool, which Python counts as an int.
    return isinstance(value, int) and not isinstance(value, bool)


def _resolved(entry: ModelEntry, root: Path) -> ModelEntry:
    base_path = Path(entry.base_path).expanduser()
    if not base_path.is_absolute():
        base_path = (root / base_path).resolve()
    return dataclasses.replace(entry, base_path=str(base_path))

