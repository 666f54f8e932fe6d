"""The XOR dataset (`xor`): the lesson that a single linear unit cannot learn every function.

Points scattered around the four corners of the unit square, labelled 1 where
exactly one coordinate is 1. No straight line separates the two classes, so a
perceptron tops out at 3 of 4 corners (accuracy 0.75) while an MLP with one
hidden layer fits them all. A config asks for it by name:

    data: {source: {type: generated, name: xor, examples: 400, params: {noise: 0.1}}}
"""

from __future__ import annotations

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.generated import register_generator

CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=np.float32)


@register_generator("xor")
def make_xor(examples: int, seed: int, noise: float = 0.1) -> ArrayData:
    """Noisy XOR: each corner of the unit square drawn equally often, plus Gaussian noise.

    Args:
        examples: how many points; a multiple of 4 gives exactly as many per
            corner (the rest go to the first corners).
        seed: seeds the corner order and the noise.
        noise: standard deviation of the Gaussian noise added to each
            coordinate; below 0.5 the four clusters stay apart.

    Returns:
        `ArrayData` with float32 features `(x1, x2)`, labels `x1 XOR x2`
        (0 or 1) of the noise-free corner, input name `features`.

    Raises:
        ValueError: fewer than 4 examples, or a negative `noise`.
    """
    if examples < 4:
        raise ValueError(f"xor needs at least 4 examples (one per corner), got {examples}")
    if noise < 0:
        raise ValueError(f"xor: noise is a standard deviation and must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    # Balanced corners, shuffled: a random draw could leave one corner short,
    # and the perceptron's 0.75 ceiling holds exactly only with equal corners.
    corner = rng.permutation(np.arange(examples) % 4)
    points = CORNERS[corner] + rng.normal(0.0, noise, size=(examples, 2)).astype(np.float32)
    labels = (CORNERS[corner, 0] != CORNERS[corner, 1]).astype(np.int32)
    return ArrayData(points.astype(np.float32), labels, ("0", "1"), "features", ("x1", "x2"))
