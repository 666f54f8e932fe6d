"""TF Serving's `models.config`: which models a server loads, which of their versions, and version labels.

The file is a text-format `tensorflow.serving.ModelServerConfig`, passed to
`tensorflow_model_server --model_config_file=...`. It is built and parsed
with TF Serving's own proto and protobuf's `text_format`, so it is exactly
what the server reads. Checks that TF Serving makes only when it loads the
file (unique names, base paths all absolute or all relative, labels that are
words) are made here, when it is written.

Version labels (`stable`, `canary`) let clients call
`/v1/models/NAME/labels/LABEL`. TF Serving assigns a label only to a version
that is already loaded, so a config that labels versions on the server's
first start needs `--allow_version_labels_for_unavailable_models=true`
(or the labels added in a later config, once the versions are loaded).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

VERSION_POLICIES = ("latest", "all", "specific")
# TF Serving's REST paths accept only word characters in a label.
_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
# A scheme (gs://, s3://, hdfs://) or a leading slash: TF Serving's "absolute".
_ABSOLUTE = re.compile(r"^(/|[A-Za-z][A-Za-z0-9+.-]*://)")
_MODELED_FIELDS = {"name", "base_path", "model_platform", "model_version_policy", "version_labels"}


@dataclass(frozen=True)
class ModelEntry:
    """One model of a `models.config`.

    Args:
        name: the served name (`/v1/models/NAME`).
        base_path: the folder holding the numbered version folders.
        version_policy: which versions to serve: `latest` (the
            `num_versions` highest), `all`, or `specific` (`versions`).
        num_versions: how many of the latest versions; only with `latest`.
        versions: the versions to serve; only with `specific`.
        version_labels: version by label, e.g. `{"stable": 1, "canary": 2}`.
        model_platform: TF Serving's platform; `tensorflow` for SavedModels.

    Raises:
        ValueError: an unknown policy, a field that does not go with the
            policy, or a label that is not a word or, with `specific`, points
            to a version not served.
    """

    name: str
    base_path: str
    version_policy: str = "latest"
    num_versions: int = 1
    versions: Sequence[int] = ()
    version_labels: Mapping[str, int] = field(default_factory=dict, hash=False)
    model_platform: str = "tensorflow"

    def __post_init__(self):
        # Normalized so entries read back from a file compare equal to the ones written.
        object.__setattr__(self, "versions", tuple(int(v) for v in self.versions))
        object.__setattr__(self, "version_labels", {str(k): int(v) for k, v in self.version_labels.items()})
        model = f"model {self.name!r}"
        if not self.name or not self.base_path or not self.model_platform:
            raise ValueError(f"{model}: name, base_path and model_platform must not be empty")
        if self.version_policy not in VERSION_POLICIES:
            raise ValueError(
                f"{model}: unknown version policy {self.version_policy!r}; use one of {', '.join(VERSION_POLICIES)}"
            )
        self._check_policy(model)
        self._check_labels(model)

    def _check_policy(self, model: str) -> None:
        if self.version_policy != "latest" and self.num_versions != 1:
            raise ValueError(f"{model}: num_versions goes with the `latest` policy, not {self.version_policy!r}")
        if self.version_policy == "latest" and self.num_versions < 1:
            raise ValueError(f"{model}: num_versions must be at least 1, got {self.num_versions}")
        if self.version_policy != "specific" and self.versions:
            raise ValueError(f"{model}: versions go with the `specific` policy, not {self.version_policy!r}")
        if self.version_policy == "specific":
            if not self.versions or min(self.versions) < 1 or len(set(self.versions)) != len(self.versions):
                raise ValueError(
                    f"{model}: the `specific` policy needs distinct positive versions, got {list(self.versions)}"
                )

    def _check_labels(self, model: str) -> None:
        for label, version in self.version_labels.items():
            if not _LABEL.match(label):
                raise ValueError(f"{model}: version label {label!r} must be letters, digits and underscores only")
            if version < 1:
                raise ValueError(f"{model}: label {label!r} points to version {version}; versions are positive")
            if self.version_policy == "specific" and version not in self.versions:
                raise ValueError(
                    f"{model}: label {label!r} points to version {version}, which the `specific` policy does not "
                    f"serve (versions {list(self.versions)}); add it to versions or move the label"
                )


def write_model_server_config(path: Path | str, models: Sequence[ModelEntry]) -> Path:
    """Write `models` as a TF Serving `models.config` text proto at `path`.

    The file is replaced atomically: a server polling it
    (`--model_config_file_poll_wait_seconds`) never reads half of it.

    Args:
        path: the file to write.
        models: the models to serve, at least one.

    Returns:
        `path`.

    Raises:
        ValueError: no models, a name listed twice, or base paths mixing
            absolute and relative ones.
    """
    from google.protobuf import text_format

    path = Path(path)
    _check_together(models, str(path))
    text = text_format.MessageToString(_to_proto(models))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    os.replace(temporary, path)
    return path


def read_model_server_config(path: Path | str) -> list[ModelEntry]:
    """Parse a TF Serving `models.config` text proto back into entries.

    Args:
        path: the file to read.

    Returns:
        One `ModelEntry` per model, in file order.

    Raises:
        ValueError: the file is missing or not a `ModelServerConfig` text
            proto (the message gives line and column), holds a custom model
            config or fields `ModelEntry` does not model (`logging_config`,
            the deprecated `model_type`), or an entry is invalid.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no models.config at {path}")
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a TF Serving ModelServerConfig text proto: {error}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: holds no model_config_list (custom_model_config is not supported)")
    try:
        models = [_from_proto(proto) for proto in config.model_config_list.config]
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    _check_together(models, str(path))
    return models


def _to_proto(models: Sequence[ModelEntry]):
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for model in models:
        proto = config.model_config_list.config.add(
            name=model.name, base_path=model.base_path, model_platform=model.model_platform
        )
        policy = proto.model_version_policy
        if model.version_policy == "latest":
            policy.latest.num_versions = model.num_versions
        elif model.version_policy == "all":
            policy.all.SetInParent()
        else:
            policy.specific.versions.extend(model.versions)
        proto.version_labels.update(model.version_labels)
    return config


def _from_proto(proto) -> ModelEntry:
    extra = sorted({f.name for f, _ in proto.ListFields()} - _MODELED_FIELDS)
    if extra:
        raise ValueError(f"model {proto.name!r}: fields {extra} are not handled by tfdl; remove them or edit by hand")
    policy = proto.model_version_policy
    # TF Serving serves the latest version when no policy is set, and treats num_versions 0 as 1.
    choice = policy.WhichOneof("policy_choice") or "latest"
    return ModelEntry(
        name=proto.name,
        base_path=proto.base_path,
        version_policy=choice,
        num_versions=max(policy.latest.num_versions, 1) if choice == "latest" else 1,
        versions=list(policy.specific.versions),
        version_labels=dict(proto.version_labels),
        model_platform=proto.model_platform,
    )


def _check_together(models: Sequence[ModelEntry], where: str) -> None:
    """The cross-model rules of TF Serving's ValidateModelConfigList."""
    if not models:
        raise ValueError(f"{where}: a models.config needs at least one model")
    names = [m.name for m in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{where}: models {twice} are listed more than once; each name once")
    absolute = {bool(_ABSOLUTE.match(m.base_path)) for m in models}
    if len(absolute) > 1:
        raise ValueError(
            f"{where}: base paths mix absolute and relative ones ({[m.base_path for m in models]}); TF Serving "
            "takes all absolute, or all relative with --model_config_list_root_dir"
        )
