"""The served two-stage detector: image in, final boxes (and instance masks pasted into the image) out.

`TwoStageDetector` already ends in its final detections (proposal NMS,
stage two, per-class NMS are inside its `call`); its masks come per
detection over the detection's own box, `mask_size x mask_size`.
`PasteMasks` resamples each into the image frame, and
`two_stage_inference_model` wraps the detector and that layer into a Keras
functional model

    image -> {"boxes": (B, D, 4), "scores": (B, D), "classes": (B, D) int32,
              "num_detections": (B,) int32[, "masks": (B, D, H, W)]}

that saves to `.keras` (loads with `safe_mode=True`) and exports with tfdl's
ordinary SavedModel path, so TF Serving returns final detections and
masks. Masks are float32 probabilities by default (threshold them at 0.5
for a binary mask, as COCO evaluation does), or uint8 0/1 with
`mask_output="binary"` (a quarter of the bytes on the wire); padded
detections get all-zero masks. `predict_two_stage_detections` computes the
same in-process and returns each image's valid detections with binary
masks, the input of `tfdl.evaluation.detection_map`.
"""

from __future__ import annotations

from typing import Literal, get_args

import keras
import numpy as np
import tensorflow as tf

MaskOutput = Literal["probabilities", "binary"]
MASK_THRESHOLD = 0.5


@keras.saving.register_keras_serializable(package="tfdl")
class PasteMasks(keras.layers.Layer):
    """Paste masks predicted over boxes into the image frame (Mask R-CNN's `paste_masks_in_image`).

    A mask `M x M` covers its box; image pixel `(r, c)` (centre at
    `((r + 0.5) / H, (c + 0.5) / W)`) takes the bilinear value of the mask
    at that point, the mask's cells centred like pixels. Outside the box the
    mask fades to 0 within half a mask cell (the mask is zero-padded) and is
    0 beyond. One `tf.image.crop_and_resize` over all masks of the batch.

    Args:
        image_size: (height, width) of the image frame in pixels.
        mask_output: `probabilities` (float32) or `binary` (uint8, value >=
            0.5 is 1). Defaults to `probabilities`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        masks: float `(B, D, M, M)` probabilities over each box.
        boxes: float `(B, D, 4)` normalized `[ymin, xmin, ymax, xmax]` boxes.

    Returns:
        `(B, D, height, width)` masks, float32 or uint8.

    Example:

    >>> paste = PasteMasks((4, 4))
    >>> out = paste(np.ones((1, 1, 2, 2), "float32"), np.array([[[0.0, 0.0, 0.5, 0.5]]], "float32"))
    >>> out.numpy()[0, 0].round(2).tolist()
    [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """

    def __init__(self, image_size, mask_output: MaskOutput = "probabilities", **kwargs):
        super().__init__(**kwargs)
        size = tuple(int(v) for v in image_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"PasteMasks: image_size={image_size!r}; use (height, width), positive ints.")
        if mask_output not in get_args(MaskOutput):
            raise ValueError(
                f"PasteMasks: mask_output={mask_output!r}; use 'probabilities' (float32) or 'binary' (uint8)."
            )
        self.image_size = size
        self.mask_output = mask_output

    def call(self, masks, boxes):
        masks = tf.cast(masks, tf.float32)
        boxes = tf.cast(boxes, tf.float32)
        batch, count, size = tf.shape(masks)[0], tf.shape(masks)[1], masks.shape[-1]
        height, width = self.image_size
        padded = tf.pad(tf.reshape(masks, (-1, size, size, 1)), [[0, 0], [1, 1], [1, 1], [0, 0]])
        ymin, xmin, ymax, xmax = tf.unstack(tf.reshape(boxes, (-1, 4)), 4, axis=-1)
        y_first, y_last = _span(ymin, ymax, height, size)
        x_first, x_last = _span(xmin, xmax, width, size)
        pasted = tf.image.crop_and_resize(
            padded, tf.stack([y_first, x_first, y_last, x_last], axis=-1), tf.range(batch * count), (height, width),
        )
        pasted = tf.reshape(pasted, (batch, count, height, width))
        if self.mask_output == "binary":
            return tf.cast(pasted >= MASK_THRESHOLD, tf.uint8)
        return pasted

    def compute_output_spec(self, masks, boxes):
        dtype = "uint8" if self.mask_output == "binary" else "float32"
        return keras.KerasTensor((masks.shape[0], masks.shape[1], *self.image_size), dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "image_size": list(self.image_size), "mask_output": self.mask_output}


def _span(low, high, pixels: int, size: int):
    """crop_and_resize coordinates (in the zero-padded mask) of the first and last image pixel."""
    extent = tf.maximum(high - low, 1e-6)  # padding boxes have no extent; their masks are zero anyway

    def cell(pixel: float):
        # Mask cell index of an image pixel's centre, plus 1 for the padding.
        return ((pixel + 0.5) / pixels - low) / extent * size - 0.5 + 1.0

    return cell(0.0) / (size + 1.0), cell(pixels - 1.0) / (size + 1.0)


def two_stage_inference_model(model, mask_output: MaskOutput = "probabilities") -> keras.Model:
    """The two-stage detector as served: one image input, final detections and image-sized masks out.

    Args:
        model: a `TwoStageDetector` (`build_model("two_stage_detector", ...)`).
        mask_output: `probabilities` (float32) or `binary` (uint8); see
            `PasteMasks`. Ignored without a mask head.

    Returns:
        A functional `keras.Model` `image -> {"boxes", "scores", "classes",
        "num_detections"[, "masks"]}`, its input named as the detector's
        `input_name`.

    Raises:
        ValueError: if `model` is not a `TwoStageDetector`, or `mask_output`
            is unknown.

    Example:

    >>> from tfdl.models.two_stage_detector import TwoStageDetectorConfig, build_two_stage_detector
    >>> config = TwoStageDetectorConfig(input_shape=(32, 32, 3), num_classes=2, backbone_filters=(8, 8, 8, 8),
    ...                                 head_width=8, fc_units=8, masks=True, mask_size=4, max_detections=3)
    >>> served = two_stage_inference_model(build_two_stage_detector(config))
    >>> {k: tuple(v.shape) for k, v in sorted(served(np.zeros((1, 32, 32, 3), "float32")).items())}
    {'boxes': (1, 3, 4), 'classes': (1, 3), 'masks': (1, 3, 32, 32), 'num_detections': (1,), 'scores': (1, 3)}
    """
    config = _two_stage_config(model)
    if mask_output not in get_args(MaskOutput):
        raise ValueError(
            f"two_stage_inference_model: mask_output={mask_output!r}; use 'probabilities' or 'binary'."
        )
    image = keras.Input(shape=config.input_shape, name=config.input_name)
    found = dict(model(image))
    if config.masks:
        roi_masks = found.pop("roi_masks")
        found["masks"] = PasteMasks(config.input_shape[:2], mask_output, name="masks")(roi_masks, found["boxes"])
    return keras.Model(image, found, name=f"{model.name}_inference")


def predict_two_stage_detections(model, images, batch_size: int = 64) -> list[dict[str, np.ndarray]]:
    """Each image's valid detections, computed in-process as the served model computes them.

    Args:
        model: a `TwoStageDetector`.
        images: float array `(N, H, W, C)` of the detector's input size.
        batch_size: images per forward pass.

    Returns:
        One dict per image: `boxes` float32 `(n, 4)`, `scores` `(n,)`,
        `classes` int32 `(n,)`, best first, and with a mask head `masks`
        uint8 `(n, H, W)` (probability >= 0.5); what
        `tfdl.evaluation.detection_map` takes.

    Raises:
        ValueError: if `model` is not a `TwoStageDetector`, `images` is not
            a batch of its input size, or `batch_size` is not positive.
    """
    config = _two_stage_config(model)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != tuple(config.input_shape):
        raise ValueError(
            f"predict_two_stage_detections: images must be a batch (N, {', '.join(map(str, config.input_shape))}); "
            f"got shape {images.shape}. Add a leading axis for a single image."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"predict_two_stage_detections: batch_size={batch_size!r}; use a positive int.")
    paste = PasteMasks(config.input_shape[:2], "binary") if config.masks else None
    keys = ("boxes", "scores", "classes") + (("masks",) if config.masks else ())
    found = []
    for start in range(0, len(images), batch_size):
        out = dict(model(images[start:start + batch_size], training=False))
        if paste is not None:
            out["masks"] = paste(out.pop("roi_masks"), out["boxes"])
        out = {k: np.asarray(v) for k, v in out.items()}
        for i, count in enumerate(out["num_detections"]):
            found.append({key: out[key][i, :count] for key in keys})
    return found


def _two_stage_config(model):
    from tfdl.models.two_stage_detector import TwoStageDetector

    if not isinstance(model, TwoStageDetector):
        raise ValueError(
            f"{getattr(model, 'name', model)!r} is not a two-stage detector; build it with "
            "build_model('two_stage_detector', ...)."
        )
    return model.config
