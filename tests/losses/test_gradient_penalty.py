"""gradient_penalty is exact for critics with known input gradients and is differentiable in the critic."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from tfdl.losses import gradient_penalty

rng = np.random.default_rng(5)
BATCH, SHAPE = 6, (2, 3, 1)
REAL = rng.normal(size=(BATCH, *SHAPE)).astype("float32")
FAKE = rng.normal(size=(BATCH, *SHAPE)).astype("float32")
WEIGHTS = rng.normal(size=(6, 1)).astype("float32")


def linear_critic(kernel=WEIGHTS):
    """f(x) = w . flatten(x) + b: its input gradient is w everywhere."""
    critic = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(1)])
    critic.layers[-1].kernel.assign(kernel)
    critic.layers[-1].bias.assign([0.7])
    return critic


@keras.saving.register_keras_serializable(package="tfdl_test")
class SquaredNorm(keras.layers.Layer):
    """f(x) = sum(x**2) per example: the input gradient is 2x, so the penalty depends on where x_hat lands."""

    def call(self, x):
        return ops.sum(ops.square(x), axis=(1, 2, 3))


@pytest.mark.parametrize("seed", [0, 7, keras.random.SeedGenerator(3)])
@pytest.mark.parametrize("target_norm", [1.0, 2.0])
def test_linear_critic_penalty_is_exactly_norm_of_w_minus_target_squared(seed, target_norm):
    penalty = float(gradient_penalty(linear_critic(), REAL, FAKE, seed=seed, target_norm=target_norm))
    expected = (np.linalg.norm(WEIGHTS.astype("float64")) - target_norm) ** 2
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)


def test_interpolates_with_one_uniform_eps_per_example_and_norms_over_non_batch_axes():
    penalty = float(gradient_penalty(SquaredNorm(), REAL, FAKE, seed=11))
    # An int seed is stateless: the same draw the function made.
    eps = np.asarray(keras.random.uniform((BATCH, 1, 1, 1), seed=11))
    interpolates = eps * REAL + (1 - eps) * FAKE
    norms = np.linalg.norm((2 * interpolates).reshape(BATCH, -1), axis=1)
    np.testing.assert_allclose(penalty, np.mean((norms - 1) ** 2), rtol=1e-5)


def test_seed_generator_draws_new_interpolates_each_call_and_int_seed_repeats():
    generator = keras.random.SeedGenerator(1)
    critic = SquaredNorm()
    first, second = (float(gradient_penalty(critic, REAL, FAKE, seed=generator)) for _ in range(2))
    assert first != second
    assert float(gradient_penalty(critic, REAL, FAKE, seed=5)) == float(gradient_penalty(critic, REAL, FAKE, seed=5))


def test_plain_callable_critic_is_accepted():
    kernel = tf.constant(WEIGHTS)
    penalty = gradient_penalty(lambda x: tf.matmul(tf.reshape(x, (-1, 6)), kernel), REAL, FAKE, seed=0)
    np.testing.assert_allclose(float(penalty), (np.linalg.norm(WEIGHTS) - 1) ** 2, rtol=1e-5)


def test_differentiable_with_respect_to_critic_weights():
    critic = linear_critic()
    kernel = critic.layers[-1].kernel
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(critic, REAL, FAKE, seed=0)
    grad = tape.gradient(penalty, kernel)
    norm = np.linalg.norm(WEIGHTS)
    np.testing.assert_allclose(grad, 2 * (norm - 1) * WEIGHTS / norm, rtol=1e-4)


def test_minimising_it_in_a_compiled_step_drives_the_critic_to_unit_gradient_norm():
    critic = linear_critic(3.0 * WEIGHTS / np.linalg.norm(WEIGHTS))
    # The penalty does not depend on the bias, which would get no gradient.
    kernel = [critic.layers[-1].kernel]
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(kernel)
    seed_generator = keras.random.SeedGenerator(0)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            penalty = gradient_penalty(critic, REAL, FAKE, seed=seed_generator)
        optimizer.apply_gradients(zip(tape.gradient(penalty, kernel), kernel))
        return penalty

    first = float(step())
    for _ in range(40):
        last = float(step())
    assert first == pytest.approx(4.0, rel=1e-4) and last < 1e-6
    assert np.linalg.norm(critic.layers[-1].kernel.numpy()) == pytest.approx(1.0, abs=1e-3)


def test_is_registered_so_it_deserializes_in_safe_mode():
    config = keras.saving.serialize_keras_object(gradient_penalty)
    assert keras.saving.deserialize_keras_object(config, safe_mode=True) is gradient_penalty


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"target_norm must be > 0"):
        gradient_penalty(linear_critic(), REAL, FAKE, target_norm=0.0)
    with pytest.raises(ValueError, match=r"real and fake must have the same shape"):
        gradient_penalty(linear_critic(), REAL, FAKE[:, :1])
