import numpy as np
import pytest

from tfdl.pipelines import DataConfig, build_pipeline, load_sklearn_dataset, make_dataset


def test_digits_ship_with_scikit_learn_as_rows_of_64_pixels():
    data = load_sklearn_dataset("digits")
    assert data.features.shape == (1797, 64)
    assert data.features.dtype == np.float32
    assert data.class_names == tuple(str(d) for d in range(10))
    assert data.input_name == "pixels"


def test_unknown_sklearn_dataset_names_the_known_ones():
    with pytest.raises(ValueError, match="digits"):
        load_sklearn_dataset("mnist")


def test_make_dataset_batches_preprocesses_and_shuffles_reproducibly():
    x = np.arange(40, dtype="float32").reshape(20, 2)
    y = np.arange(20, dtype="int32")
    ds = make_dataset(x, y, batch_size=8, preprocess=lambda t: t * 2, shuffle_buffer=20, seed=7)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [8, 8, 4]
    labels = np.concatenate([b[1] for b in batches])
    assert sorted(labels) == list(range(20))
    features = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(features, x[labels] * 2)
    again = np.concatenate([b[1] for b in make_dataset(x, y, batch_size=8, shuffle_buffer=20, seed=7).as_numpy_iterator()])
    np.testing.assert_array_equal(labels, again)


def test_pipeline_normalizes_with_training_statistics_and_keeps_test_order():
    pipeline = build_pipeline(DataConfig(batch_size=50), seed=0)
    x_train, _ = pipeline.raw("train")
    x_test, y_test = pipeline.raw("test")
    fed = np.concatenate([x for x, _ in pipeline.test.as_numpy_iterator()])
    labels = np.concatenate([y for _, y in pipeline.test.as_numpy_iterator()])
    np.testing.assert_allclose(fed, (x_test - x_train.mean()) / x_train.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, y_test)
    assert pipeline.input_shape == (64,)
    assert len(pipeline.split.train) + len(pipeline.split.validation) + len(pipeline.split.test) == 1797


def test_every_public_name_of_the_package_resolves():
    import tfdl.pipelines

    for name in tfdl.pipelines.__all__:
        assert getattr(tfdl.pipelines, name) is not None, name
