"""A Transformer encoder classifier (`transformer_classifier`) over token ids.

tokens -> token + position embedding -> N encoder blocks -> masked mean
pooling -> dropout -> softmax. Padding (id 0) is masked all the way through,
so padded positions never reach attention or pooling. `position: none`
drops the positional information, which is how a test shows that a
Transformer without it cannot tell word order apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tfdl.models.attention_config import AttentionConfig
from tfdl.models.registry import register_model


class TransformerClassifierConfig(AttentionConfig):
    """Configuration of `build_transformer_classifier`.

    Attributes:
        vocabulary_size: number of token ids (0 is padding).
        max_length: longest sequence the position embedding covers.
        num_classes: number of classes; taken from the data when left out.
        input_name: the model input's name (the key serving clients use).
        embed_dim: width of the token vectors.
        num_heads: attention heads per block; must divide embed_dim.
        num_layers: encoder blocks.
        intermediate_dim: width of each block's feed-forward layer.
        dropout: dropout in the blocks and before the classifier.
        position: `sinusoidal`, `learned`, or `none` (no positional information).
        norm_first: pre-norm blocks (steadier to train deep) instead of post-norm.
    """

    vocabulary_size: int = Field(ge=2)
    max_length: int = Field(ge=1)
    num_classes: int | None = Field(None, ge=2)
    input_name: str = "tokens"
    embed_dim: int = Field(32, ge=2)
    num_heads: int = Field(2, ge=1)
    num_layers: int = Field(1, ge=1)
    intermediate_dim: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    position: Literal["sinusoidal", "learned", "none"] = "sinusoidal"
    norm_first: bool = False


@register_model("transformer_classifier", TransformerClassifierConfig, task="classification")
def build_transformer_classifier(config: TransformerClassifierConfig):
    """Build the classifier; its output `probabilities` is a softmax over the classes."""
    import keras
    from keras import layers

    from tfdl.layers.token_and_position_embedding import TokenAndPositionEmbedding
    from tfdl.layers.transformer_encoder import TransformerEncoderBlock

    if config.num_classes is None:
        raise ValueError("build_transformer_classifier needs num_classes (the run fills it from the data)")
    tokens = keras.Input(shape=(None,), dtype="int32", name=config.input_name)
    if config.position == "none":
        x = layers.Embedding(config.vocabulary_size, config.embed_dim, mask_zero=True, name="embedding")(tokens)
    else:
        x = TokenAndPositionEmbedding(
            vocabulary_size=config.vocabulary_size,
            max_length=config.max_length,
            embedding_dim=config.embed_dim,
            position=config.position,
            mask_zero=True,
            name="embedding",
        )(tokens)
    for i in range(config.num_layers):
        x = TransformerEncoderBlock(
            num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim,
            dropout=config.dropout,
            norm_first=config.norm_first,
            name=f"encoder_{i + 1}",
        )(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(tokens, outputs, name="transformer_classifier")
