"""tfdl.evaluation: metrics (classification, segmentation, COCO-style detection, regression, anomaly
detection, word vectors), COCO JSON files, plots and the run report."""

from tfdl.evaluation.anomaly import AnomalyMetrics, anomaly_metrics, choose_threshold, plot_error_histogram
from tfdl.evaluation.classification import ClassificationMetrics, classification_metrics
from tfdl.evaluation.coco_json import pycocotools_maps, write_coco_detections, write_coco_ground_truth
from tfdl.evaluation.detection_map import DetectionMetrics, detection_map
from tfdl.evaluation.plots import plot_confusion_matrix, plot_detections, plot_learning_curves, plot_mask_overlays
from tfdl.evaluation.regression import RegressionMetrics, plot_forecast, regression_metrics
from tfdl.evaluation.report import RunSummary, render_report, write_report
from tfdl.evaluation.segmentation import SegmentationMetrics, segmentation_metrics

__all__ = [
    "AnomalyMetrics",
    "ClassificationMetrics",
    "DetectionMetrics",
    "RegressionMetrics",
    "RunSummary",
    "SegmentationMetrics",
    "anomaly_metrics",
    "choose_threshold",
    "classification_metrics",
    "detection_map",
    "plot_confusion_matrix",
    "plot_detections",
    "plot_error_histogram",
    "plot_forecast",
    "plot_learning_curves",
    "plot_mask_overlays",
    "pycocotools_maps",
    "regression_metrics",
    "render_report",
    "segmentation_metrics",
    "write_coco_detections",
    "write_coco_ground_truth",
    "write_report",
]
