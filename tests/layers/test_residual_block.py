"""ResidualBlock: shapes, shortcut choice, a numpy reference in inference mode, BN momentum, export."""

import keras
import numpy as np
import pytest

from harness import run_layer_test
from tfdl.layers.residual_block import ResidualBlock

RNG = np.random.default_rng(0)


def conv_same(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """NHWC convolution with TensorFlow's "same" padding, in numpy."""
    kh, kw = kernel.shape[:2]
    padded = x
    out_hw = []
    for axis, k in ((1, kh), (2, kw)):
        size = x.shape[axis]
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        widths = [(0, 0)] * 4
        widths[axis] = (total // 2, total - total // 2)
        padded = np.pad(padded, widths)
        out_hw.append(out)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))
    windows = windows[:, ::stride, ::stride][:, : out_hw[0], : out_hw[1]]
    return np.einsum("nhwcij,ijcf->nhwf", windows, kernel)


def batch_norm(x: np.ndarray, layer) -> np.ndarray:
    gamma, beta, mean, var = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def numpy_block(x: np.ndarray, block: ResidualBlock) -> np.ndarray:
    kernel = lambda conv: keras.ops.convert_to_numpy(conv.kernel)  # noqa: E731
    y = np.maximum(batch_norm(conv_same(x, kernel(block.conv1), block.strides), block.bn1), 0)
    y = batch_norm(conv_same(y, kernel(block.conv2), 1), block.bn2)
    shortcut = x
    if block.projection is not None:
        shortcut = batch_norm(conv_same(x, kernel(block.projection), block.strides), block.projection_bn)
    return np.maximum(y + shortcut, 0)


def randomize_batch_norms(block: ResidualBlock) -> None:
    """Give every BN non-trivial statistics, so the reference checks they are used."""
    for layer in (block.bn1, block.bn2, block.projection_bn):
        if layer is None:
            continue
        gamma, beta, mean, var = (w.shape for w in layer.weights)
        layer.set_weights(
            [RNG.uniform(0.5, 1.5, gamma), RNG.normal(size=beta), RNG.normal(size=mean), RNG.uniform(0.5, 2.0, var)]
        )


@pytest.mark.parametrize(
    "shape, filters, strides, projection",
    [((2, 6, 6, 4), 4, 1, False), ((2, 6, 6, 3), 5, 1, True), ((2, 7, 7, 4), 4, 2, True), ((1, 8, 6, 2), 6, 2, True)],
)
def test_inference_matches_numpy_reference(shape, filters, strides, projection):
    x = RNG.normal(size=shape).astype("float32")
    block = ResidualBlock(filters, strides=strides)
    block.build(shape)
    randomize_batch_norms(block)
    out = np.asarray(block(x, training=False))
    assert (block.projection is not None) == projection
    assert out.shape == (shape[0], -(-shape[1] // strides), -(-shape[2] // strides), filters)
    assert block.compute_output_shape(shape) == out.shape
    np.testing.assert_allclose(out, numpy_block(x, block), atol=1e-4)


def test_identity_shortcut_has_no_extra_weights():
    identity, projected = ResidualBlock(4), ResidualBlock(4, use_projection=True)
    identity.build((None, 6, 6, 4))
    projected.build((None, 6, 6, 4))
    assert identity.projection is None
    # conv1, conv2 kernels + 4 BN weights each; the projection adds a kernel and a BN.
    assert len(identity.weights) == 2 + 2 * 4
    assert len(projected.weights) == len(identity.weights) + 1 + 4
    assert identity.count_params() == 2 * 3 * 3 * 4 * 4 + 2 * 4 * 4


def test_kernels_start_different():
    block = ResidualBlock(4)
    block.build((None, 6, 6, 4))
    conv1, conv2 = (keras.ops.convert_to_numpy(c.kernel) for c in (block.conv1, block.conv2))
    assert not np.allclose(conv1, conv2), "conv1 and conv2 share initial values"


def test_training_uses_batch_statistics_and_momentum():
    x = RNG.normal(size=(4, 5, 5, 3)).astype("float32")
    block = ResidualBlock(3, batch_norm_momentum=0.8)
    block.build(x.shape)
    pre_activation = conv_same(x, keras.ops.convert_to_numpy(block.conv1.kernel), 1)
    block(x, training=True)
    moving_mean = keras.ops.convert_to_numpy(block.bn1.moving_mean)
    np.testing.assert_allclose(moving_mean, 0.2 * pre_activation.mean((0, 1, 2)), atol=1e-5)


def test_regularizer_reaches_every_kernel_and_serializes():
    block = ResidualBlock(4, strides=2, kernel_regularizer=keras.regularizers.L2(0.01))
    block(np.zeros((1, 6, 6, 2), "float32"))
    kernels = [keras.ops.convert_to_numpy(c.kernel) for c in (block.conv1, block.conv2, block.projection)]
    assert len(block.losses) == 3
    np.testing.assert_allclose(float(sum(block.losses)), 0.01 * sum((k**2).sum() for k in kernels), rtol=1e-5)
    rebuilt = ResidualBlock.from_config(block.get_config())
    assert rebuilt.conv1.kernel_regularizer.get_config() == {"l2": 0.01}


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"use_projection=False.*3 channels for filters=4"):
        ResidualBlock(4, use_projection=False).build((None, 6, 6, 3))
    with pytest.raises(ValueError, match=r"strides must be a positive int; got 0"):
        ResidualBlock(4, strides=0)
    with pytest.raises(ValueError, match=r"\(None, 6, 3\)"):
        ResidualBlock(4).build((None, 6, 3))


@pytest.mark.parametrize("strides, kernel_regularizer", [(1, None), (2, "l2")])
def test_round_trip_and_tflite(tmp_path, strides, kernel_regularizer):
    x = RNG.normal(size=(2, 6, 6, 3)).astype("float32")
    block = ResidualBlock(4, strides=strides, kernel_regularizer=kernel_regularizer)
    block.build(x.shape)
    randomize_batch_norms(block)
    run_layer_test(block, x, tmp_path, expected_shape=(2, 6 // strides, 6 // strides, 4), reference=lambda x: numpy_block(x, block), atol=1e-4)
