"""The check every attention model's config shares: heads must split the width evenly."""

from __future__ import annotations

from pydantic import model_validator

from tfdl.schema import StrictModel


class AttentionConfig(StrictModel):
    """Base of configs with `embed_dim` and `num_heads` fields (declared by each model with its defaults).

    Multi-head attention splits `embed_dim` into `num_heads` equal parts, so
    a width the heads do not divide fails at config time, naming both.
    """

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})")
        return self
