"""One factory for the tf.distribute strategy a config asks for.

Every strategy a config can name is built here, and each one that needs
something from outside (a cluster in `TF_CONFIG`, a TPU) checks for it first
and fails with a message that says what is missing, instead of a hang or a
traceback from deep inside TensorFlow.
"""

from __future__ import annotations

import glob
import json
import os
import threading
from typing import Sequence

import tensorflow as tf

from tfdl.schema import ConfigError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")

# How long to wait for a named TPU to answer before giving up.
TPU_CONNECT_SECONDS = 300.0


def make_strategy(
    name: str = "auto", devices: Sequence[str] | None = None, tpu: str | None = None
) -> tf.distribute.Strategy:
    """Create the strategy named by the training config.

    `auto` picks MirroredStrategy when several GPUs are visible and the
    default strategy otherwise. Models, optimizers and metrics must be created
    inside `strategy.scope()`.

    Args:
        name: one of `STRATEGIES`.
        devices: devices for `one_device` (the first) or `mirrored`.
        tpu: for `tpu`, the TPU's name or `grpc://` address, or `local`.

    Raises:
        ConfigError: an unknown name, a `multi_worker` run without a usable
            `TF_CONFIG`, or a `tpu` run on a machine that has no TPU.
    """
    # Multi-worker and TPU strategies configure the runtime, so they must come
    # before anything (even listing devices) starts it.
    if name == "multi_worker":
        cluster_from_environment()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(tpu)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        device = devices[0] if devices else ("/gpu:0" if gpus else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices) if devices else None)
    raise ConfigError(f"training.strategy: unknown strategy {name!r}; use {', '.join(STRATEGIES)}")


def cluster_from_environment() -> dict:
    """The `TF_CONFIG` of a multi-worker run, checked.

    Raises:
        ConfigError: `TF_CONFIG` is unset, not JSON, or its task is not in
            its cluster.
    """
    example = (
        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "training.strategy multi_worker: the TF_CONFIG environment variable is not set; set it on "
            f"every worker to the cluster and that worker's task, e.g. {example} "
            "(Kubernetes: docker/k8s/ sets it per worker)"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(f"TF_CONFIG needs a 'cluster' and a 'task' object; expected e.g. {example}")
    members = cluster.get(task.get("type"))
    index = task.get("index")
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise ConfigError(
            f"TF_CONFIG: task {task!r} is not in the cluster {cluster!r}; the task's type must be a "
            "key of the cluster and its index a position in that list"
        )
    return config


def _tpu_strategy(tpu: str | None) -> tf.distribute.TPUStrategy:
    target = tpu or os.environ.get("TPU_NAME")
    if not target:
        raise ConfigError(
            "training.strategy tpu: no TPU named; set training.tpu to the TPU's name or grpc:// "
            "address, `local` on a TPU VM, or set the TPU_NAME environment variable"
        )
    if target == "local" and not (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        raise ConfigError(
            "training.strategy tpu with tpu: local, but this machine has no TPU device (/dev/accel* or "
            "/dev/vfio); run on a TPU VM, or name a remote TPU with training.tpu"
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=target)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(f"training.tpu {target!r}: cannot resolve the TPU ({error})") from None
    _connect_tpu(resolver, target)
    return tf.distribute.TPUStrategy(resolver)


def _connect_tpu(resolver, target: str, seconds: float = TPU_CONNECT_SECONDS) -> None:
    """Initialize the TPU system, giving up after `seconds` instead of hanging."""
    failure: list[BaseException] = []

    def connect():
        try:
            if target != "local":
                tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as error:  # reported below, in the caller's thread
            failure.append(error)

    worker = threading.Thread(target=connect, daemon=True, name="tfdl-tpu-connect")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ConfigError(f"training.tpu {target!r}: no answer from the TPU within {seconds:.0f} s")
    if failure:
        raise ConfigError(f"training.tpu {target!r}: the TPU system did not start ({failure[0]})")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (checkpoints, logs, the export).

    In a multi-worker run that is the `chief` task, or worker 0 when the
    cluster has no chief; every other strategy runs in one process.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """A short human description by the public API's name, e.g. `MirroredStrategy (2 replicas)`."""
    # Named here, not by __name__: MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
    public = (
        (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
        (tf.distribute.MirroredStrategy, "MirroredStrategy"),
        (tf.distribute.TPUStrategy, "TPUStrategy"),
        (tf.distribute.OneDeviceStrategy, "OneDeviceStrategy"),
    )
    name = next((label for kind, label in public if isinstance(strategy, kind)), "the default strategy")
    replicas = strategy.num_replicas_in_sync
    return f"{name} ({replicas} replica{'s' if replicas != 1 else ''})"
