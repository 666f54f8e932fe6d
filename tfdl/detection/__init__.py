"""tfdl.detection: boxes, IoU, anchors, box coding, anchor matching and NMS for object detectors.

Boxes are normalized `[ymin, xmin, ymax, xmax]` throughout (the format of
`tf.image`). Everything that runs per example or in a model (conversions,
`iou`, `encode_boxes`/`decode_boxes`, `match_anchors`,
`postprocess_detections`, `roi_align`) is TensorFlow ops on fixed shapes: it traces in a
`tf.function`, runs in a `tf.data` map, and exports in a SavedModel.
`validate_boxes` and `kmeans_anchors` are eager, for data at the edge.
"""

from tfdl.detection.anchors import grid_anchors, grid_anchors_from_sizes, kmeans_anchors
from tfdl.detection.box_coding import DEFAULT_SCALE_FACTORS, decode_boxes, encode_boxes
from tfdl.detection.boxes import box_area, center_to_corners, corners_to_center, validate_boxes
from tfdl.detection.iou import iou
from tfdl.detection.matching import IGNORE, NEGATIVE, POSITIVE, match_anchors
from tfdl.detection.nms import postprocess_detections
from tfdl.detection.roi_align import multilevel_roi_align, roi_align, roi_levels

__all__ = [
    "DEFAULT_SCALE_FACTORS",
    "IGNORE",
    "NEGATIVE",
    "POSITIVE",
    "box_area",
    "center_to_corners",
    "corners_to_center",
    "decode_boxes",
    "encode_boxes",
    "grid_anchors",
    "grid_anchors_from_sizes",
    "iou",
    "multilevel_roi_align",
    "kmeans_anchors",
    "match_anchors",
    "postprocess_detections",
    "roi_align",
    "roi_levels",
    "validate_boxes",
]
