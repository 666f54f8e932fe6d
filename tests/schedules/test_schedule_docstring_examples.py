"""The runnable examples in tfdl.schedules docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["__init__", "cosine_warmup", "cyclic", "exponential_decay", "inverse_sqrt", "step_decay"]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module("tfdl.schedules" if name == "__init__" else f"tfdl.schedules.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result
