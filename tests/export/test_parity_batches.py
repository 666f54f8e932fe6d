"""Parity over a whole test split runs a batch at a time: a 10,000-image split in one call ran out of memory."""

from __future__ import annotations

import numpy as np

from tfdl.export.parity import BATCH, in_batches


def test_in_batches_joins_what_one_call_would_give_and_no_call_sees_more_than_a_batch():
    inputs = {"a": np.arange(2 * BATCH + 7, dtype=np.float32), "b": np.ones((2 * BATCH + 7, 3), np.float32)}
    seen = []

    def call(chunk):
        seen.append(len(chunk["a"]))
        return {"sum": chunk["a"][:, None] + chunk["b"], "first": chunk["a"] * 2}

    out = in_batches(call, inputs)
    np.testing.assert_array_equal(out["sum"], inputs["a"][:, None] + inputs["b"])
    np.testing.assert_array_equal(out["first"], inputs["a"] * 2)
    assert seen == [BATCH, BATCH, 7]


def test_in_batches_of_an_empty_split_gives_empty_outputs():
    out = in_batches(lambda chunk: {"y": chunk["x"] * 2}, {"x": np.zeros((0, 4), np.float32)})
    assert out["y"].shape == (0, 4)
