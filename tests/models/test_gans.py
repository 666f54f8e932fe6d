"""The GAN family: players' shapes and units, losses against hand-computed values, the optimizers, learning, round trips."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdl.models import build_model
from tfdl.models.conditional_gan import ConditionalGAN
from tfdl.models.gan import GAN, GANConfig, build_discriminator, build_generator
from tfdl.models.wgan import WGAN
from tfdl.schema import ConfigError

TINY = {"input_shape": (64,), "latent_dim": 4, "generator_filters": (8, 4), "discriminator_filters": (4, 8),
        "discriminator_dropout": 0.0, "seed": 3}


def _gan(name: str, optimizer="adam", **params):
    model = build_model(name, {**TINY, **params})
    model.compile(optimizer=optimizer)
    return model


def _batch(n: int = 8, value: float | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.full((n, 64), value, "float32") if value is not None else rng.uniform(0, 16, (n, 64)).astype("float32")
    return tf.constant(x), tf.constant(np.arange(n, dtype="int32") % 2)


def _zero_scores(model) -> None:
    """Make the discriminator score every image 0."""
    layer = model.discriminator.get_layer("score")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


def test_generator_output_spans_pixel_range_and_discriminator_maps_it_to_unit_range():
    config = GANConfig(**TINY, pixel_range=(0.0, 16.0))
    generator = build_generator(config)
    pixels = generator.get_layer("to_pixels")
    kernel, bias = pixels.get_weights()
    noise = np.ones((2, 4), "float32")
    for bias_value, expected in ((50.0, 16.0), (-50.0, 0.0), (0.0, 8.0)):  # tanh saturates at +-1, 0 at 0
        pixels.set_weights([np.zeros_like(kernel), np.full_like(bias, bias_value)])
        out = np.asarray(generator(noise))
        assert out.shape == (2, 8, 8, 1)
        np.testing.assert_allclose(out, expected, atol=1e-5)
    discriminator = build_discriminator(config)
    to_unit = keras.Model(discriminator.input, discriminator.get_layer("to_unit_range").output)
    np.testing.assert_allclose(np.asarray(to_unit(np.stack([np.full((8, 8, 1), v, "float32") for v in (0, 8, 16)])))
                               [:, 0, 0, 0], [-1.0, 0.0, 1.0], atol=1e-6)
    assert discriminator.output_shape == (None, 1)


def test_conditional_players_take_labels():
    config = GANConfig(**TINY)
    generator, discriminator = build_generator(config, num_classes=3), build_discriminator(config, num_classes=3)
    labels = np.array([0, 1, 2, 0, 1], "int32")
    images = np.asarray(generator([np.zeros((5, 4), "float32"), labels]))
    assert images.shape == (5, 8, 8, 1)
    assert discriminator([images, labels]).shape == (5, 1)


@pytest.mark.parametrize("name, params, message", [
    ("dcgan", {"latent_dimm": 4}, "latent_dimm"),
    ("dcgan", {"pixel_range": (16.0, 0.0)}, "high > low"),
    ("dcgan", {"image_shape": (6, 6, 1), "input_shape": (36,), "generator_filters": (8, 4, 2)}, "divide by 4"),
    ("dcgan", {"input_shape": (60,)}, "image_shape"),
    ("dcgan", {"label_smoothing": 0.7}, "label_smoothing"),
    ("wgan", {"discriminator_normalization": "batch"}, "layer or none"),
    ("wgan", {"n_critic": 0}, "n_critic"),
    ("conditional_gan", {"num_classes": 1}, "num_classes"),
])
def test_bad_settings_name_the_field(name, params, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, {**TINY, **params})


def test_betas_on_an_optimizer_without_them_are_refused():
    model = build_model("dcgan", {**TINY, "beta_1": 0.5})
    with pytest.raises(ValueError, match="beta_1.*SGD"):
        model.compile(optimizer=keras.optimizers.SGD(0.1))


def test_compile_makes_and_builds_the_generators_optimizer_and_the_model_carries_its_slots():
    model = build_model("dcgan", {**TINY, "generator_learning_rate": 0.003, "beta_1": 0.5})
    model.compile(optimizer=keras.optimizers.Adam(0.001))
    d_opt, g_opt = model.optimizer, model.g_optimizer
    assert d_opt.built and g_opt.built and d_opt is not g_opt
    assert math.isclose(float(d_opt.learning_rate), 0.001, rel_tol=1e-6)
    assert math.isclose(float(g_opt.learning_rate), 0.003, rel_tol=1e-6)
    assert d_opt.beta_1 == g_opt.beta_1 == 0.5
    # Adam keeps two slots per weight: the discriminator's optimizer holds none for the generator.
    assert len(d_opt.variables) == 2 + 2 * len(model.discriminator.trainable_variables)
    model_variable_ids = {id(v) for v in model.variables}
    assert all(id(v) in model_variable_ids for v in g_opt.variables)


def test_gan_losses_equal_hand_computed_values_for_a_discriminator_that_scores_zero():
    model = _gan("dcgan", label_smoothing=0.1)
    _zero_scores(model)
    logs = {k: float(v) for k, v in model.test_step(_batch()).items()}
    # Sigmoid(0) = 1/2: BCE(t, 1/2) = log 2 for any target t.
    assert logs["d_loss"] == pytest.approx(2 * math.log(2), abs=1e-5)
    assert logs["g_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert logs["loss"] == pytest.approx(3 * math.log(2), abs=1e-5)


def test_wgan_gp_losses_equal_hand_computed_values_for_a_constant_critic():
    model = _gan("wgan", lipschitz="gradient_penalty", gradient_penalty_weight=10.0)
    _zero_scores(model)
    logs = {k: float(v) for k, v in model.test_step(_batch()).items()}
    # A constant critic: no score gap, and a zero input gradient, so the penalty is (0 - 1)^2 = 1.
    assert logs["wasserstein"] == pytest.approx(0.0, abs=1e-6)
    assert logs["gradient_penalty"] == pytest.approx(1.0, abs=1e-5)
    assert logs["d_loss"] == pytest.approx(10.0, abs=1e-4)
    assert logs["g_loss"] == pytest.approx(0.0, abs=1e-6)


def test_one_train_step_moves_both_players_once_each():
    model = _gan("dcgan")
    before_g = [w.copy() for w in model.generator.get_weights()]
    before_d = [w.copy() for w in model.discriminator.get_weights()]
    logs = model.train_step(_batch())
    assert set(logs) == {"loss", "d_loss", "g_loss"}
    assert int(model.optimizer.iterations) == 1 and int(model.g_optimizer.iterations) == 1
    assert any(not np.allclose(a, b) for a, b in zip(before_g, model.generator.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(before_d, model.discriminator.get_weights()))


def test_wgan_takes_n_critic_steps_per_generator_step_and_clipping_bounds_every_critic_weight():
    model = _gan("wgan", optimizer=keras.optimizers.RMSprop(0.5), lipschitz="clipping", n_critic=3, clip_value=0.02)
    model.train_step(_batch())
    model.train_step(_batch(seed=1))
    assert int(model.optimizer.iterations) == 6 and int(model.g_optimizer.iterations) == 2
    largest = max(float(np.abs(w).max()) for w in model.discriminator.get_weights())
    assert largest == pytest.approx(0.02, rel=1e-6)  # a large learning rate pushes weights to the bound


def _fit(model, x, y, steps: int, batch: int = 32):
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().shuffle(256, seed=0).batch(batch)
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)


def test_conditional_gan_learns_to_draw_the_class_asked_for():
    # Class 0 images are all 3s, class 1 images all 13s: the generator must read its label.
    keras.utils.set_random_seed(0)
    model = build_model("conditional_gan", {**TINY, "num_classes": 2, "beta_1": 0.5})
    model.compile(optimizer=keras.optimizers.Adam(0.005), steps_per_execution=50)
    labels = np.arange(256, dtype="int32") % 2
    x = np.where(labels[:, None] == 0, 3.0, 13.0).astype("float32") * np.ones((1, 64), "float32")
    noise = np.random.default_rng(1).standard_normal((64, 4)).astype("float32")
    start = [float(model.generate(noise, np.full(64, c)).mean()) for c in (0, 1)]
    _fit(model, x, labels, steps=150)
    means = [float(model.generate(noise, np.full(64, c)).mean()) for c in (0, 1)]
    assert abs(start[0] - start[1]) < 2.0  # untrained: the label barely matters
    assert means[0] == pytest.approx(3.0, abs=1.5) and means[1] == pytest.approx(13.0, abs=1.5)


@pytest.mark.parametrize("name, params", [("dcgan", {}), ("wgan", {"n_critic": 2, "beta_1": 0.5, "beta_2": 0.9})])
def test_unconditional_gans_learn_the_data_level(name, params):
    keras.utils.set_random_seed(0)
    model = build_model(name, {**TINY, **params})
    model.compile(optimizer=keras.optimizers.Adam(0.005), steps_per_execution=50)
    x = np.full((256, 64), 12.0, "float32")
    noise = np.random.default_rng(1).standard_normal((64, 4)).astype("float32")
    assert abs(float(model.generate(noise).mean()) - 12.0) > 2.0
    _fit(model, x, np.zeros(256, "int32"), steps=150)
    assert float(model.generate(noise).mean()) == pytest.approx(12.0, abs=1.5)


@pytest.mark.parametrize("name, params, cls", [
    ("dcgan", {}, GAN), ("conditional_gan", {"num_classes": 3}, ConditionalGAN),
    ("wgan", {"lipschitz": "clipping"}, WGAN),
])
def test_keras_round_trip_with_safe_mode(tmp_path, name, params, cls):
    model = _gan(name, **params)
    model.train_step(_batch())
    noise = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    labels = np.array([0, 1, 2]) if "num_classes" in params else None
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is cls and loaded.config == model.config
    np.testing.assert_array_equal(loaded.generate(noise, labels), model.generate(noise, labels))
    assert loaded.g_optimizer is not None  # compiled again from its compile config


def test_generate_refuses_bad_inputs():
    model = _gan("conditional_gan", num_classes=3)
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        model.generate(np.zeros((2, 5), "float32"), np.array([0, 1]))
    with pytest.raises(ValueError, match="conditional: pass labels"):
        model.generate(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"in \[0, 2\]"):
        model.generate(np.zeros((2, 4), "float32"), np.array([0, 3]))
    with pytest.raises(ValueError, match="unconditional"):
        _gan("dcgan").generate(np.zeros((2, 4), "float32"), np.array([0, 1]))
