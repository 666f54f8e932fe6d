"""Two-stage detector (`two_stage_detector`): Faster R-CNN, and Mask R-CNN with `masks: true`.

Stage one is the one-stage detector with a single class, objectness: the same
backbone, feature pyramid and shared head (`build_one_stage_detector`), here
the region proposal network (RPN). Its box offsets are decoded against the
anchors, the best `pre_nms_proposals` per image kept and non-max suppressed
into proposals. Stage two RoI-aligns each proposal on the pyramid level its
size picks (`tfdl.detection.multilevel_roi_align`) and a head of two dense
layers predicts softmax class scores (column 0 the background) and box
offsets from the proposal (class-agnostic, one box per region). With
`masks`, a small FCN per region (3x3 convs, a 2x transposed conv, a 1x1
conv) predicts a mask per class, `mask_size x mask_size`, over the region.

`model(images)` is inference: the final detections after per-class NMS,

    {"boxes": (B, D, 4), "scores": (B, D), "classes": (B, D) int32,
     "num_detections": (B,) int32[, "roi_masks": (B, D, M, M)]}

`D = max_detections`, zero-padded, and with masks each detection's mask
probabilities over its own box (the mask head runs on the final boxes, as
in Mask R-CNN). `tfdl.models.two_stage_serving` pastes them into the image
frame and wraps the whole for export.

Training cannot use fixed targets: stage two learns on the proposals of the
moment. `train_step` takes `(images, {"boxes", "classes"[, "masks"]})`
padded per image and computes in the graph the RPN targets, the sampled
regions and their class, box and mask targets
(`tfdl.models.two_stage_targets`). The RPN trains with the one-stage
detector's losses (focal objectness over all anchors, Huber offsets on
positives); stage two with softmax cross-entropy over the sampled regions,
Huber offsets on the positive ones and per-pixel sigmoid cross-entropy of
the true class's mask. It reports `loss`, `rpn_loss`, `class_loss`,
`box_loss` and `mask_loss` (0 without masks). TensorFlow ops (NMS,
`crop_and_resize`), so the model runs on the TensorFlow backend only.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from pydantic import Field, model_validator

from tfdl.detection import decode_boxes
from tfdl.layers.seed_state import SeedState
from tfdl.models.one_stage_detector import OneStageDetectorConfig, build_one_stage_detector, detector_anchors
from tfdl.models.registry import register_model


class TwoStageDetectorConfig(OneStageDetectorConfig):
    """Configuration of `build_two_stage_detector`: the one-stage detector's backbone, pyramid and anchors, then stage two.

    The inherited fields (`input_shape`, `num_classes`, `backbone`,
    `backbone_filters`, `feature_strides`, `head_width`, the anchors...)
    build the backbone and the RPN as in `OneStageDetectorConfig`;
    `num_classes` counts object classes (no background). Defaults differ in
    `feature_strides` (4, 8, 16) and `anchor_scales`, one per level: the
    fine stride-4 level gives RoI align and the mask head detail.

    Attributes:
        rpn_positive_iou, rpn_negative_iou: anchor matching thresholds of the RPN.
        pre_nms_proposals: best-scoring anchors per image that enter the proposal NMS.
        train_proposals, test_proposals: proposals per image after NMS in
            training and at inference.
        proposal_iou: IoU threshold of the proposal NMS.
        rois_per_image: regions per image stage two trains on.
        positive_fraction: the largest share of positive regions.
        roi_positive_iou: IoU with a ground-truth box from which a region is positive.
        roi_size: RoI align output side for the box head.
        sampling_ratio: bilinear samples per bin and axis in RoI align.
        roi_canonical_size: box side in pixels read at the finest pyramid
            level; each doubling of the side reads the next coarser level.
        fc_units: width of the box head's two dense layers.
        masks: add the mask head (Mask R-CNN); training then needs "masks".
        mask_size: side of the predicted masks (even: the head upsamples
            RoI features of half this side 2x).
        mask_convs: 3x3 conv layers of the mask head.
        mask_width: channels of the mask head.
        max_detections: detections returned per image.
        score_threshold: minimum class score of a detection.
        iou_threshold: IoU of the final per-class NMS.
        mask_loss_weight: weight of the mask loss in `loss`.
        seed: seeds the sampling of training regions.
    """

    feature_strides: tuple[int, ...] = Field((4, 8, 16), min_length=1)
    anchor_scales: tuple[tuple[float, ...], ...] = ((0.15,), (0.3,), (0.5,))
    rpn_positive_iou: float = Field(0.7, gt=0.0, le=1.0)
    rpn_negative_iou: float = Field(0.3, ge=0.0, le=1.0)
    pre_nms_proposals: int = Field(256, ge=1)
    train_proposals: int = Field(128, ge=1)
    test_proposals: int = Field(50, ge=1)
    proposal_iou: float = Field(0.7, gt=0.0, le=1.0)
    rois_per_image: int = Field(64, ge=1)
    positive_fraction: float = Field(0.25, gt=0.0, le=1.0)
    roi_positive_iou: float = Field(0.5, gt=0.0, le=1.0)
    roi_size: int = Field(7, ge=1)
    sampling_ratio: int = Field(2, ge=1)
    roi_canonical_size: float = Field(16.0, gt=0.0)
    fc_units: int = Field(256, ge=1)
    masks: bool = False
    mask_size: int = Field(14, ge=2)
    mask_convs: int = Field(2, ge=0)
    mask_width: int = Field(64, ge=1)
    max_detections: int = Field(100, ge=1)
    score_threshold: float = Field(0.05, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.5, gt=0.0, le=1.0)
    mask_loss_weight: float = Field(1.0, ge=0.0)
    seed: int = 0

    @model_validator(mode="after")
    def _stage_two_fits(self) -> "TwoStageDetectorConfig":
        if self.rpn_negative_iou > self.rpn_positive_iou:
            raise ValueError(
                f"rpn_negative_iou {self.rpn_negative_iou} is above rpn_positive_iou {self.rpn_positive_iou}"
            )
        if self.rois_per_image > self.train_proposals:
            raise ValueError(
                f"rois_per_image {self.rois_per_image} exceeds train_proposals {self.train_proposals}: stage two "
                "samples its regions from the proposals; raise train_proposals or lower rois_per_image"
            )
        if self.mask_size % 2:
            raise ValueError(f"mask_size {self.mask_size} must be even (RoI features of half the side, upsampled 2x)")
        return self

    def rpn_config(self) -> OneStageDetectorConfig:
        """The one-class `OneStageDetectorConfig` of the region proposal network."""
        fields = {name: getattr(self, name) for name in OneStageDetectorConfig.model_fields}
        return OneStageDetectorConfig(**{**fields, "num_classes": 1})


@keras.saving.register_keras_serializable(package="tfdl")
class TwoStageDetector(SeedState, keras.Model):
    """Backbone and RPN, proposals, RoI align, box (and mask) head: see the module docstring.

    Args:
        config: a `TwoStageDetectorConfig` as a dict (its `model_dump`).
        **kwargs: other `keras.Model` arguments (`name`).

    Example:

    >>> config = TwoStageDetectorConfig(input_shape=(32, 32, 3), num_classes=2, backbone_filters=(8, 8, 8, 8),
    ...                                 head_width=8, fc_units=16, max_detections=5, masks=True, mask_size=4)
    >>> out = TwoStageDetector(config.model_dump(mode="json"))(tf.zeros((1, 32, 32, 3)))
    >>> {k: tuple(v.shape) for k, v in sorted(out.items())}
    {'boxes': (1, 5, 4), 'classes': (1, 5), 'num_detections': (1,), 'roi_masks': (1, 5, 4, 4), 'scores': (1, 5)}
    """

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.config = TwoStageDetectorConfig(**config)
        c = self.config
        if c.input_shape is None or c.num_classes is None:
            raise ValueError("TwoStageDetector needs input_shape and num_classes (the run fills them from the data)")
        self.anchors = detector_anchors(c)
        self.rpn = _rpn_with_levels(c)
        self.box_head = _box_head(c)
        self.mask_head = _mask_head(c) if c.masks else None
        self.sampling_seed = keras.random.SeedGenerator(c.seed, name="roi_sampling_seed")
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "rpn_loss", "class_loss", "box_loss", "mask_loss")
        }
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, images, training=False):
        c = self.config
        images = self._checked_images(images)
        levels, rpn_deltas, rpn_logits = self._rpn(images, training)
        proposals, valid = self.propose(rpn_deltas, rpn_logits, c.test_proposals)
        class_logits, box_deltas = self._box_head(levels, proposals, training)
        scores = tf.nn.softmax(tf.cast(class_logits, tf.float32), axis=-1)[..., 1:]
        scores = scores * tf.cast(valid, tf.float32)[..., None]
        boxes = tf.clip_by_value(decode_boxes(tf.cast(box_deltas, tf.float32), proposals), 0.0, 1.0)
        found_boxes, found_scores, found_classes, count = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores, c.max_detections, c.max_detections, c.iou_threshold, c.score_threshold,
            pad_per_class=False, clip_boxes=True,
        )
        detections = {
            "boxes": found_boxes,
            "scores": found_scores,
            "classes": tf.cast(found_classes, tf.int32),
            "num_detections": tf.cast(count, tf.int32),
        }
        if c.masks:
            logits = self._mask_logits(levels, found_boxes, training)  # (B, D, M, M, C)
            own = tf.gather(tf.transpose(logits, (0, 1, 4, 2, 3)), detections["classes"], batch_dims=2)
            filled = tf.range(c.max_detections)[None, :] < detections["num_detections"][:, None]
            detections["roi_masks"] = tf.sigmoid(own) * tf.cast(filled, tf.float32)[:, :, None, None]
        return detections

    def compute_output_spec(self, images, training=False):
        c = self.config
        batch, n = images.shape[0], c.max_detections
        spec = {
            "boxes": keras.KerasTensor((batch, n, 4), "float32"),
            "scores": keras.KerasTensor((batch, n), "float32"),
            "classes": keras.KerasTensor((batch, n), "int32"),
            "num_detections": keras.KerasTensor((batch,), "int32"),
        }
        if c.masks:
            spec["roi_masks"] = keras.KerasTensor((batch, n, c.mask_size, c.mask_size), "float32")
        return spec

    def propose(self, rpn_deltas, rpn_logits, count: int) -> tuple[tf.Tensor, tf.Tensor]:
        """Proposals from the RPN's outputs: decoded, best `pre_nms_proposals` kept, NMS, `count` per image.

        Args:
            rpn_deltas: float `(B, A, 4)` offsets from the anchors.
            rpn_logits: float `(B, A, 1)` objectness logits.
            count: proposals returned per image (zero-padded).

        Returns:
            `(boxes (B, count, 4), valid (B, count) bool)`, best first,
            clipped to the image, without gradient.
        """
        c = self.config
        scores = tf.sigmoid(tf.cast(rpn_logits[..., 0], tf.float32))
        boxes = tf.clip_by_value(decode_boxes(tf.cast(rpn_deltas, tf.float32), self.anchors), 0.0, 1.0)
        best, index = tf.math.top_k(scores, k=min(c.pre_nms_proposals, scores.shape[1]))
        boxes = tf.gather(boxes, index, batch_dims=1)
        kept, _, _, found = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], best[..., None], count, count, c.proposal_iou, 0.0, pad_per_class=False,
        )
        valid = tf.range(count)[None, :] < found[:, None]
        return tf.stop_gradient(kept), valid

    def train_step(self, data):
        from tfdl.losses.replica_mean import replica_mean

        images, targets = data
        with tf.GradientTape() as tape:
            losses = self._stage_losses(images, targets, training=True)
            objective = replica_mean(losses["loss"])
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(objective, variables), variables)
        return self._report(losses)

    def test_step(self, data):
        images, targets = data
        return self._report(self._stage_losses(images, targets, training=False))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # The losses are the figures; detections have no compiled metric to be matched against.
        return {m.name: m.result() for m in self.metrics}

    def _report(self, losses: dict) -> dict:
        for name, tracker in self.trackers.items():
            tracker.update_state(tf.reduce_mean(losses[name]))
        return {m.name: m.result() for m in self.metrics}

    def _stage_losses(self, images, targets, training: bool) -> dict[str, tf.Tensor]:
        """Every loss, one value per image."""
        from tfdl.losses import AnchorFocalLoss, AnchorHuberLoss
        from tfdl.models.two_stage_targets import mask_targets, rpn_targets, sample_rois

        c = self.config
        gt_boxes, gt_classes, gt_masks = self._checked_targets(targets)
        images = self._checked_images(images)
        levels, rpn_deltas, rpn_logits = self._rpn(images, training)
        rpn_classes, rpn_boxes = rpn_targets(self.anchors, gt_boxes, gt_classes, c.rpn_positive_iou,
                                             c.rpn_negative_iou)
        rpn_loss = (AnchorFocalLoss(reduction="none")(rpn_classes, rpn_logits)
                    + AnchorHuberLoss(reduction="none")(rpn_boxes, rpn_deltas))

        proposals, valid = self.propose(rpn_deltas, rpn_logits, c.train_proposals)
        rois = sample_rois(proposals, valid, gt_boxes, gt_classes, c.rois_per_image, c.positive_fraction,
                           c.roi_positive_iou, seed=self.sampling_seed)
        class_logits, box_deltas = self._box_head(levels, rois["rois"], training)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(rois["classes"],
                                                                       tf.cast(class_logits, tf.float32))
        class_loss = tf.reduce_sum(cross_entropy * rois["weights"], axis=1) / tf.maximum(
            tf.reduce_sum(rois["weights"], axis=1), 1.0)
        box_loss = AnchorHuberLoss(reduction="none")(rois["box_targets"], tf.cast(box_deltas, tf.float32))

        mask_loss = tf.zeros_like(class_loss)
        if c.masks:
            positive = rois["box_targets"][..., 4]
            logits = self._mask_logits(levels, rois["rois"], training)  # (B, R, M, M, C)
            own = tf.gather(tf.transpose(logits, (0, 1, 4, 2, 3)), tf.maximum(rois["classes"] - 1, 0), batch_dims=2)
            truth = mask_targets(gt_masks, rois["rois"], rois["matched"], c.mask_size)
            per_region = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(truth, tf.cast(own, tf.float32)), axis=(2, 3))
            mask_loss = tf.reduce_sum(per_region * positive, axis=1) / tf.maximum(tf.reduce_sum(positive, axis=1), 1.0)
        total = rpn_loss + class_loss + box_loss + c.mask_loss_weight * mask_loss
        return {"loss": total, "rpn_loss": rpn_loss, "class_loss": class_loss, "box_loss": box_loss,
                "mask_loss": mask_loss}

    def _rpn(self, images, training: bool):
        outputs = self.rpn(images, training=training)
        return outputs[:-2], outputs[-2], outputs[-1]

    def _box_head(self, levels, boxes, training: bool):
        features = self._roi_features(levels, boxes, self.config.roi_size)
        out = self.box_head(features, training=training)
        shape = tf.shape(boxes)[:2]
        return (tf.reshape(out["class_logits"], tf.concat([shape, [-1]], 0)),
                tf.reshape(out["box_deltas"], tf.concat([shape, [4]], 0)))

    def _mask_logits(self, levels, boxes, training: bool):
        features = self._roi_features(levels, boxes, self.config.mask_size // 2)
        logits = tf.cast(self.mask_head(features, training=training), tf.float32)
        m = self.config.mask_size
        return tf.reshape(logits, tf.concat([tf.shape(boxes)[:2], [m, m, self.config.num_classes]], 0))

    def _roi_features(self, levels, boxes, size: int):
        from tfdl.detection.roi_align import multilevel_roi_align

        c = self.config
        crops = multilevel_roi_align(
            levels, boxes, c.feature_strides, c.input_shape[:2], size, c.sampling_ratio,
            canonical_size=c.roi_canonical_size, canonical_stride=c.feature_strides[0],
        )
        return tf.reshape(crops, (-1, size, size, crops.shape[-1]))

    def _checked_images(self, images):
        images = tf.convert_to_tensor(images)
        expected = tuple(self.config.input_shape)
        if images.shape.rank != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.name}: images must be a batch (B, {', '.join(map(str, expected))}); got shape "
                f"{tuple(images.shape)}. Add a leading axis for one image, or resize to the model's input size."
            )
        return images

    def _checked_targets(self, targets) -> tuple[tf.Tensor, tf.Tensor, Any]:
        needed = {"boxes", "classes"} | ({"masks"} if self.config.masks else set())
        if not isinstance(targets, dict) or not needed <= set(targets):
            raise ValueError(
                f"{self.name}: training targets must be a dict with {sorted(needed)} padded per image "
                f"(shapes_dataset(task='instance') gives them); got "
                f"{sorted(targets) if isinstance(targets, dict) else type(targets).__name__}."
            )
        boxes = tf.convert_to_tensor(targets["boxes"], tf.float32)
        classes = tf.cast(targets["classes"], tf.int32)
        if boxes.shape.rank != 3 or boxes.shape[-1] != 4 or classes.shape.rank != 2:
            raise ValueError(
                f"{self.name}: targets 'boxes' must be (B, G, 4) and 'classes' (B, G); got shapes "
                f"{tuple(boxes.shape)} and {tuple(classes.shape)}."
            )
        masks = tf.convert_to_tensor(targets["masks"]) if self.config.masks else None
        if masks is not None and (masks.shape.rank != 4 or tuple(masks.shape[2:]) != tuple(self.config.input_shape[:2])):
            raise ValueError(
                f"{self.name}: targets 'masks' must be (B, G, {self.config.input_shape[0]}, "
                f"{self.config.input_shape[1]}), one image-sized mask per object; got shape {tuple(masks.shape)}."
            )
        inside = tf.reduce_all((boxes >= 0.0) & (boxes <= 1.0))
        check = tf.debugging.Assert(
            inside, ["two_stage_detector: target boxes hold coordinates outside [0, 1]; boxes are normalized "
                     "[ymin, xmin, ymax, xmax]: divide pixel coordinates by the image height and width."],
        )
        with tf.control_dependencies([check]):
            boxes = tf.identity(boxes)
        return boxes, classes, masks

    def get_config(self) -> dict:
        return {**super().get_config(), "config": self.config.model_dump(mode="json")}


def _rpn_with_levels(config: TwoStageDetectorConfig):
    """The one-class one-stage detector, also returning its pyramid levels: `[level, ..., deltas, logits]`."""
    detector = build_one_stage_detector(config.rpn_config())
    levels = [detector.get_layer(f"level_s{s}").output for s in config.feature_strides]
    outputs = [*levels, detector.output["box_deltas"], detector.output["class_logits"]]
    return keras.Model(detector.inputs, outputs, name="rpn")


def _box_head(config: TwoStageDetectorConfig):
    from keras import layers

    features = keras.Input((config.roi_size, config.roi_size, config.head_width), name="roi_features")
    x = layers.Flatten(name="box_head_flatten")(features)
    for i in range(2):
        x = layers.Dense(config.fc_units, activation="relu", name=f"box_head_fc{i + 1}")(x)
    outputs = {
        "class_logits": layers.Dense(config.num_classes + 1, dtype="float32", name="class_logits")(x),
        "box_deltas": layers.Dense(4, dtype="float32", kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                                   name="box_deltas")(x),
    }
    return keras.Model(features, outputs, name="box_head")


def _mask_head(config: TwoStageDetectorConfig):
    from keras import layers

    half = config.mask_size // 2
    features = keras.Input((half, half, config.head_width), name="mask_roi_features")
    x = features
    for i in range(config.mask_convs):
        x = layers.Conv2D(config.mask_width, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                          name=f"mask_conv{i + 1}")(x)
    x = layers.Conv2DTranspose(config.mask_width, 2, strides=2, activation="relu", kernel_initializer="he_normal",
                               name="mask_upsample")(x)
    logits = layers.Conv2D(config.num_classes, 1, dtype="float32", name="mask_logits")(x)
    return keras.Model(features, logits, name="mask_head")


@register_model("two_stage_detector", TwoStageDetectorConfig, task="detection")
def build_two_stage_detector(config: TwoStageDetectorConfig) -> TwoStageDetector:
    """Build the two-stage detector (Faster R-CNN; Mask R-CNN with `masks`); see the module docstring.

    Args:
        config: the detector's config, with `input_shape` and `num_classes`.

    Returns:
        A `TwoStageDetector`: `model(images)` gives final detections, `fit`
        trains on `(images, {"boxes", "classes"[, "masks"]})`.

    Raises:
        ValueError: if `input_shape` or `num_classes` is missing.
    """
    return TwoStageDetector(config.model_dump(mode="json"), name="two_stage_detector")
