"""tfdl.evaluation: metrics, plots and the run report."""

from tfdl.evaluation.classification import ClassificationMetrics, classification_metrics
from tfdl.evaluation.plots import plot_confusion_matrix, plot_learning_curves
from tfdl.evaluation.report import RunSummary, render_report, write_report

__all__ = [
    "ClassificationMetrics",
    "RunSummary",
    "classification_metrics",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "render_report",
    "write_report",
]
