"""tfdl.models: the model zoo, each family built by name from the registry."""

from tfdl.models import cnn  # noqa: F401  (registers "cnn")
from tfdl.models.cnn import CNNConfig, build_cnn
from tfdl.models.registry import (
    ModelEntry,
    available_models,
    build_model,
    model_config,
    model_entry,
    register_model,
)

__all__ = [
    "CNNConfig",
    "ModelEntry",
    "available_models",
    "build_cnn",
    "build_model",
    "model_config",
    "model_entry",
    "register_model",
]
