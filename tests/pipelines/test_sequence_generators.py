"""The generated sequence datasets (adding problem, noisy sine) and the shipped sentence corpus."""

import numpy as np
import pytest

from tfdl.config import load_config
from tfdl.pipelines import build_pipeline
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.generated import generate
from tfdl.pipelines.sentence_corpus import load_sentences
from tfdl.schema import ConfigError


def test_the_adding_problem_target_is_the_sum_of_the_two_marked_values():
    data = generate("adding_problem", examples=300, seed=3, params={"length": 10})
    values, markers = data.features[..., 0], data.features[..., 1]
    assert data.features.shape == (300, 10, 2) and data.class_names == ()
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :5].sum(axis=1) == 1)  # one marker in each half
    np.testing.assert_allclose(data.labels, (values * markers).sum(axis=1), rtol=1e-6)
    # Predicting the mean sum scores the variance of a sum of two uniforms, 1/6.
    big = generate("adding_problem", examples=20000, seed=0, params={"length": 100})
    assert np.mean((big.labels - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.005)


def test_sine_windows_continue_the_series_they_are_cut_from():
    data = generate("sine", examples=50, seed=1, params={"length": 12, "horizon": 3, "noise": 0.0})
    assert data.features.shape == (50, 12, 1) and data.labels.shape == (50, 3)
    window = data.features[..., 0]
    # A noise-free sine obeys s[t+1] = 2 cos(w) s[t] - s[t-1]; fit w on the window, extend it.
    two_cos = (window[:, 2] + window[:, 0]) / window[:, 1]
    extended = [window[:, -2], window[:, -1]]
    for _ in range(3):
        extended.append(two_cos * extended[-1] - extended[-2])
    np.testing.assert_allclose(np.stack(extended[2:], axis=1), data.labels, atol=1e-3)


def test_generators_refuse_bad_parameters():
    with pytest.raises(ValueError, match="length >= 2"):
        generate("adding_problem", examples=10, seed=0, params={"length": 1})
    with pytest.raises(ValueError, match="noise"):
        generate("sine", examples=10, seed=0, params={"noise": -1.0})
    with pytest.raises(ConfigError, match="data.source.params.lenght"):
        generate("sine", examples=10, seed=0, params={"lenght": 5})
    with pytest.raises(ValueError, match="at most that"):
        generate("sentences", examples=1000, seed=0)


def test_the_shipped_corpus_has_four_topics_of_100_distinct_sentences():
    corpus = load_sentences()
    assert corpus.class_names == ("cooking", "sports", "technology", "weather")
    assert np.bincount(corpus.labels).tolist() == [100, 100, 100, 100]
    assert len(set(corpus.features)) == 400 and all(s.strip() == s and s for s in corpus.features)
    part = generate("sentences", examples=40, seed=0)
    assert len(part) == 40 and set(part.features) <= set(corpus.features)


def test_regression_data_split_without_stratifying_and_refuse_it():
    config = load_config("sine_forecaster", ["data.source.examples=100"]).data
    pipeline = build_pipeline(config, seed=0)
    x, y = next(iter(pipeline.train))
    assert x.shape[1:] == (40, 1) and y.dtype == "float32"
    assert pipeline.class_names == () and sum(pipeline.sizes.values()) == 100
    with pytest.raises(DataError, match="set data.split.stratify: false"):
        build_pipeline(load_config("sine_forecaster", ["data.source.examples=100", "data.split.stratify=true"]).data, 0)
