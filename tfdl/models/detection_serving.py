"""The served one-stage detector: raw anchor outputs decoded and non-max suppressed inside the model.

`detection_inference_model` wraps a trained detector into a Keras functional
model `image -> {boxes, scores, classes, num_detections}` whose last layer,
`DetectionPostprocessing`, applies the class sigmoid and
`tfdl.detection.postprocess_detections` (decoding against the anchors and
`tf.image.combined_non_max_suppression`). So tfdl's ordinary export path
(`tfdl.export.export_saved_model`) writes a SavedModel whose `serving_default`
returns final detections, and TF Serving serves it unchanged.
`predict_detections` computes the same in-process and hands back each image's
valid detections, the input `tfdl.evaluation.detection_map` reads.

TFLite has no builtin for combined NMS: a model with `nms="combined"`
converts only with Select TF ops, which the LiteRT interpreter cannot run.
`nms="per_class"` computes the same detections from one
`tf.image.non_max_suppression_padded` per class and a top-k over the
survivors, all TFLite builtins, so the detector with its NMS converts and
runs on an edge device.
"""

from __future__ import annotations

from typing import Literal, Sequence, get_args

import keras
import numpy as np
import tensorflow as tf

from tfdl.detection import DEFAULT_SCALE_FACTORS, decode_boxes, postprocess_detections

NMS = Literal["combined", "per_class"]


@keras.saving.register_keras_serializable(package="tfdl")
class DetectionPostprocessing(keras.layers.Layer):
    """Sigmoid class scores, boxes decoded from anchor offsets, per-class NMS: a detector's final detections.

    Computes `postprocess_detections(box_deltas, sigmoid(class_logits),
    anchors, ...)` (see `tfdl.detection.postprocess_detections` for the
    rules). TensorFlow ops (NMS has no `keras.ops` counterpart), so the
    layer runs on the TensorFlow backend only.

    Args:
        anchors: `(A, 4)` `[ymin, xmin, ymax, xmax]` anchors the offsets are
            relative to (a nested list or array; kept in the config).
        max_detections: detections returned per image. Defaults to 100.
        score_threshold: minimum score of a detection. Defaults to 0.05.
        iou_threshold: IoU above which a lower-scoring box of the same class
            is suppressed. Defaults to 0.5.
        max_detections_per_class: cap per class before the classes merge;
            None: `max_detections`. Defaults to None.
        scale_factors: the box coding scale factors. Defaults to
            `(10, 10, 5, 5)`.
        nms: `combined` (`tf.image.combined_non_max_suppression`, one op) or
            `per_class` (one padded NMS per class, then top-k: the same
            detections from TFLite builtins). Defaults to `combined`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        box_deltas: float `(B, A, 4)` offsets.
        class_logits: float `(B, A, C)` logits, one sigmoid per class.

    Returns:
        A dict of `boxes` `(B, N, 4)`, `scores` `(B, N)`, `classes` `(B, N)`
        int32 and `num_detections` `(B,)` int32, where `N = max_detections`,
        zero-padded.

    Example:

    >>> layer = DetectionPostprocessing([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], max_detections=3)
    >>> out = layer(np.zeros((1, 2, 4), "float32"), np.array([[[4.0, -9.0], [-9.0, -9.0]]], "float32"))
    >>> out["num_detections"].numpy().tolist(), out["boxes"].numpy()[0, 0].tolist()
    ([1], [0.0, 0.0, 0.5, 0.5])
    """

    def __init__(
        self,
        anchors,
        max_detections: int = 100,
        score_threshold: float = 0.05,
        iou_threshold: float = 0.5,
        max_detections_per_class: int | None = None,
        scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
        nms: NMS = "combined",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if nms not in get_args(NMS):
            raise ValueError(
                f"DetectionPostprocessing: nms={nms!r}; use 'combined' (one op, served by TensorFlow) or "
                "'per_class' (TFLite builtins)."
            )
        anchors = np.asarray(anchors, dtype=np.float32)
        if anchors.ndim != 2 or anchors.shape[1] != 4 or anchors.shape[0] == 0:
            raise ValueError(
                f"DetectionPostprocessing: anchors must be (A, 4) [ymin, xmin, ymax, xmax] with A > 0; got shape "
                f"{anchors.shape}. Pass detector_anchors(config)."
            )
        self.anchors = anchors
        self.max_detections = max_detections
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections_per_class = max_detections_per_class
        self.scale_factors = tuple(float(f) for f in scale_factors)
        self.nms = nms
        # A dry run checks every setting now, rather than at the first call deep inside a graph.
        self._combined(tf.zeros((1, len(anchors), 4)), tf.zeros((1, len(anchors), 1)))

    def call(self, box_deltas, class_logits):
        scores = tf.sigmoid(tf.cast(class_logits, tf.float32))
        if self.nms == "combined":
            return self._combined(box_deltas, scores)
        return self._per_class(box_deltas, scores)

    def _combined(self, box_deltas, scores):
        return postprocess_detections(
            box_deltas,
            scores,
            tf.constant(self.anchors),
            self.max_detections,
            self.score_threshold,
            self.iou_threshold,
            max_detections_per_class=self.max_detections_per_class,
            scale_factors=self.scale_factors,
        )

    def _per_class(self, box_deltas, scores):
        """What `combined_non_max_suppression` (pad_per_class=False, clip_boxes=True) returns, from builtin ops."""
        boxes = decode_boxes(tf.cast(box_deltas, tf.float32), tf.constant(self.anchors), self.scale_factors)
        per_class = self.max_detections_per_class or self.max_detections
        kept_boxes, kept_scores, kept_classes = [], [], []
        for c in range(scores.shape[-1]):
            index, count = tf.image.non_max_suppression_padded(
                boxes, scores[..., c], per_class, self.iou_threshold, self.score_threshold,
                pad_to_max_output_size=True,
            )
            found = tf.range(per_class)[None, :] < count[:, None]
            kept_boxes.append(tf.gather(boxes, index, batch_dims=1))
            # Empty slots score -1, below any sigmoid, so the top-k ranks them last.
            kept_scores.append(tf.where(found, tf.gather(scores[..., c], index, batch_dims=1), -1.0))
            kept_classes.append(tf.fill(tf.shape(index), c))
        candidates = tf.concat(kept_scores, axis=1)
        top, order = tf.math.top_k(candidates, k=min(self.max_detections, candidates.shape[1]))
        valid = top >= 0.0
        padding = [[0, 0], [0, self.max_detections - top.shape[1]]]
        boxes = tf.clip_by_value(tf.gather(tf.concat(kept_boxes, axis=1), order, batch_dims=1), 0.0, 1.0)
        classes = tf.gather(tf.concat(kept_classes, axis=1), order, batch_dims=1)
        return {
            "boxes": tf.pad(tf.where(valid[..., None], boxes, 0.0), padding + [[0, 0]]),
            "scores": tf.pad(tf.where(valid, top, 0.0), padding),
            "classes": tf.pad(tf.where(valid, classes, 0), padding),
            "num_detections": tf.reduce_sum(tf.cast(valid, tf.int32), axis=1),
        }

    def compute_output_spec(self, box_deltas, class_logits):
        batch = box_deltas.shape[0]
        n = self.max_detections
        return {
            "boxes": keras.KerasTensor((batch, n, 4), "float32"),
            "scores": keras.KerasTensor((batch, n), "float32"),
            "classes": keras.KerasTensor((batch, n), "int32"),
            "num_detections": keras.KerasTensor((batch,), "int32"),
        }

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "anchors": self.anchors.tolist(),
                "max_detections": self.max_detections,
                "score_threshold": self.score_threshold,
                "iou_threshold": self.iou_threshold,
                "max_detections_per_class": self.max_detections_per_class,
                "scale_factors": list(self.scale_factors),
                "nms": self.nms,
            }
        )
        return config


def detection_inference_model(
    model,
    anchors,
    max_detections: int = 100,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    *,
    max_detections_per_class: int | None = None,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
    nms: NMS = "combined",
) -> keras.Model:
    """The detector with its post-processing inside: images in, final detections out.

    The result is a Keras functional model (the detector, then
    `DetectionPostprocessing`), so it saves to `.keras` (loads with
    `safe_mode=True`) and exports with `tfdl.export.export_saved_model`; its
    input keeps the detector's input name.

    Args:
        model: a detector returning `{"box_deltas": (B, A, 4), "class_logits":
            (B, A, C)}` from one image input (`build_one_stage_detector`).
        anchors: its `(A, 4)` anchors (`detector_anchors(config)`).
        max_detections: as `DetectionPostprocessing`, like `score_threshold`,
            `iou_threshold`, `max_detections_per_class`, `scale_factors` and
            `nms` (`nms="per_class"` for a model that converts to TFLite with
            its NMS).

    Returns:
        A `keras.Model` from `image` to a dict of `boxes`, `scores`, `classes`
        and `num_detections`.

    Raises:
        ValueError: if the model does not take one image input and return
            `box_deltas` and `class_logits`, its anchor count differs from
            `anchors`, or a setting is out of range.

    Example:

    >>> from tfdl.models import OneStageDetectorConfig, build_model, detector_anchors
    >>> config = OneStageDetectorConfig(input_shape=(32, 32, 3), num_classes=2, backbone_filters=(8, 8, 8, 8),
    ...                                 head_width=8)
    >>> served = detection_inference_model(build_model("one_stage_detector", config), detector_anchors(config))
    >>> sorted(served(np.zeros((1, 32, 32, 3), "float32")))
    ['boxes', 'classes', 'num_detections', 'scores']
    """
    _check_detector(model, anchors)
    spec = model.inputs[0]
    image = keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=spec.name)
    raw = model(image)
    detections = DetectionPostprocessing(
        anchors, max_detections, score_threshold, iou_threshold, max_detections_per_class, scale_factors, nms,
        name="detections",
    )(raw["box_deltas"], raw["class_logits"])
    return keras.Model(image, detections, name=f"{model.name}_inference")


def predict_detections(
    model,
    anchors,
    images,
    max_detections: int = 100,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    *,
    max_detections_per_class: int | None = None,
    scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS,
    batch_size: int = 64,
) -> list[dict[str, np.ndarray]]:
    """Each image's final detections, computed in-process as the served model computes them.

    Args:
        model: the raw detector (outputs `box_deltas`, `class_logits`).
        anchors: its `(A, 4)` anchors.
        images: float array `(N, H, W, C)` of the detector's input size.
        max_detections: as `DetectionPostprocessing`, like `score_threshold`,
            `iou_threshold`, `max_detections_per_class` and `scale_factors`.
        batch_size: images per forward pass.

    Returns:
        One dict per image with only its valid detections: `boxes` float32
        `(n, 4)` normalized `[ymin, xmin, ymax, xmax]`, `scores` float32
        `(n,)`, `classes` int32 `(n,)`, best score first; what
        `tfdl.evaluation.detection_map` takes as detections.

    Raises:
        ValueError: if `images` is not a rank-4 batch of the model's input
            size, the model is not a detector, or a setting is out of range.

    Example:

    >>> from tfdl.models import OneStageDetectorConfig, build_model, detector_anchors
    >>> config = OneStageDetectorConfig(input_shape=(32, 32, 3), num_classes=2, backbone_filters=(8, 8, 8, 8),
    ...                                 head_width=8)
    >>> found = predict_detections(build_model("one_stage_detector", config), detector_anchors(config),
    ...                            np.zeros((2, 32, 32, 3), "float32"), score_threshold=0.5)
    >>> len(found), sorted(found[0]), found[0]["boxes"].shape
    (2, ['boxes', 'classes', 'scores'], (0, 4))
    """
    _check_detector(model, anchors)
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(
            f"predict_detections: images must be a batch (N, {', '.join(map(str, expected))}); got shape "
            f"{images.shape}. Add a leading axis for a single image."
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"predict_detections: batch_size={batch_size!r}; use a positive int.")
    postprocess = DetectionPostprocessing(
        anchors, max_detections, score_threshold, iou_threshold, max_detections_per_class, scale_factors
    )
    found = []
    for start in range(0, len(images), batch_size):
        raw = model(images[start:start + batch_size], training=False)
        out = {k: v.numpy() for k, v in postprocess(raw["box_deltas"], raw["class_logits"]).items()}
        for i, count in enumerate(out["num_detections"]):
            found.append({key: out[key][i, :count] for key in ("boxes", "scores", "classes")})
    return found


def _check_detector(model, anchors) -> None:
    outputs = model.output if isinstance(getattr(model, "output", None), dict) else None
    if len(model.inputs) != 1 or outputs is None or not {"box_deltas", "class_logits"} <= set(outputs):
        raise ValueError(
            f"{model.name} is not a one-stage detector: it must take one image input and return a dict with "
            "'box_deltas' and 'class_logits' (build_model('one_stage_detector', ...))."
        )
    count = outputs["box_deltas"].shape[1]
    rows = np.shape(anchors)[0] if np.ndim(anchors) == 2 else None
    if rows != count:
        raise ValueError(
            f"{model.name} predicts for {count} anchors but anchors has shape {np.shape(anchors)}; pass "
            "detector_anchors(config) of the config the model was built from."
        )
