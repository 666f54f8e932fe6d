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

    @model_validator(mode="after")
    def _one_clipping(self) -> "OptimizerConfig":
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError("clipnorm and global_clipnorm: set one of them (each gradient's norm, or all together)")
        return self


class EarlyStoppingConfig(StrictModel):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    The weights of the best epoch are restored at the end.
    """

    monitor: str = "val_loss"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class BackupConfig(StrictModel):
    """The backup a killed run resumes from.

    Every `every_seconds` (at the next boundary between compiled calls), and
    every `every_steps` training steps when set, the run saves the model, the
    optimizer's slots, the position of the data iterator, the step and every
    random-number state under `RUN_DIR/backup/`, and writes the best and last
    checkpoints (a better epoch's weights wait in memory for that save, the
    end or a SIGTERM, so short epochs do not each write a file; with
    `backup: null` the best is written at each better epoch). Started again
    with the same command, the run restores it and goes on as if never
    stopped; with `training.deterministic` on it ends with the same weights,
    bit for bit. The backup is deleted when training ends. A multi-worker
    run, whose workers must save together, saves at each epoch's end instead
    of by the clock.
    """

    every_seconds: float = Field(120.0, gt=0)
    every_steps: int | None = Field(None, ge=1)
    keep: int = Field(2, ge=1)


class FineTuningConfig(StrictModel):
    """The second phase of fine-tuning.

    Attributes:
        unfreeze_top: how many of the backbone's top layers to unfreeze,
            counting layers that hold weights other than batch normalization
            (those stay frozen); more than the backbone has unfreezes all.
        learning_rate_factor: phase 2's learning rate is phase 1's times this.
        epochs: the most epochs of phase 2 (phase 1's come from the training config).
    """

    unfreeze_top: int = Field(ge=1)
    learning_rate_factor: float = Field(0.1, gt=0.0, le=1.0)
    epochs: int = Field(ge=1)


class TrainingConfig(StrictModel):
    """Training.

    Attributes:
        strategy: `auto` (MirroredStrategy over the visible GPUs when there are
            several, the default strategy otherwise), `default`, `one_device`,
            `mirrored`, `multi_worker` (MultiWorkerMirroredStrategy over the
            cluster in the `TF_CONFIG` environment variable) or `tpu`.
        devices: devices for `one_device` (the first) or `mirrored`; None
            picks the visible GPUs, else the CPU.
        tpu: the TPU for `strategy: tpu`: its name or `grpc://` address, or
            `local` on a TPU VM; None reads the `TPU_NAME` environment variable.
        epochs: the most epochs to train.
        optimizer: see `OptimizerConfig`.
        scale_learning_rate: multiply the learning rate by the number of
            replicas (the linear scaling rule for a global batch that grows
            with them).
        early_stopping: see `EarlyStoppingConfig`; null turns it off.
        mixed_precision: `none`; `mixed_float16` (GPUs, with dynamic loss
            scaling); `mixed_bfloat16` (TPUs, and CPUs with bfloat16 units);
            `auto` picks mixed_float16 on GPU, mixed_bfloat16 on TPU and none
            on CPU.
        steps_per_execution: training steps per compiled call; small models
            spend most of their time in per-step overhead without it.
        jit_compile: XLA-compile the step; `auto` compiles on GPU and TPU
            with one replica per worker and not on CPU.
        deterministic: deterministic TensorFlow ops, so a run (and a resumed
            run) gives the same weights every time; slower on GPU.
        backup: see `BackupConfig`; null turns backups off.
        fine_tuning: see `FineTuningConfig`: train the head with the model's
            `backbone` layer frozen, then fine-tune its top layers (models
            with a pretrained backbone, such as `transfer`); null trains once.
        verbose: progress output: `auto` is a progress bar on a terminal and
            one line per epoch otherwise; 0 is silent.
        keep: which weights the trained model ends with: `best` (the epoch
            with the best early-stopping monitor, `val_loss` by default) or
            `last` (for models such as GANs, whose losses do not rank epochs).
    """

    strategy: Literal["auto", "default", "one_device", "mirrored", "multi_worker", "tpu"] = "auto"
    devices: tuple[str, ...] | None = None
    tpu: str | None = None
    epochs: int = Field(30, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    scale_learning_rate: bool = False
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    mixed_precision: Literal["none", "auto", "mixed_float16", "mixed_bfloat16"] = "none"
    steps_per_execution: int = Field(1, ge=1)
    jit_compile: bool | Literal["auto"] = "auto"
    deterministic: bool = False
    backup: BackupConfig | None = BackupConfig()
    fine_tuning: FineTuningConfig | None = None
    verbose: Literal["auto", 0, 1, 2] = "auto"
    keep: Literal["best", "last"] = "best"
