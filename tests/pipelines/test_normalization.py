import numpy as np

from tfdl.pipelines import fit_normalization


def test_global_normalization_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 2.0, size=(200, 4)).astype("float32")
    layer = fit_normalization(train, "global")
    other = np.full((3, 4), 100.0, dtype="float32")
    expected = (other - train.mean()) / train.std()
    np.testing.assert_allclose(np.asarray(layer(other)), expected, rtol=1e-5)


def test_per_feature_normalization_standardizes_each_column():
    rng = np.random.default_rng(1)
    train = rng.normal([0.0, 10.0, -3.0], [1.0, 5.0, 0.5], size=(500, 3)).astype("float32")
    out = np.asarray(fit_normalization(train, "per_feature")(train))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-4)


def test_a_feature_constant_in_training_is_centred_not_blown_up():
    train = np.zeros((10, 2), dtype="float32")
    train[:, 1] = np.arange(10)
    out = np.asarray(fit_normalization(train, "per_feature")(np.array([[3.0, 0.0]], dtype="float32")))
    assert out[0, 0] == 3.0


def test_none_means_no_layer():
    assert fit_normalization(np.ones((4, 2)), "none") is None
