"""tfdl.layers: custom Keras 3 layers, each registered for serialization (package "tfdl").

Every layer is checked against a reference computed another way, round-trips
through the `.keras` format (loading with `safe_mode=True`), exports to a
SavedModel, and converts to TFLite with the builtin op set, with one
exception: `Sampling` on its random path (TFLite has no builtin for
`StatelessRandomNormalV2`); build it with `mean_at_inference=True` to serve
the posterior mean, which converts.
"""

from tfdl.layers.bahdanau_attention import BahdanauAttention
from tfdl.layers.learned_position_embedding import LearnedPositionEmbedding
from tfdl.layers.luong_attention import LuongAttention
from tfdl.layers.missing_value_imputation import MissingValueImputation
from tfdl.layers.residual_block import ResidualBlock
from tfdl.layers.sampling import Sampling
from tfdl.layers.saved_model_backbone import SavedModelBackbone
from tfdl.layers.scaled_dot_product_attention import ScaledDotProductAttention
from tfdl.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from tfdl.layers.token_and_position_embedding import TokenAndPositionEmbedding
from tfdl.layers.transformer_decoder import TransformerDecoderBlock
from tfdl.layers.transformer_encoder import TransformerEncoderBlock

__all__ = [
    "BahdanauAttention",
    "LearnedPositionEmbedding",
    "LuongAttention",
    "MissingValueImputation",
    "ResidualBlock",
    "Sampling",
    "SavedModelBackbone",
    "ScaledDotProductAttention",
    "SinusoidalPositionEncoding",
    "TokenAndPositionEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
]
