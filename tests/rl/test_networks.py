"""The RL networks and their two heads: values by hand, `.keras` round trips under safe_mode."""

import keras
import numpy as np

from tfdl.rl.heads import DuelingCombine, StateIndependentLogStd
from tfdl.rl.networks import build_actor_critic, build_gaussian_actor_critic, build_q_network


def test_dueling_combine_hand_values():
    out = DuelingCombine()([np.array([[1.0], [0.0]]), np.array([[1.0, 3.0], [2.0, 2.0]])])
    np.testing.assert_allclose(np.asarray(out), [[0.0, 2.0], [0.0, 0.0]])  # V + A - mean(A)


def test_log_std_is_state_independent_and_learnable():
    layer = StateIndependentLogStd(2, initial_value=-0.5)
    out = np.asarray(layer(np.random.default_rng(0).normal(size=(3, 4))))
    np.testing.assert_allclose(out, np.full((3, 2), -0.5))
    assert len(layer.trainable_weights) == 1


def _round_trip(model, tmp_path, obs_dim):
    x = np.random.default_rng(1).normal(size=(5, obs_dim)).astype("float32")
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    before, after = model({"observation": x}), loaded({"observation": x})
    assert set(before) == set(after)
    for key in before:
        np.testing.assert_allclose(np.asarray(before[key]), np.asarray(after[key]), atol=1e-6)
    return before


def test_models_round_trip_through_keras_files(tmp_path):
    q = _round_trip(build_q_network(4, 3, (16,), dueling=True), tmp_path, 4)
    assert q["q_values"].shape == (5, 3)
    ac = _round_trip(build_actor_critic(4, 2, (16, 16)), tmp_path, 4)
    assert ac["logits"].shape == (5, 2) and ac["value"].shape == (5, 1)
    gaussian = build_gaussian_actor_critic(3, 2, (16,), log_std_init=-1.0)
    out = _round_trip(gaussian, tmp_path, 3)
    np.testing.assert_allclose(np.asarray(out["log_std"]), -1.0)
