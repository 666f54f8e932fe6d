"""The ways training stops early that a caller must tell apart; no TensorFlow import, so the CLI can catch them cheaply."""

from __future__ import annotations


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; training stopped.

    Attributes:
        step: the first global step (counting from 1) whose loss was not finite.
        epoch: its epoch (from 1).
        last_good: the latest checkpoint written before it, or None.
    """

    def __init__(self, step: int, epoch: int, last_good: str | None):
        self.step, self.epoch, self.last_good = step, epoch, last_good
        where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written before it"
        super().__init__(
            f"the training loss became NaN or infinite at step {step} (epoch {epoch}); {where}. "
            "Lower training.optimizer.learning_rate, set training.optimizer.global_clipnorm, or check "
            "the data for extreme values"
        )


class Preempted(RuntimeError):
    """Training stopped on a termination signal after saving its backup."""
