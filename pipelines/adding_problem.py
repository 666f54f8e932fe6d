"""The adding problem (Hochreiter & Schmidhuber, 1997): a long-range memory task for recurrent networks.

Each example is a sequence of `length` steps with two features: a random
value in [0, 1) and a marker that is 1 at exactly two steps, one in each half
of the sequence, and 0 elsewhere. The target is the sum of the two marked
values. Predicting the mean sum, 1.0, scores an MSE of 1/6 (the variance of
the sum of two uniform values); beating it needs a memory that spans about
`length / 2` steps, which LSTM and GRU have and a plain RNN does not.

    data: {source: {type: generated, name: adding_problem, examples: 4000, params: {length: 100}}}
"""

from __future__ import annotations

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.generated import register_generator

# MSE of always predicting the expected sum, 1.0: Var(U1 + U2) = 2 / 12.
BASELINE_MSE = 1.0 / 6.0


@register_generator("adding_problem")
def make_adding_problem(examples: int, seed: int, length: int = 100, input_name: str = "sequence") -> ArrayData:
    """Generate `examples` adding-problem sequences of `length` steps.

    Args:
        examples: how many sequences.
        seed: the same seed gives the same sequences.
        length: steps per sequence (at least 2: one marker per half).
        input_name: the model input's name.

    Returns:
        ArrayData with features float32 [examples, length, 2] (value, marker),
        labels float32 [examples] (the sum of the marked values) and no class names.

    Raises:
        ValueError: `examples` below 1 or `length` below 2.
    """
    if examples < 1 or length < 2:
        raise ValueError(f"adding_problem needs examples >= 1 and length >= 2, got {examples} and {length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(examples, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, size=examples)
    second = rng.integers(half, length, size=examples)
    markers = np.zeros((examples, length), dtype=np.float32)
    rows = np.arange(examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).astype(np.float32)
    return ArrayData(np.stack([values, markers], axis=-1), targets, (), input_name, ("value", "marker"))
