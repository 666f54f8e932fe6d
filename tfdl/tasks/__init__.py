"""tfdl.tasks: what each model task contributes to `tfdl run` (loss, evaluation, export).

`run_task(name)` gives the task of a registered model (`model_entry(name).task`);
each lives in its own module, imported only when a run needs it.
"""

from __future__ import annotations

from importlib import import_module

from tfdl.schema import ConfigError
from tfdl.tasks.base import RunTask, TaskEvaluation

# Model task -> "module:class" of its RunTask.
TASKS = {
    "classification": "tfdl.tasks.classification:ClassificationTask",
    "segmentation": "tfdl.tasks.segmentation:SegmentationTask",
    "detection": "tfdl.tasks.detection:DetectionTask",
    "gan": "tfdl.tasks.gan:GANTask",
    "regression": "tfdl.tasks.regression:RegressionTask",
    "autoencoder": "tfdl.tasks.autoencoder:AutoencoderTask",
    "embedding": "tfdl.tasks.embedding:EmbeddingTask",
    "language_model": "tfdl.tasks.language_model:LanguageModelTask",
}


def run_task(name: str) -> RunTask:
    """The `RunTask` of model task `name`.

    Raises:
        ConfigError: `tfdl run` does not drive this task.
    """
    if name not in TASKS:
        raise ConfigError(
            f"`tfdl run` trains {', '.join(sorted(TASKS))} models; a {name} model is trained through tfdl.models"
        )
    module, cls = TASKS[name].split(":")
    return getattr(import_module(module), cls)()


__all__ = ["RunTask", "TaskEvaluation", "TASKS", "run_task"]
