"""Transfer learning (`transfer`): a pretrained backbone with a new classification head.

The backbone is one of `keras.applications` (MobileNetV2, EfficientNetB0,
ResNet50, VGG16) without its top, with ImageNet weights, a local weights
file or none, or any TF SavedModel / TF Hub model through
`tfdl.layers.SavedModelBackbone`. Each application's own `preprocess_input`
runs inside the model, so raw pixels (0-255) go in and the served model needs
no client-side preprocessing. The backbone is one layer named `backbone`,
called in inference mode when pretrained, which `tfdl.training.fine_tuning`
freezes for the head's training and partly unfreezes for fine-tuning.

ImageNet weights come through Keras's own download (`keras.utils.get_file`
into Keras's cache, `~/.keras/models/`); offline, the error names the file,
its URL and the folder to put it in.
"""

from __future__ import annotations

import os
import re
from typing import Literal

import keras
from pydantic import Field, field_validator, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import ConfigError, StrictModel

BACKBONE_LAYER = "backbone"

# name -> (keras.applications constructor, the `preprocess_input` mode it uses).
# EfficientNet rescales and normalizes inside the network (its
# `preprocess_input` is the identity), so nothing is added for it.
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "efficientnet_b0": ("EfficientNetB0", None),
    "resnet50": ("ResNet50", "caffe"),
    "vgg16": ("VGG16", "caffe"),
}
# keras.applications.imagenet_utils: the "caffe" mode's per-channel means, in BGR order.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="tfdl")
class CaffePreprocessing(keras.layers.Layer):
    """ImageNet "caffe" preprocessing: RGB to BGR, then minus the ImageNet channel means.

    What `keras.applications.resnet50.preprocess_input` and
    `vgg16.preprocess_input` compute for RGB pixels in 0-255, as a layer, so a
    model holds its own preprocessing (and exports and converts with it):
    `y[..., c] = x[..., 2 - c] - mean[c]` with `mean = (103.939, 116.779,
    123.68)`. It has no weights and no arguments.

    Example:

    >>> import numpy as np
    >>> bgr = CaffePreprocessing()(np.array([[0.0, 0.0, 255.0]], "float32"))
    >>> [round(float(v), 3) for v in bgr[0]]
    [151.061, -116.779, -123.68]
    """

    def build(self, input_shape) -> None:
        if input_shape[-1] != 3:
            raise ValueError(
                f"CaffePreprocessing expects RGB images with 3 channels last; got input shape {tuple(input_shape)}."
            )

    def call(self, inputs):
        bgr = keras.ops.flip(keras.ops.cast(inputs, self.compute_dtype), axis=-1)
        return bgr - keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=self.compute_dtype)


class TransferConfig(StrictModel):
    """Configuration of `build_transfer`.

    Attributes:
        input_shape: shape of one example as fed; for a keras.applications
            backbone an image `(height, width, channels)` of at least 32x32
            (3 channels with ImageNet weights). Taken from the data when left out.
        num_classes: number of classes; taken from the data when left out.
        input_name: name of the model input, the key serving clients use.
        backbone: `mobilenet_v2`, `efficientnet_b0`, `resnet50`, `vgg16`
            (keras.applications, without their top), or `saved_model`.
        weights: for keras.applications: `imagenet` (downloaded by Keras into
            its cache on first use), the path of a local weights file of the
            backbone without its top, or `none` (random initialization).
            Not used by `saved_model`, whose SavedModel holds its weights.
        alpha: MobileNetV2's width multiplier (0.35, 0.5, 0.75, 1.0, 1.3 or
            1.4 have ImageNet weights).
        backbone_path: for `saved_model`: the SavedModel folder or a TF Hub
            handle (see `SavedModelBackbone`).
        backbone_endpoint: for `saved_model`: the endpoint to call; None picks
            `__call__`, `serve` or `serving_default`.
        backbone_output_key: for `saved_model`: which output of a dict to use.
        preprocess: `application`: the backbone's own `preprocess_input`,
            inside the model, so inputs are RGB pixels in 0-255 (MobileNetV2:
            scaled to [-1, 1]; ResNet50 and VGG16: BGR minus the ImageNet
            means; EfficientNetB0 and `saved_model`: nothing added, as they
            take what they need themselves); `none`: inputs go to the backbone
            unchanged.
        pooling: `avg` or `max` global pooling of a feature-map output; a
            backbone that returns vectors is used as is.
        dense_units: units of a hidden dense layer in the head (0: none).
        dropout: dropout rate before each dense layer of the head.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "image"
    backbone: Literal["mobilenet_v2", "efficientnet_b0", "resnet50", "vgg16", "saved_model"] = "mobilenet_v2"
    weights: str | None = "imagenet"
    alpha: float = Field(1.0, gt=0.0)
    backbone_path: str | None = None
    backbone_endpoint: str | None = None
    backbone_output_key: str | None = None
    preprocess: Literal["application", "none"] = "application"
    pooling: Literal["avg", "max"] = "avg"
    dense_units: int = Field(0, ge=0)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)

    @field_validator("weights", mode="before")
    @classmethod
    def _none_means_none(cls, value):
        # YAML `none` is the string "none", not null.
        return None if isinstance(value, str) and value.lower() in ("none", "null", "") else value

    @model_validator(mode="after")
    def _fields_fit_the_backbone(self) -> "TransferConfig":
        if self.backbone == "saved_model":
            if not self.backbone_path:
                raise ValueError("backbone saved_model needs backbone_path: a SavedModel folder or a TF Hub handle")
            if "weights" in self.model_fields_set and self.weights is not None:
                raise ValueError(
                    f"weights={self.weights!r} applies to keras.applications backbones; a saved_model backbone "
                    "brings its own weights (leave weights out or set it to none)"
                )
        else:
            given = [f for f in ("backbone_path", "backbone_endpoint", "backbone_output_key") if getattr(self, f)]
            if given:
                raise ValueError(f"{', '.join(given)} applies to backbone saved_model, not {self.backbone!r}")
            if self.input_shape is not None and (len(self.input_shape) != 3 or min(self.input_shape[:2]) < 32):
                raise ValueError(
                    f"input_shape {list(self.input_shape)}: backbone {self.backbone} takes images "
                    "(height, width, channels) of at least 32x32 pixels"
                )
            if self.weights == "imagenet" and self.input_shape is not None and self.input_shape[-1] != 3:
                raise ValueError(
                    f"input_shape {list(self.input_shape)}: ImageNet weights need 3 (RGB) channels"
                )
            if self.weights not in (None, "imagenet") and not os.path.isfile(os.path.expanduser(self.weights)):
                raise ValueError(
                    f"weights {self.weights!r} is neither imagenet, none, nor an existing weights file; "
                    "give the path of the backbone's weights file (without its top)"
                )
        if self.alpha != 1.0 and self.backbone != "mobilenet_v2":
            raise ValueError(f"alpha is MobileNetV2's width multiplier; backbone {self.backbone} has none")
        return self


def _keras_models_dir() -> str:
    """The folder `keras.utils.get_file` caches application weights in."""
    # Keras reads KERAS_HOME once, at import, and has no public accessor for it.
    from keras.src.backend.config import keras_home

    return os.path.join(keras_home(), "models")


def _missing_imagenet_weights(backbone: str, error: Exception) -> ConfigError:
    origin = re.match(r"URL fetch failure on (\S+?): (.*)", str(error), re.DOTALL)
    url, reason = origin.groups() if origin else ("the URL in Keras's message", str(error))
    file_name = url.rsplit("/", 1)[-1]
    folder = _keras_models_dir()
    return ConfigError(
        f"model.params.weights: the ImageNet weights of backbone {backbone} could not be downloaded ({reason}). "
        f"Fetch {file_name} from {url} and put it in {folder}{os.sep} (Keras's cache: $KERAS_HOME/models, "
        "~/.keras/models/ by default), then run again; or set model.params.weights to the path of the "
        "downloaded file, or to none to start from random weights."
    )


def _application_backbone(config: TransferConfig):
    constructor, _ = APPLICATIONS[config.backbone]
    arguments = dict(
        include_top=False,
        weights=os.path.expanduser(config.weights) if config.weights not in (None, "imagenet") else config.weights,
        input_shape=config.input_shape,
        name=BACKBONE_LAYER,
    )
    if config.backbone == "mobilenet_v2":
        arguments["alpha"] = config.alpha
    try:
        return getattr(keras.applications, constructor)(**arguments)
    except Exception as error:
        # `keras.utils.get_file` raises a bare Exception when a download
        # fails; anything else is not ours to reword.
        if config.weights == "imagenet" and str(error).startswith("URL fetch failure on "):
            raise _missing_imagenet_weights(config.backbone, error) from None
        raise


def _backbone(config: TransferConfig):
    if config.backbone == "saved_model":
        from tfdl.layers.saved_model_backbone import SavedModelBackbone

        return SavedModelBackbone(
            config.backbone_path,
            endpoint=config.backbone_endpoint,
            output_key=config.backbone_output_key,
            name=BACKBONE_LAYER,
        )
    return _application_backbone(config)


def _preprocessing(config: TransferConfig):
    mode = APPLICATIONS.get(config.backbone, (None, None))[1] if config.preprocess == "application" else None
    if mode == "tf":  # x / 127.5 - 1
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")
    if mode == "caffe":
        return CaffePreprocessing(name="preprocess")
    return None


def _pool(features, config: TransferConfig):
    rank = len(features.shape)
    if rank == 2:
        return features
    if rank == 4:
        pooling = keras.layers.GlobalAveragePooling2D if config.pooling == "avg" else keras.layers.GlobalMaxPooling2D
        return pooling(name="pool")(features)
    raise ConfigError(
        f"model.params.backbone: the backbone returns features of shape {tuple(features.shape)}; the head "
        "takes feature maps (batch, height, width, channels) or vectors (batch, features) "
        "(for a saved_model backbone, pick another backbone_output_key or backbone_endpoint)"
    )


@register_model("transfer", TransferConfig, task="classification")
def build_transfer(config: TransferConfig):
    """Build the transfer model: preprocessing, the backbone (inference mode), pooling and a softmax head.

    Args:
        config: the model's config; `input_shape` and `num_classes` must be set.

    Returns:
        A `keras.Model` named `transfer` whose output `probabilities` is a
        softmax over the classes; its layer `backbone` is the pretrained part.

    Raises:
        ValueError: `input_shape` or `num_classes` missing, a backbone that
            does not take the input shape, or features of an unusable rank.
        ConfigError: ImageNet weights that cannot be downloaded (the message
            names the file, its URL and the folder to put it in).

    Example:

    >>> model = build_transfer(TransferConfig(input_shape=(32, 32, 3), num_classes=3,
    ...                                       weights="none", alpha=0.35))
    >>> model.output_shape, model.get_layer("backbone").name
    ((None, 3), 'backbone')
    """
    if config.input_shape is None or config.num_classes is None:
        raise ValueError("build_transfer needs input_shape and num_classes (the run fills them from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    preprocess = _preprocessing(config)
    x = preprocess(inputs) if preprocess is not None else inputs
    # A pretrained backbone runs in inference mode for good: its batch
    # normalization keeps the pretrained statistics even while its weights
    # fine-tune. One trained from scratch (weights none) needs batch statistics.
    pretrained = config.backbone == "saved_model" or config.weights is not None
    x = _pool(_backbone(config)(x, training=False if pretrained else None), config)
    if config.dense_units:
        x = keras.layers.Dropout(config.dropout, name="head_dropout_hidden")(x)
        x = keras.layers.Dense(config.dense_units, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="transfer")
