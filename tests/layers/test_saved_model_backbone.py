"""SavedModelBackbone: the SavedModel's own outputs and variables, fine-tuning, freezing, BN, saving, export, errors."""

import hashlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from tfdl.export import export_saved_model
from tfdl.layers.saved_model_backbone import SavedModelBackbone

RNG = np.random.default_rng(0)
IMAGES = RNG.random((16, 8, 8, 3)).astype("float32")
LABELS = RNG.integers(0, 2, 16)


def small_cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="embed")(x))
    # Statistics far from a batch's own, so inference mode is told apart from training mode.
    model.get_layer("bn").moving_mean.assign(RNG.normal(size=4).astype("float32"))
    model.get_layer("bn").moving_variance.assign(RNG.uniform(2.0, 4.0, 4).astype("float32"))
    return model


class HubStyleModule(tf.Module):
    """The TF Hub reusable SavedModel API: `__call__(inputs, training=False)`, BN-like centring."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(RNG.normal(size=(3, 2)).astype("float32"), name="dense/kernel")
        self.moving_mean = tf.Variable([5.0, -5.0], trainable=False, name="bn/moving_mean")

    @tf.function
    def __call__(self, inputs, training=False):
        y = tf.matmul(inputs, self.kernel)
        if training:  # batch statistics, and the moving mean would follow them
            return y - tf.reduce_mean(y, axis=0)
        return y - self.moving_mean


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A Keras model and its `model.export` SavedModel (endpoint `serve`)."""
    model = small_cnn()
    path = tmp_path_factory.mktemp("saved") / "cnn"
    model.export(str(path), verbose=False)
    return model, str(path)


@pytest.fixture(scope="module")
def hub_style(tmp_path_factory):
    module = HubStyleModule()
    spec = tf.TensorSpec([None, 3], tf.float32)
    for training in (False, True):
        module.__call__.get_concrete_function(spec, training=training)
    path = tmp_path_factory.mktemp("saved") / "hub_style"
    tf.saved_model.save(module, str(path))
    return module, str(path)


def classifier(backbone, input_shape=(8, 8, 3)):
    inputs = keras.Input(input_shape, name="image")
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(backbone(inputs)))


def values(variables):
    return [np.array(v.numpy()) for v in variables]


def test_layer_computes_what_the_saved_model_computes_and_round_trips(exported, tmp_path):
    model, path = exported
    run_layer_test(SavedModelBackbone(path), IMAGES[:4], tmp_path, expected_shape=(4, 3),
                   reference=np.asarray(model(IMAGES[:4], training=False)), tflite=True)


def test_its_weights_are_the_saved_models_own_variables(exported):
    _, path = exported
    backbone = SavedModelBackbone(path, name="backbone")
    assert [w.path for w in backbone.weights] == [
        "backbone/conv_kernel", "backbone/conv_bias", "backbone/bn_gamma", "backbone/bn_beta",
        "backbone/embed_kernel", "backbone/embed_bias", "backbone/bn_moving_mean", "backbone/bn_moving_variance",
    ]
    assert len(backbone.trainable_weights) == 6 and len(backbone.non_trainable_weights) == 2
    # Writing a weight changes what the SavedModel's function computes: one storage, not a copy.
    before = np.asarray(backbone(IMAGES))
    backbone.weights[4].assign(np.zeros((4, 3), "float32"))
    np.testing.assert_allclose(np.asarray(backbone(IMAGES)), np.broadcast_to(backbone.weights[5].numpy(), (16, 3)))
    assert not np.allclose(before, np.asarray(backbone(IMAGES)))
    assert [name for name, _ in backbone.variable_groups()] == ["conv", "bn", "embed"]


def test_fine_tuning_changes_the_wrapped_variables_and_freezing_keeps_them(exported):
    _, path = exported
    backbone = SavedModelBackbone(path, name="backbone")
    model = classifier(backbone)
    start = values(backbone.weights)
    # Adam's slot names come from the variables' names: the step TFSMLayer fails at.
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(IMAGES, LABELS, batch_size=8, epochs=2, verbose=0)
    tuned = values(backbone.weights)
    changed = {w.path: not np.allclose(a, b) for w, a, b in zip(backbone.weights, start, tuned)}
    assert all(changed[w.path] for w in backbone.trainable_weights), changed
    # BN ran in inference mode: its moving statistics never moved.
    assert not changed["backbone/bn_moving_mean"] and not changed["backbone/bn_moving_variance"]

    backbone.trainable = False
    assert backbone.trainable_weights == [] and len(model.trainable_weights) == 2
    head = values(model.get_layer("probabilities").weights)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(IMAGES, LABELS, batch_size=8, epochs=2, verbose=0)
    for before, after in zip(tuned, values(backbone.weights)):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(head[0], model.get_layer("probabilities").kernel.numpy())


def test_fine_tuned_values_survive_the_keras_format_and_export(exported, tmp_path):
    path = str(shutil.copytree(exported[1], tmp_path / "backbone"))
    model = classifier(SavedModelBackbone(path, name="backbone"))
    untouched = np.asarray(model(IMAGES))
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(IMAGES, LABELS, batch_size=8, epochs=2, verbose=0)
    expected = np.asarray(model(IMAGES))
    assert not np.allclose(untouched, expected, atol=1e-4)

    model.save(tmp_path / "tuned.keras")
    # The file names the SavedModel by path and holds the fine-tuned values.
    reloaded = keras.saving.load_model(tmp_path / "tuned.keras", safe_mode=True)
    assert reloaded.get_layer("backbone").get_config()["path"] == path
    np.testing.assert_allclose(np.asarray(reloaded(IMAGES)), expected, atol=1e-6)

    export = export_saved_model(model, tmp_path / "export")
    shutil.rmtree(path)  # the export holds its own copy of the fine-tuned backbone
    served = tf.saved_model.load(str(export)).signatures["serving_default"]
    np.testing.assert_allclose(served(image=tf.constant(IMAGES))["probabilities"].numpy(), expected, atol=1e-6)


def test_an_endpoint_with_a_training_argument_is_called_in_inference_mode(hub_style):
    module, path = hub_style
    backbone = SavedModelBackbone(path, name="backbone")
    assert [(w.path, w.trainable) for w in backbone.weights] == [
        ("backbone/dense_kernel", True), ("backbone/bn_moving_mean", False)]
    x = RNG.random((6, 3)).astype("float32")
    inference = x @ module.kernel.numpy() - np.array([5.0, -5.0])
    np.testing.assert_allclose(np.asarray(backbone(x, training=True)), inference, atol=1e-5)

    model = classifier(backbone, input_shape=(3,))
    model.compile(keras.optimizers.Adam(0.1), "sparse_categorical_crossentropy")
    model.fit(x, LABELS[:6], epochs=3, verbose=0)
    assert not np.allclose(backbone.weights[0].numpy(), module.kernel.numpy())
    np.testing.assert_array_equal(backbone.weights[1].numpy(), [5.0, -5.0])


def test_a_signature_endpoint_picks_its_output_by_key(tmp_path):
    inputs = keras.Input((4,), name="features")
    low = keras.layers.Dense(3, name="low")(inputs)
    high = keras.layers.Dense(2, name="high")(low)
    encoder = keras.Model(inputs, {"low": low, "high": high})
    path = str(export_saved_model(encoder, tmp_path / "two_outputs"))
    x = RNG.random((5, 4)).astype("float32")
    for key in ("low", "high"):
        backbone = SavedModelBackbone(path, endpoint="serving_default", output_key=key)
        np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(encoder(x)[key]), atol=1e-6)
    with pytest.raises(ValueError, match=r"output_key=None is not an output of endpoint 'serving_default'; "
                                         r"pass one of \['high', 'low'\]"):
        SavedModelBackbone(path, endpoint="serving_default")
    with pytest.raises(ValueError, match=r"output_key='mid' is not an output"):
        SavedModelBackbone(path, endpoint="serving_default", output_key="mid")


def test_bad_paths_endpoints_and_shapes_are_named(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match=r"path '/no/such/folder' does not exist; pass the folder of a TF SavedModel"):
        SavedModelBackbone("/no/such/folder")
    with pytest.raises(ValueError, match=r"holds no saved_model.pb"):
        SavedModelBackbone(str(tmp_path))
    with pytest.raises(ValueError, match=r"has no endpoint 'encode'; pass `endpoint`.*\['serve', 'serving_default'\]"):
        SavedModelBackbone(path, endpoint="encode")
    backbone = SavedModelBackbone(path)
    with pytest.raises(ValueError, match=r"inputs of shape \(None, 8, 8\) do not fit endpoint 'serve'.*"
                                         r"takes \(None, 8, 8, 3\)"):
        backbone(keras.Input((8, 8)))


def test_a_hub_handle_resolves_from_the_cache_and_offline_says_what_to_fetch(exported, tmp_path, monkeypatch):
    model, path = exported
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub_cache"))
    # Nothing listens on port 9: a download fails at once, and no test touches the internet.
    handle = "http://127.0.0.1:9/tfdl/backbone/1"
    with pytest.raises(ValueError) as error:
        SavedModelBackbone(handle)
    message = str(error.value)
    assert f"could not fetch the TF Hub handle '{handle}'" in message
    assert "pass that local folder as `path`" in message and str(tmp_path / "hub_cache") in message

    # What TF Hub's own download leaves in its cache: the handle then resolves offline.
    shutil.copytree(path, tmp_path / "hub_cache" / hashlib.sha1(handle.encode()).hexdigest())
    backbone = SavedModelBackbone(handle)
    assert backbone.get_config()["path"] == handle
    np.testing.assert_allclose(np.asarray(backbone(IMAGES)), np.asarray(model(IMAGES, training=False)), atol=1e-5)


def test_docstring_examples_run():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("tfdl.layers.saved_model_backbone"))
    assert result.attempted > 0 and result.failed == 0, result
