"""A GPT-style decoder-only language model (`gpt`) and its `generate`.

ids -> token + position embedding -> N causal decoder blocks -> layer norm ->
logits over the vocabulary at every position. The model is trained on
next-token pairs with a masked cross-entropy (padding id 0 ignored), and
`generate` extends prompts one token at a time with greedy, temperature,
top-k or nucleus (top-p) sampling, stopping at a stop token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from tfdl.models.attention_config import AttentionConfig
from tfdl.models.registry import register_model


class GPTConfig(AttentionConfig):
    """Configuration of `build_gpt`.

    Attributes:
        vocabulary_size: number of token ids, padding (0) included.
        max_length: the context window: longest sequence the model reads.
        embed_dim: width of the residual stream.
        num_heads: attention heads; must divide embed_dim.
        num_layers: decoder blocks.
        intermediate_dim: width of each block's feed-forward layer.
        dropout: dropout in the blocks.
        position: `learned` (as GPT-2) or `sinusoidal`.
        input_name: the model input's name.
    """

    vocabulary_size: int = Field(ge=2)
    max_length: int = Field(128, ge=2)
    embed_dim: int = Field(128, ge=2)
    num_heads: int = Field(4, ge=1)
    num_layers: int = Field(2, ge=1)
    intermediate_dim: int = Field(512, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    position: str = Field("learned", pattern="^(learned|sinusoidal)$")
    input_name: str = "tokens"


@register_model("gpt", GPTConfig, task="language_model")
def build_gpt(config: GPTConfig):
    """Build the language model; output `logits` has shape (batch, length, vocabulary_size)."""
    import keras
    from keras import layers

    from tfdl.layers.token_and_position_embedding import TokenAndPositionEmbedding
    from tfdl.layers.transformer_decoder import TransformerDecoderBlock

    tokens = keras.Input(shape=(None,), dtype="int32", name=config.input_name)
    x = TokenAndPositionEmbedding(
        vocabulary_size=config.vocabulary_size,
        max_length=config.max_length,
        embedding_dim=config.embed_dim,
        position=config.position,
        mask_zero=True,
        name="embedding",
    )(tokens)
    for i in range(config.num_layers):
        x = TransformerDecoderBlock(
            num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim,
            dropout=config.dropout,
            norm_first=True,
            name=f"decoder_{i + 1}",
        )(x)
    x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    logits = layers.Dense(config.vocabulary_size, name="logits")(x)
    return keras.Model(tokens, logits, name="gpt")


@dataclass(frozen=True)
class Sampler:
    """How `generate` picks the next token.

    Attributes:
        temperature: 0 picks the most likely token (greedy); otherwise logits
            are divided by it before sampling (below 1: safer, above: wilder).
        top_k: sample among the k most likely tokens only (0: all).
        top_p: sample among the smallest set of tokens whose probability
            adds up to p (nucleus sampling; 1.0: all).
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 keeps all tokens), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    def pick(self, logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One token id per row of `logits` (batch, vocabulary)."""
        logits = logits.astype(np.float64)
        logits[:, 0] = -np.inf  # never generate padding
        if self.temperature == 0.0:
            return logits.argmax(axis=-1)
        logits = logits / self.temperature
        if self.top_k:
            kth = np.sort(logits, axis=-1)[:, -min(self.top_k, logits.shape[-1])][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        if self.top_p < 1.0:
            order = np.argsort(-probs, axis=-1)
            sorted_probs = np.take_along_axis(probs, order, axis=-1)
            # Keep a token when the mass before it is below p: the smallest
            # set reaching p, and never an empty one.
            keep_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs < self.top_p
            keep = np.zeros_like(keep_sorted)
            np.put_along_axis(keep, order, keep_sorted, axis=-1)
            probs = np.where(keep, probs, 0.0)
            probs /= probs.sum(axis=-1, keepdims=True)
        return np.array([rng.choice(len(p), p=p) for p in probs])


def generate(
    model,
    prompts: np.ndarray,
    max_new_tokens: int,
    sampler: Sampler = Sampler(),
    stop_token: int | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Extend each prompt (rows of ids, no padding) by up to `max_new_tokens` tokens.

    Returns (batch, prompt + generated) ids; a row that emits `stop_token`
    keeps it and is padded with 0 after it. The context is the model's last
    `max_length` tokens. Each step runs one compiled call on a fixed-size
    window, so steps do not retrace.
    """
    import tensorflow as tf

    prompts = np.atleast_2d(np.asarray(prompts, dtype=np.int32))
    batch, prompt_length = prompts.shape
    window = int(model.get_layer("embedding").max_length)
    rng = np.random.default_rng(seed)
    next_logits = _compiled_next_logits(model, window)

    ids = np.zeros((batch, prompt_length + max_new_tokens), dtype=np.int32)
    ids[:, :prompt_length] = prompts
    done = np.zeros(batch, dtype=bool)
    for position in range(prompt_length, prompt_length + max_new_tokens):
        start = max(0, position - window)
        context = np.zeros((batch, window), dtype=np.int32)
        context[:, : position - start] = ids[:, start:position]
        logits = next_logits(tf.constant(context), tf.constant(position - start - 1)).numpy()
        chosen = sampler.pick(logits, rng)
        ids[:, position] = np.where(done, 0, chosen)
        if stop_token is not None:
            done |= chosen == stop_token
            if done.all():
                return ids[:, : position + 1]
    return ids


def _compiled_next_logits(model, window: int):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, window), tf.int32), tf.TensorSpec((), tf.int32)])
    def next_logits(context, last):
        # Causal attention: padding after `last` cannot change its logits.
        return model(context, training=False)[:, last, :]

    return next_logits


def perplexity(model, inputs: np.ndarray, targets: np.ndarray, batch_size: int = 64) -> float:
    """exp(mean cross-entropy) of next-token predictions, padding (0) excluded."""
    import keras

    total, count = 0.0, 0
    for i in range(0, len(inputs), batch_size):
        logits = model(inputs[i : i + batch_size], training=False)
        losses = np.asarray(
            keras.losses.sparse_categorical_crossentropy(targets[i : i + batch_size], logits, from_logits=True)
        )
        real = targets[i : i + batch_size] != 0
        total += float(losses[real].sum())
        count += int(real.sum())
    return float(np.exp(total / count))
