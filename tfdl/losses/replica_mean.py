"""The mean a custom `compute_loss` or `train_step` must return under tf.distribute.

Each replica sees a slice of the global batch, and the strategy sums the
replicas' gradients. Keras's built-in losses divide their mean by the number
of replicas so that sum is the gradient of the global batch's mean; a model
that computes its own loss must do the same, or under N replicas it trains as
if its learning rate were N times larger.
"""

from __future__ import annotations

import keras
from keras import ops


def replica_mean(values):
    """The mean of `values` over this replica's examples, divided by the number of replicas.

    Summed over the replicas this is the mean over the global batch. With no
    strategy (or another backend) it is the plain mean.

    Example:
    >>> float(replica_mean(ops.convert_to_tensor([1.0, 2.0, 3.0])))
    2.0
    """
    mean = ops.mean(values)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            mean = mean / replicas
    return mean
