"""The model registry: every model is built by name from a typed config.

A model family registers `build_NAME(config) -> keras.Model` with its config
class and its task; the task tells the trainer which loss and metrics fit and
the run which evaluation to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import ValidationError

from tfdl.schema import ConfigError, StrictModel, describe_validation_error

# What a model is trained to do; it picks the loss, the metrics and the
# evaluation. `tfdl run` drives the tasks in `tfdl.tasks.TASKS`; the others
# are trained through their models' own APIs.
Task = Literal[
    "classification", "segmentation", "detection", "seq2seq", "vae", "language_model", "masked_language_model",
    "gan", "regression", "autoencoder", "embedding",
]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[[Any], Any]
    config_class: type[StrictModel]
    task: Task


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config_class: type[StrictModel], task: Task):
    """Decorator: register `builder(config) -> keras.Model` under `name`."""

    def decorate(builder):
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, builder, config_class, task)
        return builder

    return decorate


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ConfigError(
            f"model.name: unknown model {name!r}; registered models: "
            f"{', '.join(available_models())}"
        )
    return _REGISTRY[name]


# Model parameters a run fills from its data when the config leaves them out.
FILLED_FROM_DATA = ("input_shape", "num_classes", "input_name", "vocabulary_size", "max_length")


def model_config(name: str, params: dict[str, Any]) -> StrictModel:
    """Validate `params` against the config class of model `name`."""
    entry = model_entry(name)
    try:
        return entry.config_class(**params)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, prefix="model.params")) from None


def check_model_params(name: str, params: dict[str, Any]) -> None:
    """Validate `params` before the data is loaded: only fields the data fills may be missing."""
    entry = model_entry(name)
    try:
        entry.config_class(**params)
    except ValidationError as error:
        problems = describe_validation_error(error, prefix="model.params", ignore_missing=FILLED_FROM_DATA)
        if problems:
            raise ConfigError(problems) from None


def build_model(name: str, params: dict[str, Any] | StrictModel):
    """Build the registered model `name` from its parameters."""
    entry = model_entry(name)
    config = params if isinstance(params, entry.config_class) else model_config(name, dict(params))
    return entry.builder(config)
