"""A BERT-style encoder (`bert`), its masked-language-model head and a classification head.

The encoder: token + learned position embeddings -> N bidirectional encoder
blocks, padding (id 0) masked throughout; position 0 holds [CLS]. Pretrain
it with `build_bert_mlm` on text masked by `tfdl.pipelines.masked_language_modeling`,
then put `build_bert_classifier` on top of the same encoder and fine-tune.
Token ids: 0 padding, 1 [UNK], 2 [CLS], 3 [MASK], 4.. words.
"""

from __future__ import annotations

from pydantic import Field

from tfdl.models.attention_config import AttentionConfig
from tfdl.models.registry import register_model

PAD, UNK, CLS, MASK, FIRST_WORD = 0, 1, 2, 3, 4


class BERTConfig(AttentionConfig):
    """Configuration of `build_bert_encoder` (and the heads built on it).

    Attributes:
        vocabulary_size: number of token ids, the four special ones included.
        max_length: longest sequence, [CLS] included.
        embed_dim, num_heads, num_layers, intermediate_dim, dropout: the encoder's size.
        input_name: the model input's name.
    """

    vocabulary_size: int = Field(ge=FIRST_WORD + 1)
    max_length: int = Field(64, ge=2)
    embed_dim: int = Field(64, ge=2)
    num_heads: int = Field(4, ge=1)
    num_layers: int = Field(2, ge=1)
    intermediate_dim: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    input_name: str = "tokens"


@register_model("bert", BERTConfig, task="masked_language_model")
def build_bert_encoder(config: BERTConfig):
    """The encoder: ids (batch, length) -> contextual vectors (batch, length, embed_dim)."""
    import keras

    from tfdl.layers.token_and_position_embedding import TokenAndPositionEmbedding
    from tfdl.layers.transformer_encoder import TransformerEncoderBlock

    tokens = keras.Input(shape=(None,), dtype="int32", name=config.input_name)
    x = TokenAndPositionEmbedding(
        vocabulary_size=config.vocabulary_size,
        embedding_dim=config.embed_dim,
        max_length=config.max_length,
        position="learned",
        mask_zero=True,
        name="embedding",
    )(tokens)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="embedding_norm")(x)
    x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    for i in range(config.num_layers):
        x = TransformerEncoderBlock(
            num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim,
            dropout=config.dropout,
            activation="gelu",
            name=f"encoder_{i + 1}",
        )(x)
    return keras.Model(tokens, x, name="bert_encoder")


def build_bert_mlm(encoder):
    """The pretraining model: the encoder, then a transform and logits over the vocabulary at every position."""
    import keras

    tokens = encoder.input
    x = encoder(tokens)
    width = x.shape[-1]
    x = keras.layers.Dense(width, activation="gelu", name="mlm_transform")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="mlm_norm")(x)
    vocabulary_size = encoder.get_layer("embedding").vocabulary_size
    logits = keras.layers.Dense(vocabulary_size, name="mlm_logits")(x)
    return keras.Model(tokens, logits, name="bert_mlm")


def build_bert_classifier(encoder, num_classes: int, dropout: float = 0.1):
    """The fine-tuning model: the encoder's [CLS] vector -> dense tanh pooler -> softmax."""
    import keras

    tokens = encoder.input
    sequence = encoder(tokens)
    cls = keras.layers.Identity(name="cls")(sequence[:, 0, :])
    pooled = keras.layers.Dense(sequence.shape[-1], activation="tanh", name="pooler")(cls)
    pooled = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(pooled)
    return keras.Model(tokens, outputs, name="bert_classifier")
