"""Linear warmup then cosine decay: the usual schedule for transformers and large batches.

`decay_steps` is the step at which the decay ends, counted from step 0 and
including the warmup (so `warmup_steps < decay_steps`); after it the rate
stays at `alpha * peak_learning_rate`. Keras's `CosineDecay(warmup_steps=...)`
counts its `decay_steps` after the warmup instead; this one is that with
`decay_steps - warmup_steps`.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class CosineDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `initial_learning_rate` to the peak, then cosine decay to `alpha * peak`.

    For `step < warmup_steps`:
    `initial + (peak - initial) * step / warmup_steps`; then, with
    `t = min(step - warmup_steps, D) / D` and `D = decay_steps - warmup_steps`:
    `peak * (alpha + (1 - alpha) * 0.5 * (1 + cos(pi * t)))`. The two pieces
    meet at `step = warmup_steps`, where the rate is the peak.

    Args:
        peak_learning_rate: the rate at the end of the warmup, > 0.
        warmup_steps: the length of the linear warmup, in [0, decay_steps);
            0 starts at the peak.
        decay_steps: the step at which the cosine reaches its floor (warmup
            included), > warmup_steps.
        alpha: the floor as a fraction of the peak, in [0, 1]. Default 0.0.
        initial_learning_rate: the rate at step 0, in [0, peak]. Default 0.0.
        name: name of the schedule. Default "CosineDecayWithWarmup".

    Example:
    >>> schedule = CosineDecayWithWarmup(1e-3, warmup_steps=100, decay_steps=1100)
    >>> [round(float(schedule(s)), 6) for s in (0, 50, 100, 600, 1100, 5000)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0, 0.0]
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int,
        decay_steps: int,
        alpha: float = 0.0,
        initial_learning_rate: float = 0.0,
        name: str = "CosineDecayWithWarmup",
    ):
        super().__init__()
        if not peak_learning_rate > 0:
            raise ValueError(f"peak_learning_rate must be > 0; got peak_learning_rate={peak_learning_rate}.")
        if not decay_steps > 0:
            raise ValueError(f"decay_steps must be > 0; got decay_steps={decay_steps}.")
        if not 0 <= warmup_steps < decay_steps:
            raise ValueError(
                f"warmup_steps must be in [0, decay_steps) = [0, {decay_steps}) (decay_steps counts the warmup); "
                f"got warmup_steps={warmup_steps}."
            )
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1]; got alpha={alpha}.")
        if not 0 <= initial_learning_rate <= peak_learning_rate:
            raise ValueError(
                f"initial_learning_rate must be in [0, peak_learning_rate] = [0, {peak_learning_rate}]; "
                f"got initial_learning_rate={initial_learning_rate}."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.alpha = float(alpha)
        self.initial_learning_rate = float(initial_learning_rate)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        # max(..., 1) only guards the division when there is no warmup; the
        # warmup branch is then never selected.
        warmup_fraction = step / max(self.warmup_steps, 1)
        warmup_rate = self.initial_learning_rate + (peak - self.initial_learning_rate) * warmup_fraction
        decay_length = self.decay_steps - self.warmup_steps
        progress = ops.clip(step - self.warmup_steps, 0.0, decay_length) / decay_length
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decay_rate = peak * (self.alpha + (1.0 - self.alpha) * cosine)
        return ops.where(step < self.warmup_steps, warmup_rate, decay_rate)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }
