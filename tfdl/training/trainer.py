"""Training under any tf.distribute strategy, resumable to the bit.

One loop serves every strategy, from the default one to several workers and
TPUs: each replica runs the model's own `train_step` (see `steps.py`), so
the same config and code train on one CPU or a cluster. Every run gets early
stopping, a best and a last checkpoint, TensorBoard logs, a CSV history, a
stop with a report on a non-finite loss, and a backup it resumes from when
killed (see `backup.py`). The model returned holds the weights of the best
epoch (lowest `val_loss`, or the early-stopping monitor).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tensorflow as tf

from tfdl.schema import ConfigError
from tfdl.training.backup import Backup
from tfdl.training.config import TrainingConfig
from tfdl.training.errors import Preempted, TrainingDiverged
from tfdl.training.optimizers import make_optimizer
from tfdl.training.precision import output_dtype_warning, resolve_precision, set_precision
from tfdl.training.records import EpochRecords
from tfdl.training.steps import StepFunctions, resolve_jit_compile, supports_xla
from tfdl.training.strategy import is_chief

HIGHER_IS_BETTER = ("accuracy", "auc", "precision", "recall", "f1")


@dataclass
class TrainResult:
    """The trained model, holding the weights of its best epoch, and how training went."""

    model: object
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    seconds: float
    checkpoints: dict[str, Path] = field(default_factory=dict)
    resumed_from_step: int = 0
    precision: str = "float32"
    jit_compile: bool = False


def _verbosity(config: TrainingConfig) -> int:
    import sys

    if config.verbose != "auto":
        return config.verbose
    return 1 if sys.stdout.isatty() else 2


def _steps_in(dataset: tf.data.Dataset) -> int:
    steps = int(dataset.cardinality())
    if steps == tf.data.INFINITE_CARDINALITY:
        raise ValueError("the training data is infinite; give a dataset that ends after one epoch")
    if steps == tf.data.UNKNOWN_CARDINALITY:  # e.g. a filtered stream: count it once
        steps = int(dataset.reduce(0, lambda count, _: count + 1))
    if steps == 0:
        raise ValueError("the training data is empty")
    return steps


def _validation(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy, steps: StepFunctions) -> Callable[[], dict]:
    """The epoch's evaluation pass over `dataset`, as a call returning the metrics.

    On one worker, a dataset of known length is read through a plain
    iterator made each epoch outside the compiled call, with tf.data's
    autotuning off: about a millisecond, where iterating the dataset inside
    the compiled call cost 60-75 ms an epoch (measured, TF 2.21), more than a
    small validation set's evaluation. Without autotuning, parallel maps run
    on every core and prefetch buffers still grow on demand. Several workers
    (and TPUs) iterate a distributed dataset, which shards it and ends together.
    """
    batches = int(dataset.cardinality())
    several_workers = isinstance(strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy))
    if batches > 0 and not several_workers:
        options = tf.data.Options()
        options.autotune.enabled = False
        dataset = dataset.with_options(options)
        length = tf.constant(batches, tf.int32)
        return lambda: steps.evaluate_steps(iter(dataset), length)
    distributed = strategy.experimental_distribute_dataset(dataset)
    return lambda: steps.evaluate(distributed)


def _with_class_weight(dataset: tf.data.Dataset, class_weight: dict[int, float] | None) -> tf.data.Dataset:
    if not class_weight:
        return dataset
    table = tf.constant([class_weight.get(i, 1.0) for i in range(max(class_weight) + 1)], tf.float32)

    def add_weights(x, y):
        return x, y, tf.gather(table, tf.cast(tf.reshape(y, [-1]), tf.int32))

    return dataset.map(add_weights, num_parallel_calls=tf.data.AUTOTUNE)


def _build_state(model, element_spec) -> None:
    """Create the metric and optimizer variables now, so the backup can hold them.

    Keras creates them lazily on the first step; `_symbolic_build` is what
    `fit` calls to create them up front from the data's shapes.
    """
    model._symbolic_build(data_batch=element_spec)


class _EarlyStopping:
    def __init__(self, monitor: str, patience: int | None, min_delta: float):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.higher = monitor.removeprefix("val_").endswith(HIGHER_IS_BETTER)
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0

    def improved(self, score: float, epoch: int) -> bool:
        better = self.best is None or (
            score > self.best + self.min_delta if self.higher else score < self.best - self.min_delta
        )
        if better:
            self.best, self.best_epoch, self.wait = score, epoch, 0
        else:
            self.wait += 1
        return better

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


def train(
    build: Callable[[], object],
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    config: TrainingConfig,
    strategy: tf.distribute.Strategy,
    run_dir: Path,
    loss,
    metrics: list | None,
    class_weight: dict[int, float] | None = None,
    log: Callable[[str], None] = print,
    epoch_end: Callable[[int, object], None] | None = None,
) -> TrainResult:
    """Build the model in the strategy's scope, compile it and train it.

    Args:
        build: makes the uncompiled model; called inside `strategy.scope()`.
        train_data, validation_data: batched with the global batch size; one
            pass over `train_data` is an epoch.
        config: the training config.
        strategy: from `make_strategy`.
        run_dir: checkpoints, logs, history and the backup go here.
        loss, metrics: Keras identifiers (or objects) chosen by the model's
            task; `loss` may be None for a model whose `train_step` computes it.
        class_weight: per-class loss weights (the pipeline's, for imbalanced data).
        log: where notes (resuming, warnings) go.
        epoch_end: called as `epoch_end(epoch, model)` after each epoch's
            validation (epoch counts from 1), e.g. to draw samples.

    Returns:
        The model with its best epoch's weights, and the run's record.

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
        Preempted: a SIGTERM arrived; the backup was saved first.
    """
    run_dir = Path(run_dir)
    chief = is_chief(strategy)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    precision = resolve_precision(config.mixed_precision, strategy)
    set_precision(precision)
    jit_compile = resolve_jit_compile(config.jit_compile, strategy)
    replicas = strategy.num_replicas_in_sync
    train_data = _with_class_weight(train_data, class_weight)
    steps_per_epoch = _steps_in(train_data)

    with strategy.scope():
        model = build()
        model.compile(
            optimizer=make_optimizer(config.optimizer, scale=replicas if config.scale_learning_rate else 1),
            loss=loss,
            metrics=metrics,
        )
        _build_state(model, train_data.element_spec)
    warning = output_dtype_warning(model)
    if warning:
        log(f"WARNING: {warning}")
    if jit_compile and not supports_xla(model):
        if config.jit_compile is True:
            raise ConfigError(
                "training.jit_compile: true, but a layer of this model (e.g. a cuDNN LSTM or GRU on a GPU) has no "
                "XLA kernel; set it to auto or false"
            )
        jit_compile = False  # auto: compile what can be compiled, which is not this model

    iterator = iter(train_data.repeat())  # plain, so the backup can hold it; see steps.py
    steps = StepFunctions(model, strategy, jit_compile)
    evaluate = _validation(validation_data, strategy, steps)
    backup = None
    if config.backup is not None:
        backup = Backup(run_dir / "backup", model, model.optimizer, iterator, strategy, chief, config.backup.keep)
    checkpoints = {
        "best": run_dir / "checkpoints" / "best.weights.h5",
        "last": run_dir / "checkpoints" / "last.weights.h5",
    }
    checkpoints["best"].parent.mkdir(parents=True, exist_ok=True)
    monitor = config.early_stopping.monitor if config.early_stopping else "val_loss"
    stopping = _EarlyStopping(
        monitor,
        config.early_stopping.patience if config.early_stopping else None,
        config.early_stopping.min_delta if config.early_stopping else 0.0,
    )
    history: dict[str, list[float]] = {}
    step = 0
    resumed_from = 0
    record = backup.restore() if backup else None
    if record:
        history, step, resumed_from = record["history"], record["step"], record["step"]
        stopping.load(record["early_stopping"])
        log(f"      resuming from the backup at step {step} (epoch {step // steps_per_epoch + 1})")

    verbose = _verbosity(config)
    records = EpochRecords(run_dir, verbose, steps_per_epoch, write=chief)
    every = config.backup.every_steps if config.backup else None
    # Workers must save together, so a multi-worker run cannot save by its own clock.
    by_clock = backup is not None and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    start = last_save = time.perf_counter()

    def snapshot() -> dict:
        return {"step": step, "history": history, "early_stopping": stopping.state()}

    def write_checkpoints(last: bool = True) -> None:
        # With a backup, a better epoch's weights wait in memory until the
        # next save writes them, so the best checkpoint always matches the
        # backup's record, and short epochs do not each pay a file write.
        nonlocal best_pending
        if best_pending:
            current = model.get_weights()  # every worker swaps, so they stay alike
            model.set_weights(best_weights)
            if chief:
                model.save_weights(checkpoints["best"])
            model.set_weights(current)
            best_pending = False
        if last and chief:
            model.save_weights(checkpoints["last"])

    def save() -> None:
        nonlocal last_save
        backup.save(snapshot())
        write_checkpoints()
        last_save = time.perf_counter()

    def between_calls() -> None:
        try:
            backup.after_execution(snapshot())
        except Preempted:
            write_checkpoints()
            raise

    best_weights = None
    best_pending = False
    epoch = step // steps_per_epoch
    while epoch < config.epochs and not stopping.stop:
        epoch_start = time.perf_counter()
        step_in_epoch = step - epoch * steps_per_epoch
        if step_in_epoch == 0:
            model.reset_metrics()
        records.start_epoch(epoch, config.epochs, step_in_epoch)
        logs: dict[str, float] = {}
        save_after_validation = not by_clock
        while step_in_epoch < steps_per_epoch:
            n = min(config.steps_per_execution, steps_per_epoch - step_in_epoch)
            if every:  # land on every backup boundary
                n = min(n, every - step % every)
            results, first_bad = steps.train(iterator, tf.constant(n, tf.int32))
            if int(first_bad) >= 0:
                bad_step = step + int(first_bad) + 1
                last_good = backup.latest() if backup else None
                if last_good is None and checkpoints["last"].exists():
                    last_good = str(checkpoints["last"])
                error = TrainingDiverged(bad_step, (bad_step - 1) // steps_per_epoch + 1, last_good)
                if chief:
                    (run_dir / "diverged.json").write_text(
                        json.dumps({"step": error.step, "epoch": error.epoch, "last_good_checkpoint": last_good})
                    )
                if backup:
                    write_checkpoints(last=False)
                    backup.close(delete=False)
                raise error
            step += n
            step_in_epoch += n
            logs = {k: float(v) for k, v in results.items()}
            records.progress(step_in_epoch, logs)
            if backup:
                due = (every and step % every == 0) or (
                    by_clock and time.perf_counter() - last_save >= config.backup.every_seconds
                )
                if due and step_in_epoch == steps_per_epoch:
                    save_after_validation = True  # a backup must not skip the epoch's validation
                elif due:
                    save()
                if step_in_epoch < steps_per_epoch:  # at the epoch's end: after validation
                    between_calls()
        model.reset_metrics()
        logs.update({f"val_{k}": float(v) for k, v in evaluate().items()})
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        score = logs.get(monitor, logs.get("loss"))
        if score is None and (config.keep == "best" or config.early_stopping):
            raise ConfigError(
                f"training: the model reports {', '.join(sorted(logs))}, but neither {monitor!r} nor 'loss' "
                "to rank epochs by; set training.early_stopping.monitor to one of them, or "
                "training.keep: last with training.early_stopping: null"
            )
        if score is not None and stopping.improved(score, epoch + 1):
            best_weights = model.get_weights()  # every worker keeps it: they must end alike
            if backup:
                best_pending = True  # written with the next backup (see write_checkpoints)
            elif chief:
                model.save_weights(checkpoints["best"])
        learning_rate = float(tf.convert_to_tensor(model.optimizer.learning_rate))
        records.end_epoch(epoch, config.epochs, logs, learning_rate, time.perf_counter() - epoch_start)
        epoch += 1
        if epoch_end is not None:
            epoch_end(epoch, model)
        if backup and save_after_validation:
            save()
        if backup and epoch < config.epochs:
            between_calls()
    write_checkpoints()
    seconds = time.perf_counter() - start
    if backup:
        backup.close(delete=True)
    if config.keep == "last":
        best_weights = model.get_weights()
    # Whether or not training stopped early, what comes out is the best epoch.
    elif best_weights is None and checkpoints["best"].exists():  # the best epoch came before a resume
        model.load_weights(checkpoints["best"])
        best_weights = model.get_weights()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Under this strategy every later call (evaluate, predict, export) is
        # collective and would wait for workers that have finished; what
        # comes out is the same model outside it.
        model = build()
        model.compile(loss=loss, metrics=metrics)
    if best_weights is not None:
        model.set_weights(best_weights)
    return TrainResult(
        model=model,
        history=history,
        epochs_run=len(next(iter(history.values()), [])),
        best_epoch=stopping.best_epoch,
        seconds=seconds,
        checkpoints=checkpoints,
        resumed_from_step=resumed_from,
        precision=precision,
        jit_compile=jit_compile,
    )
