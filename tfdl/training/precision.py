"""Mixed precision: which Keras dtype policy a run uses, and setting it.

Mixed precision computes in 16 bits and keeps variables in float32. On GPUs
float16 needs loss scaling, which Keras adds by wrapping the optimizer in a
`LossScaleOptimizer` when the model is compiled under `mixed_float16`;
bfloat16 has float32's range and needs none.
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = {"none": "float32", "mixed_float16": "mixed_float16", "mixed_bfloat16": "mixed_bfloat16"}


def resolve_precision(name: str, strategy: tf.distribute.Strategy) -> str:
    """The Keras dtype policy for the config's `mixed_precision` under `strategy`.

    `auto` is mixed_bfloat16 on a TPU, mixed_float16 with a GPU, and float32
    on CPUs (where 16-bit math is rarely faster).
    """
    if name == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            return "mixed_bfloat16"
        return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"
    return POLICIES[name]


def set_precision(policy: str) -> None:
    """Make `policy` Keras's global dtype policy; layers built after take it."""
    import keras

    keras.config.set_dtype_policy(policy)


def output_dtype_warning(model) -> str | None:
    """A warning when a mixed-precision model's outputs are not float32.

    Softmax and losses computed in 16 bits lose precision (float16 can
    overflow), so the last layer of a mixed-precision model should compute in
    float32 (`dtype="float32"`).
    """
    import keras

    if keras.config.dtype_policy().compute_dtype == "float32":
        return None
    low = [t.name for t in model.outputs if t.dtype not in ("float32", tf.float32)]
    if not low:
        return None
    return (
        f"mixed precision: the model's outputs {low} are {model.outputs[0].dtype}, not float32; give the "
        "last layer dtype='float32' so the loss is computed in full precision"
    )
