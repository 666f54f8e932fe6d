"""Exports a trained agent's greedy policy as a SavedModel in the TF Serving layout, and as TFLite.

The served graph takes raw observations: the observation statistics of the
run are frozen into it as constants, so a client never normalizes. Its
`serving_default` signature maps `observation` (float32 [batch, obs_dim]) to
`action` (int64 greedy action, or float32 mean action clipped to the bounds)
and `q_values`, `logits` or `mean`; `tfdl serve` and TF Serving load it like
any other model.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfdl.rl.agent import Agent
from tfdl.rl.normalization import ObservationNormalizer


class ServedPolicy:
    """The exported computation: frozen normalization, then the agent's greedy outputs.

    Args:
        agent: the trained agent (its `acting_model` and `policy_outputs`).
        normalizer: the run's observation statistics (frozen at their current values).
    """

    def __init__(self, agent: Agent, normalizer: ObservationNormalizer):
        mean, scale = normalizer.affine()
        self.model = agent.acting_model
        self._agent_outputs = agent.policy_outputs
        self._mean = tf.constant(mean)
        self._scale = tf.constant(scale)
        self._clip = normalizer.clip if normalizer.enabled else None
        self.input_signature = [tf.TensorSpec((None, agent.spec.obs_dim), tf.float32, name="observation")]
        self.serve = tf.function(self._serve, input_signature=self.input_signature)

    def _serve(self, observation):
        x = (observation - self._mean) / self._scale
        if self._clip is not None:
            x = tf.clip_by_value(x, -self._clip, self._clip)
        return self._agent_outputs(x)

    def actions(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions for raw observations, in process (the reference the exports are checked against)."""
        return self.serve(tf.convert_to_tensor(observations, tf.float32))["action"].numpy()


def export_policy(agent: Agent, normalizer: ObservationNormalizer, directory: Path | str) -> Path:
    """Write the agent's greedy policy as a SavedModel with a `serving_default` signature.

    Written with Keras's `ExportArchive`, which tracks the Keras 3 variables
    so that TFLite conversion freezes their values; a plain
    `tf.saved_model.save` of a module holding the model serves correctly but
    converts to a TFLite model that computes garbage (measured on TF 2.21).

    Args:
        agent: the trained agent.
        normalizer: the run's observation statistics.
        directory: the version folder to write, e.g. `.../serving/cartpole/1`.

    Returns:
        `directory`.
    """
    from tfdl.export.manifest import write_manifest

    directory = Path(directory)
    served = ServedPolicy(agent, normalizer)
    archive = keras.export.ExportArchive()
    archive.track(served.model)
    archive.add_endpoint("serving_default", served._serve, input_signature=served.input_signature)
    archive.write_out(str(directory), verbose=False)
    write_manifest(directory)  # versions, signatures and file checksums, which tfdl serve checks
    return directory


def load_policy(saved_model_dir: Path | str):
    """The `serving_default` function of an exported policy: call it with `observation=...`.

    Raises:
        ValueError: the folder holds no SavedModel, or one without `serving_default`.
    """
    saved_model_dir = Path(saved_model_dir)
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise ValueError(f"{saved_model_dir} holds no saved_model.pb; pass a version folder such as export/serving/NAME/1")
    loaded = tf.saved_model.load(str(saved_model_dir))
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{saved_model_dir} has no serving_default signature (has {list(loaded.signatures)})")
    signature = loaded.signatures["serving_default"]
    signature._tfdl_owner = loaded  # the loaded object owns the variables; keep it alive with the function
    return signature
