"""Generated datasets by name: registered, configured, checked, and fed like any in-memory source."""

import numpy as np
import pytest

from tfdl.config import parse_config
from tfdl.pipelines import build_pipeline
from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.generated import available_generators, generate, register_generator
from tfdl.schema import ConfigError


@register_generator("test_halfplane")
def _halfplane(examples: int, seed: int, shift: float = 0.0) -> ArrayData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, 2)).astype("float32")
    return ArrayData(x, (x[:, 0] > shift).astype("int32"), ("left", "right"), "point")


def _config(**source):
    return parse_config({"name": "t", "model": {"name": "mlp"},
                         "data": {"source": {"type": "generated", "name": "test_halfplane", **source}}})


def test_a_config_names_a_generator_and_its_parameters():
    config = _config(examples=60, params={"shift": 0.5})
    pipeline = build_pipeline(config.data, seed=3)
    assert pipeline.class_names == ("left", "right")
    assert pipeline.input_name == "point" and pipeline.input_shape == (2,)
    assert sum(pipeline.sizes.values()) == 60
    expected = _halfplane(60, 3, shift=0.5)  # the source's seed defaults to the run's
    x, y = pipeline.raw("test")
    rows = {tuple(r): label for r, label in zip(expected.features, expected.labels)}
    assert [rows[tuple(r)] for r in x] == list(y)


def test_the_source_seed_overrides_the_runs():
    a = generate("test_halfplane", 20, seed=1)
    config = _config(examples=20, seed=1)
    pipeline = build_pipeline(config.data, seed=99)
    assert {tuple(r) for r in pipeline.raw("train")[0]} <= {tuple(r) for r in a.features}


@pytest.mark.parametrize("source, message", [
    ({"params": {"shfit": 1}}, "data.source.params.shfit: generator 'test_halfplane' takes shift"),
    ({"params": {"seed": 1}}, "set examples and seed on data.source itself"),
    ({"name": "nope"}, "unknown generated dataset 'nope'; available: .*test_halfplane"),
    ({"examples": 3}, "examples"),
])
def test_bad_settings_are_named(source, message):
    with pytest.raises(ConfigError, match=message):
        _config(**source)


def test_generators_are_listed():
    assert "test_halfplane" in available_generators()


def test_a_model_task_that_tfdl_run_does_not_drive_is_named():
    from tfdl.tasks import run_task

    assert run_task("classification").name == "classification"
    with pytest.raises(ConfigError, match="a seq2seq model is trained through tfdl.models"):
        run_task("seq2seq")
