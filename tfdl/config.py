"""The run config: one YAML file holds every setting of a `tfdl run`.

    name: digits_cnn
    seed: 42
    data:     {source: sklearn, name: digits, ...}      # tfdl.pipelines.DataConfig
    model:    {name: cnn, params: {...}}                # a registered model
    training: {epochs: 30, optimizer: {...}, ...}       # tfdl.training.TrainingConfig
    export:   {model_name: digits, ...}                 # tfdl.export.ExportConfig

A reinforcement-learning run has an `rl:` section instead of data, model
and training (`tfdl.rl.RLConfig`: environment, agent, budget).

Every field has its default in the typed classes; a misspelt or out-of-range
field fails at load time with its dotted path, before any work starts.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import Field, ValidationError, model_validator

from tfdl.export.config import ExportConfig
from tfdl.pipelines.config import DataConfig
from tfdl.rl.config import RLConfig
from tfdl.schema import ConfigError, StrictModel, describe_validation_error
from tfdl.training.config import TrainingConfig

DEFAULT_CONFIG = "digits_cnn"


class ModelSection(StrictModel):
    """Which registered model to build, and its parameters (checked against its config class)."""

    name: str = "cnn"
    params: dict[str, Any] = Field(default_factory=dict)


class RunConfig(StrictModel):
    """Everything `tfdl run` needs. See the module docstring for the layout."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = 0
    data: DataConfig = DataConfig()
    model: ModelSection = ModelSection()
    training: TrainingConfig = TrainingConfig()
    export: ExportConfig = ExportConfig()
    rl: RLConfig | None = None

    @model_validator(mode="after")
    def _model_params_are_valid(self) -> "RunConfig":
        from tfdl.models.registry import check_model_params

        if self.rl is not None:
            given = sorted({"data", "model", "training"} & self.model_fields_set)
            if given:
                raise ValueError(
                    f"a run with an rl: section trains an agent in its environment; "
                    f"{', '.join(given)} do not apply: remove them (the agent's settings go under rl.agent)"
                )
            return self
        check_model_params(self.model.name, self.model.params)
        return self


def shipped_configs() -> list[str]:
    """Names of the configs that ship with tfdl (`tfdl run NAME` runs one)."""
    root = resources.files("tfdl.configs")
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str | Path | None) -> Path:
    """A file path as given, else a shipped config by name (with or without `.yaml`)."""
    if name_or_path is None:
        name_or_path = DEFAULT_CONFIG
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    shipped = resources.files("tfdl.configs") / f"{stem}.yaml"
    if path.parent in (Path("."), Path("configs")) and shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(
        f"config {str(name_or_path)!r} not found: it is neither a file nor a "
        f"shipped config ({', '.join(shipped_configs())})"
    )


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {key!r} holds a value, not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(tree: dict, overrides: Sequence[str]) -> dict:
    """Apply `section.field=value` overrides; values are parsed as YAML (`2`, `true`, `[32, 64]`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.field=value, e.g. training.epochs=5")
        dotted, raw = item.split("=", 1)
        _set_dotted(tree, dotted.strip(), yaml.safe_load(raw))
    return tree


def parse_config(tree: dict, source: str = "<config>") -> RunConfig:
    """Validate a config tree; errors name each bad field and the file."""
    try:
        return RunConfig(**tree)
    except ValidationError as error:
        raise ConfigError(f"invalid config {source}:\n{describe_validation_error(error)}") from None
    except ConfigError as error:
        raise ConfigError(f"invalid config {source}:\n{error}") from None


def load_config(name_or_path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Load, override and validate a run config (default: the shipped `digits_cnn`)."""
    path = resolve_config_path(name_or_path)
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (name, data, model, ...), got {type(tree).__name__}")
    return parse_config(apply_overrides(tree, overrides), source=str(path))
