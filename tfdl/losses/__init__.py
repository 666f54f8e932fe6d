"""tfdl.losses: custom losses that reduce and weight like Keras built-ins.

Classes (`keras.losses.Loss`, usable in `compile(loss=...)`): the focal
losses, `DiceLoss`, `CrossentropyDiceLoss`, the detector's `AnchorFocalLoss` and
`AnchorHuberLoss`, `MaskedSparseCategoricalCrossentropy`. Functions (for
custom `train_step`s whose terms do not fit `(y_true, y_pred)`): the VAE
objective and the WGAN-GP losses, and `replica_mean`, the mean such a loss
must return to train the same under tf.distribute. All are registered (package "tfdl").
"""

from tfdl.losses.crossentropy_dice import CrossentropyDiceLoss
from tfdl.losses.detection_losses import AnchorFocalLoss, AnchorHuberLoss
from tfdl.losses.dice import DiceLoss
from tfdl.losses.elbo import vae_loss
from tfdl.losses.focal import BinaryFocalLoss, CategoricalFocalLoss, SparseCategoricalFocalLoss
from tfdl.losses.gaussian_kl import gaussian_kl_divergence
from tfdl.losses.gradient_penalty import gradient_penalty
from tfdl.losses.masked_sparse_crossentropy import MaskedSparseCategoricalCrossentropy
from tfdl.losses.replica_mean import replica_mean
from tfdl.losses.wasserstein import critic_loss, generator_loss

__all__ = [
    "AnchorFocalLoss",
    "AnchorHuberLoss",
    "BinaryFocalLoss",
    "CategoricalFocalLoss",
    "CrossentropyDiceLoss",
    "DiceLoss",
    "MaskedSparseCategoricalCrossentropy",
    "SparseCategoricalFocalLoss",
    "critic_loss",
    "gaussian_kl_divergence",
    "generator_loss",
    "gradient_penalty",
    "replica_mean",
    "vae_loss",
]
