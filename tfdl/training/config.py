"""Typed configuration of training: strategy, optimizer, speed and stopping."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tfdl.schema import StrictModel


class ScheduleConfig(StrictModel):
    """A learning-rate schedule from `tfdl.schedules`, by name with its parameters.

    Example: `{name: cosine_warmup, params: {peak_learning_rate: 0.001,
    warmup_steps: 500, decay_steps: 10000}}`.
    """

    name: Literal["step", "exponential", "cosine_warmup", "cyclic", "transformer"]
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _schedule_builds(self) -> "ScheduleConfig":
        from tfdl.schedules import build_schedule

        build_schedule(self.name, **self.params)  # its ValueError names the bad parameter
        return self


class OptimizerConfig(StrictModel):
    """The optimizer and its learning rate.

    Attributes:
        name: adam, adamw, sgd or rmsprop.
        learning_rate: the learning rate, when no schedule is given.
        schedule: a learning-rate schedule; it replaces `learning_rate`.
        weight_decay: decoupled weight decay (adamw; others apply it too when set).
        momentum: momentum of sgd and rmsprop.
        nesterov: Nesterov momentum for sgd.
        clipnorm: clip each gradient to this norm.
        global_clipnorm: clip all gradients together to this global norm.
    """

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    schedule: ScheduleConfig | None = None
    weight_decay: float | None = Field(None, ge=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    clipnorm: float | None = Field(None, gt=0.0)
    global_clipnorm: float | None = Field(None, gt=0.0)


class EarlyStoppingConfig(StrictModel):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    The weights of the best epoch are restored at the end.
    """

    monitor: str = "val_loss"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainingConfig(StrictModel):
    """Training.

    Attributes:
        strategy: `auto` (MirroredStrategy over the visible GPUs when there are
            several, the default strategy otherwise), `default`, `one_device`
            or `mirrored`.
        devices: devices for `one_device` (the first) or `mirrored`; None
            picks the visible GPUs, else the CPU.
        epochs: the most epochs to train.
        optimizer: see `OptimizerConfig`.
        early_stopping: see `EarlyStoppingConfig`; null turns it off.
        steps_per_execution: training steps per compiled call; small models
            spend most of their time in per-step overhead without it.
        jit_compile: XLA-compile the train step; `auto` lets Keras decide
            (it turns XLA off on CPU-only machines and under strategies).
        verbose: Keras progress output: `auto` is a progress bar on a
            terminal and one line per epoch otherwise.
    """

    strategy: Literal["auto", "default", "one_device", "mirrored"] = "auto"
    devices: tuple[str, ...] | None = None
    epochs: int = Field(30, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    steps_per_execution: int = Field(1, ge=1)
    jit_compile: bool | Literal["auto"] = "auto"
    verbose: Literal["auto", 0, 1, 2] = "auto"
