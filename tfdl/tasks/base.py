"""What a model task contributes to `tfdl run`: its loss, its evaluation, its export.

`tfdl.run` drives every task through the same stages (data, training,
evaluation, export, report); a task says what differs. A new family of models
(GANs, autoencoders, embeddings...) plugs into `tfdl run` by subclassing
`RunTask` in its own module and naming it in `tfdl.tasks.TASKS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class TaskEvaluation:
    """A task's figures on the test split, and how the report shows them.

    Attributes:
        figures: JSON-ready numbers; `metrics.json` holds them under "test"
            (with the test loss beside them).
        headline: the one line the console ends with, e.g. "test accuracy 0.9861".
        section: Markdown lines of the report's "Test set" section (tables,
            notes), without its heading.
        plots: report title -> PNG path, shown after the test section.
        extra_files: other files the evaluation wrote (COCO JSON, samples...).
    """

    figures: dict[str, Any]
    headline: str
    section: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    extra_files: dict[str, Path] = field(default_factory=dict)


class RunTask:
    """How `tfdl run` trains, evaluates and exports the models of one task.

    The defaults fit a model trained on `(inputs, labels)` whose exported
    form is `inference_model(preprocessing + model)`; a task overrides what
    differs.
    """

    name: str = ""

    def build_data(self, config, seed: int, global_batch_size: int):
        """The data stage: a `tfdl.pipelines.Pipeline` (or an object with its attributes)."""
        from tfdl.pipelines import build_pipeline

        return build_pipeline(config.data, seed, global_batch_size=global_batch_size)

    def objective(self, pipeline) -> tuple[Any, list]:
        """The loss and metrics the trainer compiles; loss None for a model whose `train_step` has its own."""
        raise NotImplementedError

    def epoch_end(self, pipeline, run_dir: Path) -> Callable[[int, Any], None] | None:
        """A hook the trainer calls after each epoch on the chief, as `hook(epoch, model)`; None for none."""
        return None

    def evaluate(self, model, pipeline, run_dir: Path) -> TaskEvaluation:
        """The test-split evaluation: figures, the report's section and plots."""
        raise NotImplementedError

    def export(self, model, pipeline, config, export_dir: Path, log: Callable[[str], None]):
        """Export the trained model; returns a `tfdl.export.export_stage.ExportResult`."""
        from tfdl.export.export_stage import export_stage

        return export_stage(model, pipeline, config, export_dir, log=log, classifier=False)
