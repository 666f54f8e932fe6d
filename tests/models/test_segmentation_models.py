"""U-Net and FCN: per-pixel outputs at input size, the FCN variants' fusions, learning a mask, TFLite."""

import keras
import numpy as np
import pytest

from tfdl.losses import CrossentropyDiceLoss
from tfdl.models import FCNConfig, UNetConfig, build_model


def squares(n=256, size=16, seed=0):
    """Noisy images with one bright square each; the mask marks the square (class 1)."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size, 1)).astype("float32") * 0.5
    masks = np.zeros((n, size, size), "int32")
    for i in range(n):
        side = rng.integers(4, 9)
        y, x = rng.integers(0, size - side, 2)
        images[i, y:y + side, x:x + side] += 0.5
        masks[i, y:y + side, x:x + side] = 1
    return images, masks


@pytest.mark.parametrize("name, params", [
    ("unet", {"filters": (4, 8, 16)}),
    ("unet", {"filters": (4, 8), "upsampling": "bilinear", "batch_norm": False}),
    ("fcn", {"filters": (4, 8, 8), "variant": "8s"}),
    ("fcn", {"filters": (4, 8, 8), "variant": "32s"}),
])
def test_outputs_are_per_pixel_probabilities_at_input_size(name, params):
    model = build_model(name, {"input_shape": (16, 16, 3), "num_classes": 4, **params})
    out = np.asarray(model(np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")))
    assert out.shape == (2, 16, 16, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    assert model.output_names == ["probabilities"]


def test_fcn_variants_fuse_the_finer_stages():
    names = {variant: {layer.name for layer in build_model(
        "fcn", {"input_shape": (32, 32, 3), "num_classes": 3, "filters": (4, 4, 4, 4, 4), "variant": variant}).layers}
        for variant in ("32s", "16s", "8s")}
    assert not any(n.startswith("fuse") for n in names["32s"])
    assert "fuse_stride16" in names["16s"] and "fuse_stride8" not in names["16s"]
    assert {"fuse_stride16", "fuse_stride8"} <= names["8s"]


def test_sizes_that_do_not_divide_are_refused():
    with pytest.raises(ValueError, match="divisible by 8"):
        UNetConfig(input_shape=(20, 20, 3), num_classes=2, filters=(4, 8, 16, 32))
    with pytest.raises(ValueError, match="divisible by 32"):
        FCNConfig(input_shape=(48, 48, 3), num_classes=2)


@pytest.mark.parametrize("name, params", [("unet", {"filters": (8, 16)}), ("fcn", {"filters": (8, 16, 16)})])
def test_learns_to_segment_squares(name, params):
    keras.utils.set_random_seed(0)
    images, masks = squares()
    model = build_model(name, {"input_shape": (16, 16, 1), "num_classes": 2, **params})
    model.compile(keras.optimizers.Adam(0.01), CrossentropyDiceLoss())
    model.fit(images[:200], masks[:200], epochs=8, batch_size=16, verbose=0)
    predicted = np.asarray(model.predict(images[200:], verbose=0)).argmax(-1)
    truth = masks[200:]
    iou = ((predicted == 1) & (truth == 1)).sum() / ((predicted == 1) | (truth == 1)).sum()
    assert iou > 0.8


def test_unet_round_trips_and_converts_to_tflite(tmp_path):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model = build_model("unet", {"input_shape": (16, 16, 3), "num_classes": 3, "filters": (4, 8)})
    x = np.random.default_rng(1).random((1, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    runner = Interpreter(model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert()).get_signature_runner()
    out = runner(**{list(runner.get_input_details())[0]: x})
    np.testing.assert_allclose(list(out.values())[0], model(x), atol=1e-5)
