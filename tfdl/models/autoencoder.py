"""Autoencoders (`autoencoder`): dense, convolutional and denoising, and the anomaly detector built on them.

An autoencoder squeezes each input through a narrow code and rebuilds it;
it is trained to reproduce its input (target = input, mean squared error).
Three textbook variants are one line of `model.params` apart:

    architecture: dense          # Dense encoder -> code -> mirrored Dense decoder
    architecture: conv           # stride-2 Conv2D encoder, Conv2DTranspose decoder (image_shape: [8, 8, 1])
    noise_stddev: 0.5            # denoising: Gaussian noise on the input while training only;
                                 # the target stays the clean input

What is rebuilt badly is unlike the training data, so the reconstruction
error flags anomalies: `anomaly_detector` wraps a trained autoencoder into a
model that returns the reconstruction, the per-example error and
`is_anomaly` (error above a threshold baked into the graph). The
`autoencoder` task (`tfdl.tasks.autoencoder`) trains on the `normal_classes`
only and picks the threshold on validation data.
"""

from __future__ import annotations

from typing import Literal

import keras
from keras import ops
from pydantic import Field, model_validator

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class AutoencoderConfig(StrictModel):
    """Configuration of `build_autoencoder` (and of the anomaly detection the run does with it).

    Attributes:
        input_shape: shape of one example; taken from the data when left out.
        input_name: the model input's name, the key serving clients use.
        architecture: `dense` or `conv`.
        hidden_units: widths of the dense encoder's layers before the code
            (the decoder mirrors them).
        code_size: width of the dense code (the bottleneck).
        image_shape: (height, width, channels) a conv autoencoder reshapes
            each input to; None uses `input_shape` when it has rank 3.
        filters: filters of each conv encoder block; each halves height and
            width, so both must divide by 2 ** len(filters).
        kernel_size: conv kernel size.
        activation: activation of the hidden layers.
        output_activation: `linear` for standardized data (the pipeline's
            normalization), `sigmoid` for data in [0, 1].
        noise_stddev: standard deviation of the Gaussian noise added to the
            input while training (0: a plain autoencoder; > 0: denoising).
        seed: seeds the training noise.
        normal_classes: class indices that count as normal: the run trains on
            them only and flags the others as anomalies; None: every class is
            normal (reconstruction only).
        threshold_quantile: the anomaly threshold is this quantile of the
            reconstruction errors of normal validation examples, so about
            1 - q of normal inputs are flagged.
    """

    input_shape: tuple[int, ...] | None = None
    input_name: str = "features"
    architecture: Literal["dense", "conv"] = "dense"
    hidden_units: tuple[int, ...] = (64,)
    code_size: int = Field(16, ge=1)
    image_shape: tuple[int, int, int] | None = None
    filters: tuple[int, ...] = Field((16, 8), min_length=1)
    kernel_size: int = Field(3, ge=1)
    activation: str = "relu"
    output_activation: Literal["linear", "sigmoid"] = "linear"
    noise_stddev: float = Field(0.0, ge=0.0)
    seed: int | None = 0
    normal_classes: tuple[int, ...] | None = Field(None, min_length=1)
    threshold_quantile: float = Field(0.95, gt=0.5, lt=1.0)

    @model_validator(mode="after")
    def _conv_image_fits(self) -> "AutoencoderConfig":
        if self.architecture != "conv" or self.input_shape is None:
            return self
        image = self.conv_image_shape()
        size = 1
        for d in self.input_shape:
            size *= d
        if image[0] * image[1] * image[2] != size:
            raise ValueError(f"image_shape {list(image)} holds {image[0] * image[1] * image[2]} values but one "
                             f"input {list(self.input_shape)} holds {size}; give an image_shape that fits")
        step = 2 ** len(self.filters)
        if image[0] % step or image[1] % step:
            raise ValueError(f"image height and width {image[:2]} must divide by 2 ** len(filters) = {step}; "
                             "use fewer filters blocks")
        return self

    def conv_image_shape(self) -> tuple[int, int, int]:
        """The image a conv autoencoder works on.

        Raises:
            ValueError: no `image_shape` and the input is not an image.
        """
        if self.image_shape is not None:
            return tuple(self.image_shape)
        if self.input_shape is not None and len(self.input_shape) == 3:
            return tuple(self.input_shape)
        raise ValueError(f"architecture conv needs image_shape for inputs of shape {self.input_shape}, "
                         "e.g. [8, 8, 1] for 64-pixel digit rows")


def _dense_autoencoder(x, config: AutoencoderConfig, size: int):
    layers = keras.layers
    x = layers.Flatten(name="flatten")(x) if len(config.input_shape) > 1 else x
    for i, units in enumerate(config.hidden_units, start=1):
        x = layers.Dense(units, activation=config.activation, name=f"encoder{i}")(x)
    x = layers.Dense(config.code_size, activation=config.activation, name="code")(x)
    for i, units in enumerate(reversed(config.hidden_units), start=1):
        x = layers.Dense(units, activation=config.activation, name=f"decoder{i}")(x)
    return layers.Dense(size, activation=config.output_activation, name="output")(x)


def _conv_autoencoder(x, config: AutoencoderConfig):
    layers = keras.layers
    image = config.conv_image_shape()
    x = layers.Reshape(image, name="to_image")(x) if tuple(config.input_shape) != image else x
    k, last = config.kernel_size, len(config.filters)
    for i, f in enumerate(config.filters, start=1):
        x = layers.Conv2D(f, k, strides=2, padding="same", activation=config.activation,
                          name="code" if i == last else f"encoder{i}")(x)
    for i, f in enumerate(reversed(config.filters), start=1):
        x = layers.Conv2DTranspose(f, k, strides=2, padding="same", activation=config.activation, name=f"decoder{i}")(x)
    return layers.Conv2D(image[-1], k, padding="same", activation=config.output_activation, name="output")(x)


@register_model("autoencoder", AutoencoderConfig, task="autoencoder")
def build_autoencoder(config: AutoencoderConfig) -> keras.Model:
    """Build a dense or convolutional (optionally denoising) autoencoder.

    Args:
        config: the model's settings; `input_shape` must be set.

    Returns:
        A functional `keras.Model` from `input_name` to `reconstruction`,
        shaped like the input; its layer `code` is the bottleneck.

    Raises:
        ValueError: `input_shape` is missing, or a conv model's image does not fit it.
    """
    if config.input_shape is None:
        raise ValueError("build_autoencoder needs input_shape (the run fills it from the data)")
    inputs = keras.Input(shape=config.input_shape, name=config.input_name)
    x = inputs
    if config.noise_stddev > 0:
        # GaussianNoise acts in training only: served inputs are never corrupted.
        x = keras.layers.GaussianNoise(config.noise_stddev, seed=config.seed, name="corruption")(x)
    size = 1
    for d in config.input_shape:
        size *= d
    x = _conv_autoencoder(x, config) if config.architecture == "conv" else _dense_autoencoder(x, config, size)
    outputs = keras.layers.Reshape(config.input_shape, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_autoencoder")


def encoder(model: keras.Model) -> keras.Model:
    """The encoder half of a `build_autoencoder` model: input -> code.

    Raises:
        ValueError: `model` has no layer named `code`.
    """
    names = [layer.name for layer in model.layers]
    if "code" not in names:
        raise ValueError(f"{model.name} has no layer named 'code'; pass a model from build_autoencoder")
    return keras.Model(model.inputs, model.get_layer("code").output, name="encoder")


@keras.saving.register_keras_serializable(package="tfdl")
class ReconstructionError(keras.layers.Layer):
    """Mean squared error per example between an input and its reconstruction.

    `call([x, reconstruction])` averages (x - reconstruction)^2 over every
    axis but the batch: shape (batch,).

    Example:

    >>> ReconstructionError()([np.zeros((2, 4)), np.ones((2, 4))])  # doctest: +SKIP
    [1.0, 1.0]
    """

    def call(self, inputs):
        x, reconstruction = inputs
        squared = ops.square(ops.cast(x, self.compute_dtype) - ops.cast(reconstruction, self.compute_dtype))
        return ops.mean(ops.reshape(squared, (ops.shape(squared)[0], -1)), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)


@keras.saving.register_keras_serializable(package="tfdl")
class AboveThreshold(keras.layers.Layer):
    """True where a score exceeds a fixed threshold: `score > threshold`, as bool.

    Args:
        threshold: the bar, a constant of the graph (saved in the config).

    Example:

    >>> AboveThreshold(0.5)(np.array([0.2, 0.7]))  # doctest: +SKIP
    [False, True]
    """

    def __init__(self, threshold: float, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def call(self, score):
        return ops.greater(score, self.threshold)

    def compute_output_spec(self, score):
        return keras.KerasTensor(score.shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def anomaly_detector(model: keras.Model, threshold: float, reconstruction_units: keras.layers.Layer | None = None,
                     name: str = "anomaly_detector") -> keras.Model:
    """Wrap a trained autoencoder into `x -> reconstruction, reconstruction_error, is_anomaly`.

    Args:
        model: a trained `build_autoencoder` model (it takes model-ready,
            e.g. standardized, inputs).
        threshold: reconstruction errors above it are anomalies.
        reconstruction_units: a layer mapping the reconstruction back to the
            units clients send (the inverse of the pipeline's normalization);
            None keeps the model's units. The error is always measured in
            the model's units, where the threshold was chosen.
        name: the returned model's name.

    Returns:
        A functional model with outputs `reconstruction`, `reconstruction_error`
        (float32, per example) and `is_anomaly` (bool, per example).

    Raises:
        ValueError: `threshold` is negative or not finite.
    """
    if not (threshold >= 0.0 and threshold < float("inf")):
        raise ValueError(f"threshold must be a finite reconstruction error >= 0, got {threshold}")
    (source,) = model.inputs
    inputs = keras.Input(shape=source.shape[1:], dtype=source.dtype, name=source.name)
    rebuilt = model(inputs)
    error = ReconstructionError(name="reconstruction_error")([inputs, rebuilt])
    flagged = AboveThreshold(threshold, name="is_anomaly")(error)
    shown = reconstruction_units(rebuilt) if reconstruction_units is not None else rebuilt
    shown = keras.layers.Identity(name="reconstruction")(shown)
    return keras.Model(inputs, [shown, error, flagged], name=name)
