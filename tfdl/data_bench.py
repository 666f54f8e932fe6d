"""`tfdl bench data CONFIG`: how fast a config's pipeline feeds, and whether training would wait for it.

Two figures, measured in the same process one after the other:

- the feed: examples/s of the training dataset alone, iterated after one
  warm-up epoch (the epoch that fills the cache, as in training);
- the model: examples/s the config's model consumes in training steps fed
  from batches already in memory, so the input pipeline costs nothing.

Training is input-bound when the feed is slower than the model. The ratio
says by how much one outruns the other.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import tensorflow as tf

# Batches held in memory to feed the model while timing its training steps.
_MODEL_BATCHES = 16


@dataclass(frozen=True)
class DataBenchResult:
    """Throughputs of the feed and of the model, in examples per second."""

    feed_examples_per_s: float
    model_examples_per_s: float
    batch_size: int

    @property
    def ratio(self) -> float:
        """Feed throughput over model throughput (>= 1: the feed keeps up)."""
        return self.feed_examples_per_s / self.model_examples_per_s

    @property
    def input_bound(self) -> bool:
        return self.ratio < 1.0

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "input_bound": self.input_bound}

    def describe(self) -> str:
        verdict = (
            f"input-bound: the model could train {1 / self.ratio:.1f}x faster than the feed delivers"
            if self.input_bound
            else f"not input-bound: the feed delivers {self.ratio:.1f}x what the model consumes"
        )
        return (
            f"feed  {self.feed_examples_per_s:12,.0f} examples/s\n"
            f"model {self.model_examples_per_s:12,.0f} examples/s (training steps, batch {self.batch_size})\n"
            f"{verdict}"
        )


def feed_throughput(dataset: tf.data.Dataset, *, min_seconds: float = 2.0) -> float:
    """Examples/s of iterating `dataset` (batches of `(x, y)`), after one warm-up pass.

    Whole passes are timed until `min_seconds` have gone by, so every
    stage (shuffle refills, the end-of-epoch cache) is in the figure.
    """
    for _ in dataset:  # warm-up: fills caches and autotunes parallelism
        pass
    examples, started = 0, time.perf_counter()
    while True:
        for _, labels in dataset:
            examples += int(tf.shape(labels)[0])
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return examples / elapsed


def model_throughput(model, dataset: tf.data.Dataset, *, steps: int = 200, class_weight=None) -> float:
    """Examples/s a compiled `model` trains on, fed from batches already in memory.

    The first `fit` call traces and compiles the train step and is not timed.
    """
    batches = dataset.take(_MODEL_BATCHES).cache()
    batch_size = int(tf.shape(next(iter(batches))[1])[0])
    feed = batches.repeat()
    model.fit(feed, steps_per_epoch=steps, epochs=1, verbose=0, class_weight=class_weight, shuffle=False)
    started = time.perf_counter()
    model.fit(feed, steps_per_epoch=steps, epochs=1, verbose=0, class_weight=class_weight, shuffle=False)
    return steps * batch_size / (time.perf_counter() - started)


def bench_data(config, *, min_seconds: float = 2.0, steps: int = 200) -> DataBenchResult:
    """Measure `config`'s training feed and its model, as `tfdl run` would build them."""
    import keras

    from tfdl.models import model_config, model_entry
    from tfdl.pipelines import build_pipeline
    from tfdl.run import model_params_from_data
    from tfdl.tasks import run_task
    from tfdl.training.optimizers import make_optimizer

    keras.utils.set_random_seed(config.seed)
    pipeline = build_pipeline(config.data, config.seed)
    feed = feed_throughput(pipeline.train, min_seconds=min_seconds)
    entry = model_entry(config.model.name)
    loss, metrics = run_task(entry.task).objective(pipeline)
    model = entry.builder(model_config(config.model.name, model_params_from_data(config, pipeline)))
    model.compile(
        optimizer=make_optimizer(config.training.optimizer),
        loss=loss,
        metrics=metrics,
        steps_per_execution=config.training.steps_per_execution,
        jit_compile=config.training.jit_compile,
    )
    consumed = model_throughput(model, pipeline.train, steps=steps, class_weight=pipeline.class_weight)
    return DataBenchResult(feed, consumed, config.data.batch_size)
