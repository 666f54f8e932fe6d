"""tfdl.training: strategies, optimizers and the trainer."""

from tfdl.training.config import EarlyStoppingConfig, OptimizerConfig, ScheduleConfig, TrainingConfig
from tfdl.training.optimizers import make_optimizer
from tfdl.training.strategy import describe_strategy, make_strategy
from tfdl.training.trainer import TrainResult, train

__all__ = [
    "EarlyStoppingConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainResult",
    "TrainingConfig",
    "describe_strategy",
    "make_optimizer",
    "make_strategy",
    "train",
]
