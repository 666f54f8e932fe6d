"""tfdl.evaluation: metrics (classification, segmentation, COCO-style detection), COCO JSON files, plots and the run report."""

from tfdl.evaluation.classification import ClassificationMetrics, classification_metrics
from tfdl.evaluation.coco_json import pycocotools_maps, write_coco_detections, write_coco_ground_truth
from tfdl.evaluation.detection_map import DetectionMetrics, detection_map
from tfdl.evaluation.plots import plot_confusion_matrix, plot_detections, plot_learning_curves, plot_mask_overlays
from tfdl.evaluation.report import RunSummary, render_report, write_report
from tfdl.evaluation.segmentation import SegmentationMetrics, segmentation_metrics

__all__ = [
    "ClassificationMetrics",
    "DetectionMetrics",
    "RunSummary",
    "SegmentationMetrics",
    "classification_metrics",
    "detection_map",
    "plot_confusion_matrix",
    "plot_detections",
    "plot_learning_curves",
    "plot_mask_overlays",
    "pycocotools_maps",
    "render_report",
    "segmentation_metrics",
    "write_coco_detections",
    "write_coco_ground_truth",
    "write_report",
]
