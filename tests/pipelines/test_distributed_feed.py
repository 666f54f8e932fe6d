"""Feeds under a distribution strategy: global batches split per replica, shard policy by source kind.

Two logical CPU devices must be configured before TensorFlow starts, so the
strategy part runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfdl.pipelines import feed_options, make_dataset

SCRIPT = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfdl.pipelines import DataConfig, build_pipeline

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    per_replica = 16
    pipeline = build_pipeline(DataConfig(batch_size=per_replica), seed=0,
                              global_batch_size=per_replica * strategy.num_replicas_in_sync)
    batch = next(iter(strategy.experimental_distribute_dataset(pipeline.train)))
    x, y = batch
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "global": int(next(iter(pipeline.train))[1].shape[0]),
        "per_replica": [int(t.shape[0]) for t in strategy.experimental_local_results(y)],
    }))
""")


def test_global_batch_is_split_across_replicas():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures == {"replicas": 2, "global": 32, "per_replica": [16, 16]}


def test_in_memory_feeds_shard_by_data_and_keep_order_when_deterministic():
    x = np.arange(10, dtype="float32")[:, None]
    ds = make_dataset(x, np.arange(10), batch_size=4, deterministic=True)
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    assert ds.options().deterministic is True
    assert make_dataset(x, np.arange(10), batch_size=4, deterministic=False).options().deterministic is False


def test_feed_options_refuse_an_unknown_shard_policy():
    assert feed_options(shard_by="file").experimental_distribute.auto_shard_policy.name == "FILE"
    with pytest.raises(ValueError, match="file, data, off"):
        feed_options(shard_by="row")


def test_disk_cache_writes_files_and_replays_them(tmp_path):
    x = np.arange(12, dtype="float32").reshape(6, 2)
    ds = make_dataset(x, np.arange(6), batch_size=3, cache="disk", cache_file=tmp_path / "cache" / "train")
    first = [b[0].numpy() for b in ds]
    assert any((tmp_path / "cache").iterdir())
    np.testing.assert_array_equal(np.concatenate(first), x)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in ds]), x)
