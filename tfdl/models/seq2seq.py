"""Sequence to sequence with attention (`seq2seq`): an LSTM encoder-decoder.

The encoder reads the source; the decoder LSTM starts from the encoder's
final state, and at every output step attention (Bahdanau additive, or Luong
dot/general) over the encoder outputs gives a context vector that joins the
decoder output before the next-token softmax. Training uses teacher forcing
(the decoder reads the true previous token); inference decodes greedily or
with beam search, one step at a time, and returns the attention weights so
they can be plotted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import keras
import numpy as np
from pydantic import Field

from tfdl.models.registry import register_model
from tfdl.schema import StrictModel


class Seq2SeqConfig(StrictModel):
    """Configuration of `build_seq2seq`.

    Attributes:
        source_vocabulary_size, target_vocabulary_size: token ids, 0 is padding.
        start_token, end_token: ids that open and close every target sequence.
        embed_dim: width of the token embeddings.
        units: LSTM units of encoder and decoder (and of Bahdanau's score).
        attention: `bahdanau` (additive), `luong_dot` or `luong_general`.
        max_output_length: longest output decoding produces (end token excluded).
    """

    source_vocabulary_size: int = Field(ge=2)
    target_vocabulary_size: int = Field(ge=3)
    start_token: int = Field(1, ge=1)
    end_token: int = Field(2, ge=1)
    embed_dim: int = Field(32, ge=1)
    units: int = Field(64, ge=1)
    attention: Literal["bahdanau", "luong_dot", "luong_general"] = "bahdanau"
    max_output_length: int = Field(32, ge=1)


@keras.saving.register_keras_serializable(package="tfdl")
class Seq2Seq(keras.Model):
    """LSTM encoder-decoder with attention.

    `model([source, decoder_input])` returns next-token logits (teacher
    forcing); `encode`, `decode_step`, `greedy_decode` and `beam_search`
    serve inference. Build it with `build_seq2seq(config)`.
    """

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        from tfdl.layers.bahdanau_attention import BahdanauAttention
        from tfdl.layers.luong_attention import LuongAttention

        self.config = Seq2SeqConfig(**config)
        c = self.config
        self.source_embedding = keras.layers.Embedding(c.source_vocabulary_size, c.embed_dim, mask_zero=True, name="source_embedding")
        self.encoder_lstm = keras.layers.LSTM(c.units, return_sequences=True, return_state=True, name="encoder")
        self.target_embedding = keras.layers.Embedding(c.target_vocabulary_size, c.embed_dim, mask_zero=True, name="target_embedding")
        self.decoder_lstm = keras.layers.LSTM(c.units, return_sequences=True, return_state=True, name="decoder")
        if c.attention == "bahdanau":
            self.attention = BahdanauAttention(units=c.units, name="attention")
        else:
            self.attention = LuongAttention(score=c.attention.split("_")[1], name="attention")
        self.combine = keras.layers.Dense(c.units, activation="tanh", name="attentional_state")
        self.output_layer = keras.layers.Dense(c.target_vocabulary_size, name="logits")

    def encode(self, source, training=False):
        """Encoder outputs (batch, T, units), final [h, c] states, and the source padding mask."""
        embedded = self.source_embedding(source)
        mask = self.source_embedding.compute_mask(source)
        outputs, h, c = self.encoder_lstm(embedded, mask=mask, training=training)
        return outputs, [h, c], mask

    def _decode(self, decoder_input, states, encoder_outputs, source_mask, training=False):
        embedded = self.target_embedding(decoder_input)
        target_mask = self.target_embedding.compute_mask(decoder_input)
        outputs, h, c = self.decoder_lstm(embedded, initial_state=states, mask=target_mask, training=training)
        context, weights = self.attention(outputs, encoder_outputs, mask=source_mask)
        attentional = self.combine(keras.ops.concatenate([outputs, context], axis=-1))
        return self.output_layer(attentional), [h, c], weights

    def call(self, inputs, training=False):
        source, decoder_input = inputs
        encoder_outputs, states, source_mask = self.encode(source, training=training)
        logits, _, _ = self._decode(decoder_input, states, encoder_outputs, source_mask, training=training)
        return logits

    def decode_step(self, tokens, states, encoder_outputs, source_mask):
        """One step: tokens (batch,) -> logits (batch, vocab), new states, attention (batch, T)."""
        logits, states, weights = self._decode(tokens[:, None], states, encoder_outputs, source_mask)
        return logits[:, 0], states, weights[:, 0]

    def get_config(self):
        return {**super().get_config(), "config": self.config.model_dump(mode="json")}


@register_model("seq2seq", Seq2SeqConfig, task="seq2seq")
def build_seq2seq(config: Seq2SeqConfig) -> Seq2Seq:
    """Build the encoder-decoder; call it on `[source, decoder_input]`."""
    return Seq2Seq(config.model_dump(mode="json"), name="seq2seq")


@dataclass
class Decoded:
    """Decoded token ids per example (end token excluded) and the attention of each output step."""

    tokens: list[list[int]]
    attention: list[np.ndarray]


def greedy_decode(model: Seq2Seq, source: np.ndarray, max_length: int | None = None) -> Decoded:
    """Decode each source, always taking the most likely next token."""
    c = model.config
    max_length = max_length or c.max_output_length
    encoder_outputs, states, mask = model.encode(source)
    batch = len(source)
    tokens = np.full(batch, c.start_token, dtype=np.int32)
    out = [[] for _ in range(batch)]
    attention = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_length + 1):
        logits, states, weights = model.decode_step(tokens, states, encoder_outputs, mask)
        tokens = np.asarray(logits).argmax(axis=-1).astype(np.int32)
        weights = np.asarray(weights)
        for i in np.flatnonzero(~done):
            if tokens[i] == c.end_token:
                done[i] = True
            else:
                out[i].append(int(tokens[i]))
                attention[i].append(weights[i])
        if done.all():
            break
    # A source whose first output is the end token decodes to nothing.
    width = np.shape(source)[1]
    return Decoded(out, [np.array(a).reshape(len(a), -1) if a else np.zeros((0, width)) for a in attention])


def beam_search(model: Seq2Seq, source: np.ndarray, beam_width: int = 4, max_length: int | None = None,
                length_penalty: float = 0.0) -> Decoded:
    """Decode each source keeping the `beam_width` most likely partial outputs.

    Scores are summed log-probabilities divided by length**length_penalty
    (0: plain sum). Finished hypotheses (end token) compete with open ones.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    c = model.config
    max_length = max_length or c.max_output_length
    results, attentions = [], []
    for row in np.asarray(source):
        encoder_outputs, states, mask = model.encode(row[None])
        # A hypothesis: (score, tokens, attention rows, states)
        beams = [(0.0, [], [], states)]
        finished = []
        for _ in range(max_length + 1):
            k = len(beams)
            last = np.array([b[1][-1] if b[1] else c.start_token for b in beams], dtype=np.int32)
            stacked = [keras.ops.concatenate([b[3][j] for b in beams], axis=0) for j in range(2)]
            logits, new_states, weights = model.decode_step(
                last, stacked, keras.ops.repeat(encoder_outputs, k, axis=0),
                None if mask is None else keras.ops.repeat(mask, k, axis=0),
            )
            log_probs = np.asarray(keras.ops.log_softmax(logits, axis=-1))
            weights = np.asarray(weights)
            candidates = []
            for i, (score, tokens, attn, _) in enumerate(beams):
                for token in np.argsort(-log_probs[i])[:beam_width]:
                    candidates.append((score + float(log_probs[i, token]), tokens + [int(token)],
                                       attn + [weights[i]], i))
            candidates.sort(key=lambda cand: -cand[0])
            beams = []
            for score, tokens, attn, i in candidates:
                if tokens[-1] == c.end_token:
                    finished.append((score / max(len(tokens) - 1, 1) ** length_penalty, tokens[:-1], attn[:-1]))
                else:
                    beams.append((score, tokens, attn, [s[i : i + 1] for s in new_states]))
                if len(beams) == beam_width:
                    break
            best_finished = max((f[0] for f in finished), default=-np.inf)
            if not beams or best_finished >= max(b[0] for b in beams):
                break
        if not finished:
            finished = [(b[0], b[1], b[2]) for b in beams]
        _, tokens, attn = max(finished, key=lambda f: f[0])
        results.append(tokens)
        attentions.append(np.array(attn).reshape(len(attn), -1))
    return Decoded(results, attentions)
