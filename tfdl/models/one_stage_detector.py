"""One-stage detector (`one_stage_detector`): a RetinaNet/SSD-style network predicting a class and a box per anchor.

A small convolutional backbone (residual or plain stages, each halving the
resolution) feeds a feature pyramid over the levels of `feature_strides`
(e.g. 8 and 16: an 8x8 and a 4x4 map for 64x64 images). On every level one
shared head (Lin et al. 2017) predicts, for every cell and anchor shape,
class logits (one sigmoid per class, no background column) and box offsets
from the anchor. The outputs, flattened in the order `grid_anchors` lays the
anchors out, are

    {"box_deltas": (batch, A, 4), "class_logits": (batch, A, num_classes)}

float32, with `A = detector_anchors(config).shape[0]`. Anchors come from the
config, as scales and aspect ratios per level or as `(height, width)` shapes
per level (`kmeans_anchor_sizes` picks them from training boxes, YOLOv2
style). Training targets come from `tfdl.models.detection_targets`, the losses
from `tfdl.losses.detection_losses`, and the served form with NMS inside the
graph from `tfdl.models.detection_serving`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class OneStageDetectorConfig(StrictModel):
    """Configuration of `build_one_stage_detector`.

    Attributes:
        input_shape: (height, width, channels); taken from the data when left out.
        num_classes: object classes (no background class); from the data when left out.
        input_name: name of the model input, the key serving clients use.
        backbone: `residual` (each stage a stride-2 `ResidualBlock` and
            `blocks_per_stage - 1` more; the very first block is a 3x3
            conv-BN-ReLU stem) or `plain` (3x3 conv-BN-ReLU layers).
        backbone_filters: filters per backbone stage; stage i has stride
            2^(i + 1), so four stages reach stride 16.
        blocks_per_stage: blocks (or conv layers) per stage.
        feature_strides: strides of the stages the head predicts on, one
            pyramid level each; the largest must be the last stage's.
        pyramid: fuse each level with the coarser ones (FPN top-down path);
            False predicts on each stage's features alone (SSD).
        head_depth: 3x3 conv + ReLU layers in each of the class and box towers.
        head_width: channels of the pyramid levels and of the head.
        anchor_scales: per level, the anchor scales (side of a square of the
            same area, as a fraction of the image); every level the same count.
        aspect_ratios: anchor widths over heights, on every level.
        anchor_sizes: per level, anchor (height, width) pairs overriding
            `anchor_scales` and `aspect_ratios` (see `kmeans_anchor_sizes`).
        prior_probability: the class probability the head starts at, so the
            many background anchors do not swamp the first steps (RetinaNet).
        batch_norm_momentum: momentum of the backbone's moving statistics.
    """

    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = Field(None, ge=1)
    input_name: str = "image"
    backbone: Literal["residual", "plain"] = "residual"
    backbone_filters: tuple[int, ...] = Field((16, 32, 64, 96), min_length=1)
    blocks_per_stage: int = Field(1, ge=1)
    feature_strides: tuple[int, ...] = Field((8, 16), min_length=1)
    pyramid: bool = True
    head_depth: int = Field(2, ge=0)
    head_width: int = Field(64, ge=1)
    anchor_scales: tuple[tuple[float, ...], ...] = ((0.2, 0.3), (0.4, 0.55))
    aspect_ratios: tuple[float, ...] = Field((0.5, 1.0, 2.0), min_length=1)
    anchor_sizes: tuple[tuple[tuple[float, float], ...], ...] | None = None
    prior_probability: float = Field(0.01, gt=0.0, lt=1.0)
    batch_norm_momentum: float = Field(0.9, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _levels_fit(self) -> "OneStageDetectorConfig":
        stage_strides = [2 ** (i + 1) for i in range(len(self.backbone_filters))]
        strides = list(self.feature_strides)
        if strides != sorted(set(strides)) or not set(strides) <= set(stage_strides):
            raise ValueError(
                f"feature_strides {strides} must be increasing strides of backbone stages {stage_strides} "
                "(stage i of backbone_filters has stride 2^(i + 1))"
            )
        if strides[-1] != stage_strides[-1]:
            raise ValueError(
                f"feature_strides ends at {strides[-1]} but backbone_filters has {len(stage_strides)} stages, "
                f"reaching stride {stage_strides[-1]}; drop the unused stages or predict on the last one"
            )
        if self.input_shape is not None:
            height, width = self.input_shape[:2]
            if height % strides[-1] or width % strides[-1]:
                raise ValueError(
                    f"input_shape {list(self.input_shape)}: height and width must be divisible by the largest "
                    f"feature stride {strides[-1]}; resize the images or use fewer stages"
                )
        per_level = self.anchors_per_level()
        if len(per_level) != len(strides):
            source = "anchor_sizes" if self.anchor_sizes is not None else "anchor_scales"
            raise ValueError(
                f"{source} gives anchors for {len(per_level)} level(s) but feature_strides has {len(strides)}; "
                "give one entry per level"
            )
        if len(set(per_level)) != 1 or per_level[0] == 0:
            raise ValueError(
                f"anchors per level are {per_level}; the shared head needs the same non-zero number on every level"
            )
        values = [v for level in (self.anchor_sizes or self.anchor_scales) for v in np.ravel(level)]
        if not all(math.isfinite(v) and v > 0 for v in [*values, *self.aspect_ratios]):
            raise ValueError("anchor scales, sizes and aspect ratios must be positive numbers (fractions of the image)")
        return self

    def anchors_per_level(self) -> list[int]:
        """How many anchor shapes each level has (the head predicts that many per cell)."""
        if self.anchor_sizes is not None:
            return [len(level) for level in self.anchor_sizes]
        return [len(level) * len(self.aspect_ratios) for level in self.anchor_scales]

    def feature_sizes(self) -> list[tuple[int, int]]:
        """(height, width) of each level's feature map."""
        if self.input_shape is None:
            raise ValueError("the detector's feature sizes need input_shape (the run fills it from the data)")
        return [(self.input_shape[0] // s, self.input_shape[1] // s) for s in self.feature_strides]


def detector_anchors(config: OneStageDetectorConfig):
    """The anchors of a detector built from `config`, one row per output row of its heads.

    Args:
        config: the detector's config (with `input_shape` set).

    Returns:
        A float32 tensor `(A, 4)` of `[ymin, xmin, ymax, xmax]` anchors, in the
        order of `grid_anchors`: level by level, cells row-major, shapes.

    Raises:
        ValueError: if `input_shape` is not set.

    Example:

    >>> config = OneStageDetectorConfig(input_shape=(64, 64, 3), num_classes=3)
    >>> tuple(detector_anchors(config).shape)  # 8x8 and 4x4 cells, 6 shapes each
    (480, 4)
    """
    from tfdl.detection import grid_anchors, grid_anchors_from_sizes

    sizes = config.feature_sizes()
    if config.anchor_sizes is not None:
        return grid_anchors_from_sizes(sizes, [np.asarray(level) for level in config.anchor_sizes])
    return grid_anchors(sizes, [list(level) for level in config.anchor_scales], config.aspect_ratios)


def kmeans_anchor_sizes(boxes, num_levels: int, per_level: int, seed: int = 0) -> tuple:
    """Anchor shapes for `OneStageDetectorConfig.anchor_sizes` from k-means over training boxes (YOLOv2).

    Clusters the boxes' (height, width) into `num_levels * per_level` shapes
    (`tfdl.detection.kmeans_anchors`, distance 1 - IoU) and hands them out by
    area, the smallest to the finest level, as YOLOv3 does.

    Args:
        boxes: array `(..., 4)` of normalized `[ymin, xmin, ymax, xmax]`
            boxes; zero-size rows (padding) are dropped.
        num_levels: pyramid levels, `len(feature_strides)`.
        per_level: anchor shapes per level.
        seed: seeds the k-means++ start.

    Returns:
        A tuple per level of `(height, width)` pairs, finest level first.

    Raises:
        ValueError: if there are fewer distinct box shapes than anchors asked
            for, or a count is not positive.

    Example:

    >>> boxes = [[0, 0, 0.1, 0.1], [0, 0, 0.12, 0.1], [0, 0, 0.5, 0.4], [0, 0, 0.5, 0.5]]
    >>> kmeans_anchor_sizes(boxes, num_levels=2, per_level=1)
    (((0.11, 0.1),), ((0.5, 0.45),))
    """
    from tfdl.detection import kmeans_anchors

    if num_levels < 1 or per_level < 1:
        raise ValueError(f"num_levels={num_levels}, per_level={per_level}: both must be positive ints")
    flat = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    hw = np.stack([flat[:, 2] - flat[:, 0], flat[:, 3] - flat[:, 1]], axis=1)
    hw = hw[(hw > 0).all(axis=1)]
    shapes = kmeans_anchors(hw, num_levels * per_level, seed=seed)
    return tuple(
        tuple((round(float(h), 4), round(float(w), 4)) for h, w in shapes[level * per_level:(level + 1) * per_level])
        for level in range(num_levels)
    )


def _backbone(x, config: OneStageDetectorConfig) -> dict[int, object]:
    """Run the stages; return the features of the levels the head uses, keyed by stride."""
    from tfdl.layers import ResidualBlock

    features = {}
    for stage, filters in enumerate(config.backbone_filters):
        stride = 2 ** (stage + 1)
        for block in range(config.blocks_per_stage):
            name = f"stage{stage + 1}_block{block + 1}"
            strides = 2 if block == 0 else 1
            # The first block sees the image through a 3x3 conv in both backbones: a residual block's 1x1
            # stride-2 projection would skip three pixels in four.
            if config.backbone == "residual" and (stage, block) != (0, 0):
                x = ResidualBlock(filters, strides=strides, batch_norm_momentum=config.batch_norm_momentum,
                                  name=name)(x)
            else:
                x = _conv_bn_relu(x, filters, strides, config.batch_norm_momentum, name)
        if stride in config.feature_strides:
            features[stride] = x
    return features


def _conv_bn_relu(x, filters: int, strides: int, momentum: float, name: str):
    from keras import layers

    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _pyramid(features: dict[int, object], config: OneStageDetectorConfig) -> list:
    """Project every level to `head_width` channels; with `pyramid`, add the upsampled coarser level first."""
    from keras import layers

    levels = {s: layers.Conv2D(config.head_width, 1, name=f"lateral_s{s}")(f) for s, f in features.items()}
    if config.pyramid:
        strides = sorted(levels)
        for finer, coarser in zip(reversed(strides[:-1]), reversed(strides[1:])):
            upsampled = layers.UpSampling2D(coarser // finer, name=f"upsample_s{coarser}")(levels[coarser])
            levels[finer] = layers.Add(name=f"fuse_s{finer}")([levels[finer], upsampled])
    return [
        layers.Conv2D(config.head_width, 3, padding="same", name=f"level_s{s}")(levels[s])
        for s in sorted(levels)
    ]


def _head(levels: list, outputs_per_anchor: int, config: OneStageDetectorConfig, name: str, bias: float):
    """One tower of 3x3 convs shared by every level, then a conv with `outputs_per_anchor` per anchor."""
    import keras
    from keras import layers

    anchors = config.anchors_per_level()[0]
    tower = [
        layers.Conv2D(config.head_width, 3, padding="same", activation="relu",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name=f"{name}_tower{i + 1}")
        for i in range(config.head_depth)
    ]
    predict = layers.Conv2D(
        anchors * outputs_per_anchor, 3, padding="same",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        bias_initializer=keras.initializers.Constant(bias), name=f"{name}_predict",
    )
    flat = []
    for x, stride in zip(levels, config.feature_strides):
        for conv in tower:
            x = conv(x)
        x = predict(x)
        flat.append(layers.Reshape((-1, outputs_per_anchor), name=f"{name}_flatten_s{stride}")(x))
    if len(flat) == 1:
        return layers.Activation("linear", dtype="float32", name=name)(flat[0])
    return layers.Concatenate(axis=1, dtype="float32", name=name)(flat)


@register_model("one_stage_detector", OneStageDetectorConfig, task="detection")
def build_one_stage_detector(config: OneStageDetectorConfig):
    """Build the detector: images in, `{"box_deltas": (B, A, 4), "class_logits": (B, A, C)}` out.

    The class logits go through a sigmoid per class (no background column);
    the box deltas are `encode_boxes` offsets from `detector_anchors(config)`.

    Example:

    >>> model = build_one_stage_detector(OneStageDetectorConfig(input_shape=(32, 32, 3), num_classes=2,
    ...     backbone_filters=(8, 8, 8, 8), head_width=8, head_depth=1))
    >>> {k: tuple(v.shape) for k, v in model.output.items()}
    {'box_deltas': (None, 120, 4), 'class_logits': (None, 120, 2)}
    """
    import keras

    if config.input_shape is None or config.num_classes is None:
        raise ValueError(
            "build_one_stage_detector needs input_shape and num_classes (the run fills them from the data)"
        )
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    levels = _pyramid(_backbone(inputs, config), config)
    prior = -math.log((1 - config.prior_probability) / config.prior_probability)
    outputs = {
        "box_deltas": _head(levels, 4, config, "box_deltas", 0.0),
        "class_logits": _head(levels, config.num_classes, config, "class_logits", prior),
    }
    return keras.Model(inputs, outputs, name="one_stage_detector")
