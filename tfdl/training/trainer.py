"""Training with Keras `fit` under a tf.distribute strategy.

The model, its optimizer and metrics are created inside the strategy's scope.
Every run gets early stopping, a best and a last checkpoint, TensorBoard logs,
a CSV log of each epoch, and a progress bar. The model returned holds the
weights of the best epoch (lowest `val_loss`, or the early-stopping monitor).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tensorflow as tf

from tfdl.training.config import TrainingConfig
from tfdl.training.optimizers import make_optimizer


@dataclass
class TrainResult:
    """The trained model, holding the weights of its best epoch, and how training went."""

    model: object
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    seconds: float
    checkpoints: dict[str, Path] = field(default_factory=dict)


def _callbacks(config: TrainingConfig, run_dir: Path):
    import keras

    checkpoints = {
        "best": run_dir / "checkpoints" / "best.weights.h5",
        "last": run_dir / "checkpoints" / "last.weights.h5",
    }
    checkpoints["best"].parent.mkdir(parents=True, exist_ok=True)
    monitor = config.early_stopping.monitor if config.early_stopping else "val_loss"
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            checkpoints["best"], monitor=monitor, save_best_only=True, save_weights_only=True
        ),
        keras.callbacks.ModelCheckpoint(checkpoints["last"], save_weights_only=True),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.early_stopping:
        es = config.early_stopping
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=es.monitor,
                patience=es.patience,
                min_delta=es.min_delta,
            )
        )
    return callbacks, checkpoints


def _verbosity(config: TrainingConfig) -> int:
    if config.verbose != "auto":
        return config.verbose
    return 1 if sys.stdout.isatty() else 2


def train(
    build: Callable[[], object],
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    config: TrainingConfig,
    strategy: tf.distribute.Strategy,
    run_dir: Path,
    loss: str,
    metrics: list[str],
    class_weight: dict[int, float] | None = None,
) -> TrainResult:
    """Build the model in the strategy's scope, compile it and fit it.

    Args:
        build: makes the uncompiled model; called inside `strategy.scope()`.
        train_data, validation_data: batched with the global batch size.
        loss, metrics: Keras identifiers chosen by the model's task.
        class_weight: per-class loss weights (the pipeline's, for imbalanced data).
    """
    with strategy.scope():
        model = build()
        model.compile(
            optimizer=make_optimizer(config.optimizer),
            loss=loss,
            metrics=metrics,
            steps_per_execution=config.steps_per_execution,
            jit_compile=config.jit_compile,
        )
    callbacks, checkpoints = _callbacks(config, run_dir)
    start = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.epochs,
        callbacks=callbacks,
        class_weight=class_weight,
        shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a dataset
        verbose=_verbosity(config),
    )
    seconds = time.perf_counter() - start
    # Whether or not training stopped early, what comes out is the best epoch.
    model.load_weights(checkpoints["best"])
    record = {k: [float(v) for v in values] for k, values in history.history.items()}
    monitor = config.early_stopping.monitor if config.early_stopping else "val_loss"
    scores = record.get(monitor, record.get("loss"))
    pick = max if monitor.endswith(("accuracy", "auc", "precision", "recall")) else min
    best_epoch = scores.index(pick(scores)) + 1
    return TrainResult(
        model=model,
        history=record,
        epochs_run=len(scores),
        best_epoch=best_epoch,
        seconds=seconds,
        checkpoints=checkpoints,
    )
