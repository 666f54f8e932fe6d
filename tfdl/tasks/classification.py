"""The classification task of `tfdl run`: one class per example, scored by accuracy and per-class F1."""

from __future__ import annotations

from pathlib import Path

from tfdl.tasks.base import RunTask, TaskEvaluation
from tfdl.evaluation.tables import markdown_table


def classification_section(m) -> list[str]:
    """The report's test-set tables of `ClassificationMetrics`."""
    lines = markdown_table(
        ["accuracy", "macro precision", "macro recall", "macro F1", "examples"],
        [[f"{m.accuracy:.4f}", f"{m.precision.mean():.4f}", f"{m.recall.mean():.4f}",
          f"{m.macro_f1:.4f}", int(m.support.sum())]],
    )
    lines += [""] + markdown_table(
        ["class", "precision", "recall", "F1", "support"],
        [[name, f"{m.precision[i]:.3f}", f"{m.recall[i]:.3f}", f"{m.f1[i]:.3f}", int(m.support[i])]
         for i, name in enumerate(m.class_names)],
    )
    return lines


class ClassificationTask(RunTask):
    name = "classification"

    def objective(self, pipeline):
        return "sparse_categorical_crossentropy", ["accuracy"]

    def evaluate(self, model, pipeline, run_dir: Path) -> TaskEvaluation:
        from tfdl.evaluation import classification_metrics, plot_confusion_matrix

        probabilities = model.predict(pipeline.test, verbose=0)
        m = classification_metrics(pipeline.test_labels, probabilities.argmax(axis=-1), pipeline.class_names)
        confusion = plot_confusion_matrix(m.confusion, pipeline.class_names, run_dir / "plots" / "confusion_matrix.png")
        return TaskEvaluation(
            figures=m.to_dict(),
            headline=f"test accuracy {m.accuracy:.4f}, macro F1 {m.macro_f1:.4f}",
            section=classification_section(m),
            plots={"Confusion matrix (test)": confusion},
        )

    def export(self, model, pipeline, config, export_dir: Path, log):
        from tfdl.export.export_stage import export_stage

        return export_stage(model, pipeline, config, export_dir, log=log, classifier=True)
