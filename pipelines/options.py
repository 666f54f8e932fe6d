"""tf.data options every tfdl feed carries: determinism and how a strategy shards it.

Under a distribution strategy with several workers, each worker must read a
different part of the data. Sources made of files shard by file (each worker
reads whole files, no wasted reads); in-memory examples shard by data (each
worker keeps every n-th element). Batches are global: a strategy splits each
one across its replicas, so per-replica batch = global batch / replicas.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf

_SHARD_POLICIES = {
    "file": tf.data.experimental.AutoShardPolicy.FILE,
    "data": tf.data.experimental.AutoShardPolicy.DATA,
    "off": tf.data.experimental.AutoShardPolicy.OFF,
}


def feed_options(deterministic: bool = True, shard_by: Literal["file", "data", "off"] = "data") -> tf.data.Options:
    """Options for a feed.

    Args:
        deterministic: parallel stages keep the input order (reproducible
            runs); false lets tf.data yield whichever element is ready first.
        shard_by: `file`, `data` or `off`, the auto-shard policy used by
            multi-worker strategies.
    """
    if shard_by not in _SHARD_POLICIES:
        raise ValueError(f"unknown shard policy {shard_by!r}; use {', '.join(_SHARD_POLICIES)}")
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = _SHARD_POLICIES[shard_by]
    return options
