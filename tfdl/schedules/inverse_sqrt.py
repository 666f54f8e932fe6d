"""The Transformer's schedule (Vaswani et al. 2017): linear warmup, then inverse square-root decay.

`lr = scale * d_model**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)` with
`n = step + 1`: Keras counts optimizer steps from 0, the paper from 1, and
counting from 1 keeps `n**-0.5` finite at the first update. The rate
therefore peaks at the `warmup_steps`-th update (`step = warmup_steps - 1`),
at `scale * (d_model * warmup_steps)**-0.5`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdl")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`scale * d_model**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)`, `n = step + 1`.

    Args:
        d_model: the model width the rate is normalised by, an int >= 1.
        warmup_steps: steps of linear warmup, an int >= 1. Default 4000.
        scale: a constant factor, > 0. Default 1.0.
        name: name of the schedule. Default "TransformerSchedule".

    Example:
    >>> schedule = TransformerSchedule(d_model=512, warmup_steps=4000)
    >>> round(float(schedule(3999)), 7)  # the peak, (512 * 4000) ** -0.5
    0.0006988
    """

    def __init__(self, d_model: int, warmup_steps: int = 4000, scale: float = 1.0, name: str = "TransformerSchedule"):
        super().__init__()
        if int(d_model) != d_model or d_model < 1:
            raise ValueError(f"d_model must be an integer >= 1; got d_model={d_model}.")
        if int(warmup_steps) != warmup_steps or warmup_steps < 1:
            raise ValueError(f"warmup_steps must be an integer >= 1; got warmup_steps={warmup_steps}.")
        if not scale > 0:
            raise ValueError(f"scale must be > 0; got scale={scale}.")
        self.d_model = int(d_model)
        self.warmup_steps = int(warmup_steps)
        self.scale = float(scale)
        self.name = name

    def __call__(self, step):
        n = ops.cast(step, "float32") + 1.0
        decay = ops.rsqrt(n)
        warmup = n * self.warmup_steps**-1.5
        return self.scale * self.d_model**-0.5 * ops.minimum(decay, warmup)

    def get_config(self) -> dict:
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps, "scale": self.scale, "name": self.name}
