"""tfdl.training: strategies, optimizers, mixed precision and the resumable trainer.

Names load on first use, so `from tfdl.training.errors import ...` (the CLI)
and reading a config do not import TensorFlow.
"""

from tfdl.lazy_names import lazy_getattr

_LAZY = {
    "BackupConfig": "tfdl.training.config",
    "EarlyStoppingConfig": "tfdl.training.config",
    "OptimizerConfig": "tfdl.training.config",
    "ScheduleConfig": "tfdl.training.config",
    "TrainingConfig": "tfdl.training.config",
    "Preempted": "tfdl.training.errors",
    "TrainingDiverged": "tfdl.training.errors",
    "make_optimizer": "tfdl.training.optimizers",
    "describe_strategy": "tfdl.training.strategy",
    "is_chief": "tfdl.training.strategy",
    "make_strategy": "tfdl.training.strategy",
    "FineTuningConfig": "tfdl.training.config",
    "FineTuningResult": "tfdl.training.fine_tuning",
    "fine_tune": "tfdl.training.fine_tuning",
    "TrainResult": "tfdl.training.trainer",
    "train": "tfdl.training.trainer",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
