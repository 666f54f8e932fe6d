"""The compiled calls the trainer makes: several training steps, and one evaluation pass.

Each replica runs the model's own `train_step` / `test_step`, so a model
that overrides them (a VAE, a GAN) trains under every strategy exactly as it
does in `fit`, with Keras's loss scaling for mixed precision and its per-
replica loss scaling for the global batch. The trainer calls these through
`strategy.run` in its own loop because Keras 3's `fit` does not run under
MultiWorkerMirroredStrategy.

The training data comes from one plain tf.data iterator over the global
batches, on every worker, and each replica takes its slice of the batch:
a plain iterator can be checkpointed (position, shuffle buffer and all),
which the iterators of `experimental_distribute_dataset` cannot when a worker
has several devices, and that is what lets a killed run resume exactly. The
price in a multi-worker run is that every worker reads every global batch.

Metrics are read in cross-replica context at the end of a call: their
variables sum over replicas (and workers) on read, so the figures are those
of the global batch, not of one replica.
"""

from __future__ import annotations

import tensorflow as tf

from tfdl.schema import ConfigError


def resolve_jit_compile(setting, strategy: tf.distribute.Strategy) -> bool:
    """Whether to XLA-compile each replica's step.

    XLA compiles a whole step only when the gradient all-reduce is not in it:
    with one replica per worker. On a TPU the whole call is compiled anyway.
    `auto` compiles on GPU and not on CPU, where XLA is rarely faster for
    these models.
    """
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False
    try:
        local_replicas = len(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list: one replica
        local_replicas = 1
    if setting == "auto":
        return local_replicas == 1 and bool(tf.config.list_logical_devices("GPU"))
    if setting and local_replicas > 1:
        raise ConfigError(
            f"training.jit_compile: true needs one replica per worker (this strategy has {local_replicas}); "
            "set it to auto or false"
        )
    return bool(setting)


def supports_xla(model) -> bool:
    """Whether XLA can compile `model`'s step: false when a layer says it cannot.

    Keras marks a layer `supports_jit = False` when its kernel has no XLA
    form, e.g. an LSTM or GRU that runs on cuDNN on a GPU.

    Args:
        model: a built Keras model.

    Returns:
        True when every layer, nested ones included, supports `jit_compile`.
    """
    return all(getattr(layer, "supports_jit", True) for layer in model._flatten_layers())


class StepFunctions:
    """Compiled training and evaluation calls for `model` under `strategy`.

    Args:
        model: compiled in the strategy's scope.
        strategy: the run's strategy.
        jit_compile: XLA-compile each replica's step (see `resolve_jit_compile`).
    """

    def __init__(self, model, strategy: tf.distribute.Strategy, jit_compile: bool):
        self._model = model
        self._strategy = strategy
        train_step, test_step = model.train_step, model.test_step
        if jit_compile:
            train_step = tf.function(train_step, jit_compile=True, reduce_retracing=True)
            test_step = tf.function(test_step, jit_compile=True, reduce_retracing=True)
        self._train_step, self._test_step = train_step, test_step
        self._split = strategy.num_replicas_in_sync > 1
        self.train = tf.function(self._train, reduce_retracing=True)
        self.evaluate = tf.function(self._evaluate, reduce_retracing=True)
        self.evaluate_steps = tf.function(self._evaluate_steps, reduce_retracing=True)

    def _train(self, iterator, steps: tf.Tensor):
        """Run `steps` training steps; returns the metrics and the first step whose loss was not finite.

        The returned index counts from 0 within this call and is -1 when every
        loss was finite.
        """
        first_bad = tf.constant(-1, tf.int32)
        for i in tf.range(steps):
            logs = self._strategy.run(self._train_step, args=(self._per_replica(next(iterator)),))
            # Each replica's running figures (every loss a model reports: a GAN
            # has two): no collective needed, and a NaN on any replica poisons
            # the shared weights of every one.
            finite = [
                tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32)))
                for value in tf.nest.flatten(logs)
                for v in self._strategy.experimental_local_results(value)
            ]
            bad = tf.logical_not(tf.reduce_all(tf.stack(finite)))
            first_bad = tf.where(tf.logical_and(bad, first_bad < 0), i, first_bad)
        return self._model.get_metrics_result(), first_bad

    def _per_replica(self, batch):
        """Each replica's slice of a global batch (as even as the batch allows)."""
        if not self._split:
            return batch

        def slice_for(context):
            size = tf.shape(tf.nest.flatten(batch)[0])[0]
            share = (size + context.num_replicas_in_sync - 1) // context.num_replicas_in_sync
            start = tf.minimum(context.replica_id_in_sync_group * share, size)
            end = tf.minimum(start + share, size)
            return tf.nest.map_structure(lambda t: t[start:end], batch)

        return self._strategy.experimental_distribute_values_from_function(slice_for)

    def _evaluate(self, dataset):
        """One pass over a (distributed) dataset; a new iterator each call."""
        for batch in dataset:
            self._strategy.run(self._test_step, args=(batch,))
        return self._model.get_metrics_result()

    def _evaluate_steps(self, iterator, steps: tf.Tensor):
        """`steps` evaluation steps from a plain iterator over the global batches.

        The iterator is made outside the compiled call, where making one is
        cheap (see `trainer._validation`); each replica takes its slice.
        """
        for _ in tf.range(steps):
            self._strategy.run(self._test_step, args=(self._per_replica(next(iterator)),))
        return self._model.get_metrics_result()
