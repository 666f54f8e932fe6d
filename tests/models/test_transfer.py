"""The transfer model: keras.applications backbones and their preprocessing, weights (imagenet offline,
a local file, none), a SavedModel backbone, saving and export, and config errors that name the field."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from tfdl.export import export_saved_model
from tfdl.layers import SavedModelBackbone
from tfdl.models import CaffePreprocessing, build_model, model_config
from tfdl.schema import ConfigError

RNG = np.random.default_rng(0)
PIXELS = RNG.uniform(0.0, 255.0, (2, 32, 32, 3)).astype("float32")
TINY = dict(input_shape=(32, 32, 3), num_classes=3, weights="none")
# Nothing listens on port 9 of this machine: a download from it fails at once.
UNREACHABLE = "http://127.0.0.1:9/keras-applications/"


@pytest.mark.parametrize("backbone, extra, preprocess_input", [
    ("mobilenet_v2", {"alpha": 0.35}, keras.applications.mobilenet_v2.preprocess_input),
    ("efficientnet_b0", {}, keras.applications.efficientnet.preprocess_input),
    ("resnet50", {}, keras.applications.resnet50.preprocess_input),
    ("vgg16", {}, keras.applications.vgg16.preprocess_input),
])
def test_each_application_backbone_builds_with_its_own_preprocessing(backbone, extra, preprocess_input):
    model = build_model("transfer", dict(TINY, backbone=backbone, **extra))
    assert model.name == "transfer" and model.output_shape == (None, 3)
    assert isinstance(model.get_layer("backbone"), keras.Model)
    # Inside the model, the same numbers as the application's own preprocess_input.
    names = [layer.name for layer in model.layers]
    preprocessed = model.get_layer("preprocess").output if "preprocess" in names else model.input
    inside = keras.Model(model.input, preprocessed)(PIXELS)
    np.testing.assert_allclose(np.asarray(inside), preprocess_input(PIXELS.copy()), rtol=1e-5, atol=1e-4)


def test_caffe_preprocessing_layer_reference_round_trip_and_export(tmp_path):
    expected = keras.applications.vgg16.preprocess_input(PIXELS.copy())  # Keras's numpy implementation
    run_layer_test(CaffePreprocessing(), PIXELS, tmp_path, expected_shape=PIXELS.shape, reference=expected,
                   atol=1e-4, tflite=True, tflite_atol=1e-4)
    with pytest.raises(ValueError, match=r"expects RGB images with 3 channels last; got input shape \(None, 8, 8, 1\)"):
        CaffePreprocessing()(keras.Input((8, 8, 1)))


def test_imagenet_weights_offline_name_the_file_the_url_and_the_folder(tmp_path, monkeypatch):
    import keras.src.applications.mobilenet_v2 as mobilenet_v2
    import keras.src.backend.config as keras_config

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # an empty Keras cache
    monkeypatch.setattr(mobilenet_v2, "BASE_WEIGHT_PATH", UNREACHABLE)
    with pytest.raises(ConfigError) as error:
        build_model("transfer", dict(TINY, input_shape=(96, 96, 3), alpha=0.35, weights="imagenet"))
    message = str(error.value)
    # Keras's name for MobileNetV2 ImageNet weights: width 0.35, 96-pixel rows, no top.
    file_name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert message.startswith("model.params.weights: the ImageNet weights of backbone mobilenet_v2 could not be")
    assert f"Fetch {file_name} from {UNREACHABLE}{file_name} and put it in {tmp_path / 'models'}/" in message
    assert "Connection refused" in message


def test_imagenet_weights_already_in_the_keras_cache_load_offline(tmp_path, monkeypatch):
    import keras.src.applications.mobilenet_v2 as mobilenet_v2
    import keras.src.backend.config as keras_config
    from keras.src.legacy.saving import legacy_h5_format

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(mobilenet_v2, "BASE_WEIGHT_PATH", UNREACHABLE)
    # Stand-in "ImageNet" weights, in the file and format Keras downloads, where get_file looks first.
    keras.utils.set_random_seed(1)
    source = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3), alpha=0.35)
    (tmp_path / "models").mkdir()
    with h5py.File(tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    keras.utils.set_random_seed(2)
    model = build_model("transfer", dict(TINY, input_shape=(96, 96, 3), alpha=0.35, weights="imagenet"))
    for loaded, expected in zip(model.get_layer("backbone").get_weights(), source.get_weights()):
        np.testing.assert_array_equal(loaded, expected)


def test_weights_from_a_local_file(tmp_path):
    keras.utils.set_random_seed(1)
    donor = build_model("transfer", dict(TINY, backbone="vgg16"))
    path = tmp_path / "vgg16_notop.weights.h5"
    donor.get_layer("backbone").save_weights(path)
    keras.utils.set_random_seed(2)
    model = build_model("transfer", dict(TINY, backbone="vgg16", weights=str(path)))
    for loaded, expected in zip(model.get_layer("backbone").get_weights(), donor.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(loaded, expected)
    with pytest.raises(ConfigError, match=r"model.params: weights '/no/such.h5' is neither imagenet, "
                                          r"none, nor an existing weights file"):
        model_config("transfer", dict(TINY, weights="/no/such.h5"))


@pytest.fixture(scope="module")
def feature_extractor(tmp_path_factory):
    """A small CNN's feature extractor exported as a SavedModel: flat rows in, 16 features out."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,), name="pixels")
    x = keras.layers.Reshape((8, 8, 1))(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    encoder = keras.Model(inputs, features)
    return encoder, str(export_saved_model(encoder, tmp_path_factory.mktemp("backbone") / "1"))


def test_a_saved_model_backbone_through_the_registry_saves_and_exports(feature_extractor, tmp_path):
    encoder, path = feature_extractor
    keras.utils.set_random_seed(0)
    model = build_model("transfer", dict(input_shape=(64,), num_classes=4, backbone="saved_model", backbone_path=path,
                                         input_name="pixels", dense_units=8))
    backbone = model.get_layer("backbone")
    assert isinstance(backbone, SavedModelBackbone) and backbone.get_config()["path"] == path
    x = RNG.random((5, 64)).astype("float32")
    np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(encoder(x)), atol=1e-6)
    assert [layer.name for layer in model.layers][2:] == [
        "head_dropout_hidden", "head_dense", "head_dropout", "probabilities"]  # features are vectors: no pooling

    model.save(tmp_path / "transfer.keras")
    reloaded = keras.saving.load_model(tmp_path / "transfer.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x)), np.asarray(model(x)), atol=1e-6)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "export"))).signatures["serving_default"]
    np.testing.assert_allclose(served(pixels=tf.constant(x))["probabilities"].numpy(), np.asarray(model(x)), atol=1e-6)


def test_a_transfer_model_learns_small_data(feature_extractor):
    from tfdl.pipelines import load_sklearn_dataset

    _, path = feature_extractor
    data = load_sklearn_dataset("digits")
    x, y = data.features / 16.0, data.labels
    keras.utils.set_random_seed(0)
    model = build_model("transfer", dict(input_shape=(64,), num_classes=10, backbone="saved_model", backbone_path=path,
                                         input_name="pixels", dense_units=32, dropout=0.0))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:1200], y[:1200], batch_size=32, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert model.evaluate(x[1200:], y[1200:], verbose=0, return_dict=True)["accuracy"] >= 0.75  # chance: 0.1


@pytest.mark.parametrize("params, message", [
    (dict(backbone="inception"), r"model.params.backbone: Input should be 'mobilenet_v2', 'efficientnet_b0', "
                                 r"'resnet50', 'vgg16' or 'saved_model' \(got 'inception'\)"),
    (dict(backbone="saved_model"), r"backbone saved_model needs backbone_path"),
    (dict(backbone="saved_model", backbone_path="/x", weights="imagenet"), r"weights='imagenet' applies to "
                                                                           r"keras.applications backbones"),
    (dict(backbone_path="/x"), r"backbone_path applies to backbone saved_model, not 'mobilenet_v2'"),
    (dict(backbone="resnet50", alpha=0.5), r"alpha is MobileNetV2's width multiplier; backbone resnet50 has none"),
    (dict(input_shape=(64,)), r"input_shape \[64\]: backbone mobilenet_v2 takes images \(height, width, channels\)"),
    (dict(input_shape=(16, 16, 3)), r"input_shape \[16, 16, 3\]: .* of at least 32x32 pixels"),
    (dict(input_shape=(32, 32, 1), weights="imagenet"), r"input_shape \[32, 32, 1\]: ImageNet weights need 3"),
])
def test_bad_configs_name_the_field(params, message):
    with pytest.raises(ConfigError, match=message):
        model_config("transfer", dict(TINY, **params))


def test_features_of_an_unusable_rank_are_refused(tmp_path):
    inputs = keras.Input((6,), name="features")
    sequence = keras.Model(inputs, keras.layers.Reshape((3, 2))(inputs))
    path = str(export_saved_model(sequence, tmp_path / "sequence"))
    with pytest.raises(ConfigError, match=r"the backbone returns features of shape \(None, 3, 2\); the head takes "
                                          r"feature maps"):
        build_model("transfer", dict(input_shape=(6,), num_classes=2, backbone="saved_model", backbone_path=path))


def test_docstring_examples_run():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("tfdl.models.transfer"))
    assert result.attempted > 0 and result.failed == 0, result
