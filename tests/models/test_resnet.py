"""ResNet v1/v2 with basic and bottleneck blocks: the published layouts, learning, saving, TFLite."""

import keras
import numpy as np
import pytest

from tfdl.models import ResNetConfig, build_model
from tfdl.pipelines import load_sklearn_dataset
from tfdl.schema import ConfigError


def trainable(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


@pytest.mark.parametrize("depth, version, expected", [
    # torchvision's resnet18/resnet50 parameter counts: the same layouts, convs without bias.
    (18, 1, 11_689_512),
    (50, 1, 25_557_032),
])
def test_imagenet_layouts_have_the_published_parameter_counts(depth, version, expected):
    model = build_model("resnet", dict(input_shape=(224, 224, 3), num_classes=1000, depth=depth, version=version))
    assert trainable(model) == expected
    assert model.get_layer("stem").kernel.shape == (7, 7, 3, 64)
    assert model.get_layer("stem_pool") is not None


def test_cifar_resnet20_has_its_three_stages_and_0_27m_parameters():
    model = build_model("resnet", dict(input_shape=(32, 32, 3), num_classes=10, depth=20, base_filters=16))
    # He et al. 2015, table 6: ResNet-20 on CIFAR-10 has 0.27M parameters.
    assert round(trainable(model) / 1e6, 2) == 0.27
    assert model.get_layer("stem").kernel.shape == (3, 3, 3, 16)  # the small stem keeps 32x32
    assert model.get_layer("stage3_block3_out").output.shape[1:] == (8, 8, 64)
    with pytest.raises(ValueError):  # no fourth stage
        model.get_layer("stage4_block1_add")


def test_v2_is_pre_activation_with_a_clean_identity_path():
    model = build_model("resnet", dict(input_shape=(16, 16, 3), num_classes=3, stages=(2, 2), base_filters=8,
                                       version=2))
    # Inside a stage the shortcut is the block's input itself, not a normalized copy.
    add = model.get_layer("stage1_block2_add")
    assert model.get_layer("stage1_block1_add").output in [t for t in add.input]
    assert model.get_layer("post_bn") is not None  # the final BN-ReLU closing the identity path


def test_bottleneck_blocks_expand_four_times():
    model = build_model("resnet", dict(input_shape=(32, 32, 3), num_classes=3, stages=(1, 1), block="bottleneck",
                                       base_filters=8))
    assert model.get_layer("stage1_block1_3").kernel.shape == (1, 1, 8, 32)
    assert model.get_layer("stage2_block1_out").output.shape[1:] == (16, 16, 64)


def test_bad_layouts_and_inputs_are_named():
    with pytest.raises(ValueError, match="depth 21 is neither"):
        ResNetConfig(depth=21)
    with pytest.raises(ConfigError, match="image_shape"):
        from tfdl.models import model_config

        model_config("resnet", dict(input_shape=(64,), image_shape=(8, 8, 2), num_classes=3))
    with pytest.raises(ValueError, match="set model.params.image_shape"):
        build_model("resnet", dict(input_shape=(64,), num_classes=3))


@pytest.mark.parametrize("version", [1, 2])
def test_a_small_resnet_learns_digits(version):
    keras.utils.set_random_seed(0)
    data = load_sklearn_dataset("digits")
    x, y = data.features / 16.0, data.labels
    model = build_model("resnet", dict(input_shape=(64,), image_shape=(8, 8, 1), num_classes=10, stages=(1, 1),
                                       base_filters=8, version=version))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1200], y[:1200], epochs=4, batch_size=64, verbose=0)
    accuracy = model.evaluate(x[1200:], y[1200:], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.85


def test_resnet_round_trips_through_keras_format_and_converts_to_tflite(tmp_path):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model = build_model("resnet", dict(input_shape=(64,), image_shape=(8, 8, 1), num_classes=4, stages=(1, 1),
                                       base_filters=4, version=2))
    x = np.random.default_rng(0).random((3, 64)).astype("float32")
    model.save(tmp_path / "resnet.keras")
    loaded = keras.saving.load_model(tmp_path / "resnet.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    name = list(runner.get_input_details())[0]
    out = runner(**{name: x[:1]})
    np.testing.assert_allclose(list(out.values())[0], model(x[:1]), atol=1e-5)
