"""ResidualBlock: the basic block of ResNet-18/34 for images (He et al., 2015).

Two 3x3 convolutions with batch normalization and a shortcut around them, so
a deep image model learns residuals. The shortcut is the identity when shapes
allow, a 1x1 convolution (+ BN) projection when the block changes resolution
or channel count.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class ResidualBlock(keras.layers.Layer):
    """The ResNet basic block: relu(BN(conv(relu(BN(conv(x))))) + shortcut(x)).

    On an NHWC image batch `(batch, height, width, channels)` computes

        y = ReLU(BN1(Conv1(x)))          # kernel_size, stride `strides`
        y = BN2(Conv2(y))                # kernel_size, stride 1
        out = ReLU(y + shortcut(x))

    with "same" padding and convolutions without bias (BN supplies it). The
    shortcut is `x` itself, or with a projection `BN_p(Conv_p(x))`, a 1x1
    convolution with stride `strides` and `filters` channels. Output shape:
    `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Args:
        filters: int. Output channels of both convolutions. Required.
        strides: int. Stride of the first convolution and of the projection;
            2 halves the resolution. Defaults to `1`.
        kernel_size: int. Size of the two main convolutions. Defaults to `3`.
        use_projection: bool or None. Whether the shortcut is a 1x1 conv + BN
            projection. `None` (the default) decides from the input: a
            projection when `strides != 1` or the input has a channel count
            other than `filters`, the identity otherwise. `False` with such an
            input is an error (the shapes would not add).
        batch_norm_momentum: float. Momentum of the moving statistics of every
            batch normalization. Defaults to `0.9`.
        batch_norm_epsilon: float. Epsilon of every batch normalization.
            Defaults to `1e-3` (the Keras default).
        kernel_initializer: initializer of every convolution kernel; each
            convolution gets its own copy (with an integer seed, kernels of
            equal shape start equal). Defaults to `"he_normal"`.
        kernel_regularizer: regularizer of every convolution kernel, or None.
            Defaults to `None`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a float tensor `(batch, height, width, channels)`.
        training: bool. Batch statistics (True) or moving statistics (False)
            in the batch normalizations.

    Example:

    >>> import numpy as np
    >>> block = ResidualBlock(filters=16, strides=2)
    >>> tuple(block(np.zeros((2, 8, 8, 3), "float32")).shape)
    (2, 4, 4, 16)
    >>> block.projection is not None
    True
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        kernel_size: int = 3,
        use_projection: bool | None = None,
        batch_norm_momentum: float = 0.9,
        batch_norm_epsilon: float = 1e-3,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("strides", strides), ("kernel_size", kernel_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ResidualBlock: {name} must be a positive int; got {value!r}.")
        self.filters = filters
        self.strides = strides
        self.kernel_size = kernel_size
        self.use_projection = use_projection
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        self.conv1 = self._conv(kernel_size, strides, "conv1")
        self.bn1 = self._batch_norm("bn1")
        self.conv2 = self._conv(kernel_size, 1, "conv2")
        self.bn2 = self._batch_norm("bn2")
        # The projection depends on the input's channel count: made in build.
        self.projection = None
        self.projection_bn = None

    def _conv(self, kernel_size: int, strides: int, name: str) -> keras.layers.Conv2D:
        # A fresh initializer per convolution: one unseeded Keras initializer
        # instance returns the same values on every call, so sharing it would
        # give conv1 and conv2 identical kernels whenever their shapes match.
        initializer = keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))
        return keras.layers.Conv2D(
            self.filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _batch_norm(self, name: str) -> keras.layers.BatchNormalization:
        return keras.layers.BatchNormalization(
            momentum=self.batch_norm_momentum, epsilon=self.batch_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape) -> None:
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"ResidualBlock expects images (batch, height, width, channels) with channels known; "
                f"got {tuple(input_shape)}."
            )
        channels = input_shape[-1]
        needs_projection = self.strides != 1 or channels != self.filters
        if self.use_projection is False and needs_projection:
            raise ValueError(
                f"ResidualBlock: use_projection=False needs an identity shortcut, but the input has "
                f"{channels} channels for filters={self.filters} at strides={self.strides}. Use "
                "use_projection=None or True, or strides=1 and filters equal to the input channels."
            )
        self.conv1.build(input_shape)
        conv1_shape = self.conv1.compute_output_shape(input_shape)
        self.bn1.build(conv1_shape)
        self.conv2.build(conv1_shape)
        self.bn2.build(conv1_shape)
        if self.use_projection or (self.use_projection is None and needs_projection):
            self.projection = self._conv(1, self.strides, "projection")
            self.projection_bn = self._batch_norm("projection_bn")
            self.projection.build(input_shape)
            self.projection_bn.build(conv1_shape)

    def call(self, inputs, training: bool | None = None):
        y = ops.relu(self.bn1(self.conv1(inputs), training=training))
        y = self.bn2(self.conv2(y), training=training)
        shortcut = inputs
        if self.projection is not None:
            shortcut = self.projection_bn(self.projection(inputs), training=training)
        return ops.relu(y + shortcut)

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "kernel_size": self.kernel_size,
                "use_projection": self.use_projection,
                "batch_norm_momentum": self.batch_norm_momentum,
                "batch_norm_epsilon": self.batch_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
