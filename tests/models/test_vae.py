import keras
import numpy as np

from tfdl.models import build_model
from tfdl.models.vae import VAE, plot_vae
from tfdl.pipelines import load_sklearn_dataset


def digits01():
    data = load_sklearn_dataset("digits")
    return data.features / 16.0, data.labels


def test_vae_learns_digits_reconstructs_samples_and_interpolates(tmp_path):
    keras.utils.set_random_seed(0)
    x, _ = digits01()
    train, held_out = x[:1500], x[1500:]
    model = build_model("vae", {"input_shape": [64], "latent_dim": 4})
    model.compile(keras.optimizers.Adam(5e-3))
    history = model.fit(train, epochs=40, batch_size=64, validation_data=(held_out,), verbose=0).history
    assert history["val_reconstruction"][-1] < 0.75 * history["val_reconstruction"][0]
    assert history["kl"][-1] > 0.5  # the latent code is used, not collapsed to the prior

    # Reconstructions of unseen digits are far closer to their input than the mean digit is.
    reconstruction = model.reconstruct(held_out)
    error = np.mean((reconstruction - held_out) ** 2)
    baseline = np.mean((train.mean(axis=0) - held_out) ** 2)
    assert error < 0.6 * baseline

    samples = model.sample(16, seed=1)
    assert samples.shape == (16, 64) and 0.0 <= samples.min() and samples.max() <= 1.0
    path = model.interpolate(held_out[0], held_out[1], steps=5)
    assert path.shape == (5, 64)
    np.testing.assert_allclose(path[0], model.reconstruct(held_out[:1])[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], model.reconstruct(held_out[1:2])[0], atol=1e-5)

    plots = plot_vae(model, held_out, (8, 8), tmp_path)
    for png in plots.values():
        assert png.read_bytes()[:4] == b"\x89PNG"

    model.save(tmp_path / "vae.keras")
    reloaded = keras.saving.load_model(tmp_path / "vae.keras", safe_mode=True)
    assert isinstance(reloaded, VAE)
    np.testing.assert_allclose(reloaded.reconstruct(held_out[:8]), reconstruction[:8], atol=1e-6)


def test_vae_inference_is_deterministic_and_training_samples():
    model = build_model("vae", {"input_shape": [64], "latent_dim": 2, "seed": 3})
    x = digits01()[0][:4]
    np.testing.assert_array_equal(model.reconstruct(x), model.reconstruct(x))
    a = np.asarray(model(x, training=True)["reconstruction"])
    b = np.asarray(model(x, training=True)["reconstruction"])
    assert not np.allclose(a, b)
