"""The runnable examples in tfdl.losses docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["crossentropy_dice", "dice", "elbo", "focal", "gaussian_kl", "gradient_penalty", "masked_sparse_crossentropy", "wasserstein"]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(f"tfdl.losses.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0, result
