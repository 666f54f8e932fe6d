"""Typed configuration of the data stage: where data comes from and how it is fed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tfdl.schema import StrictModel


class SplitConfig(StrictModel):
    """Fractions of the examples held out for validation and test.

    The split is deterministic for `seed` and stratified by label when
    `stratify` is true, so each class keeps its share in every split.
    """

    validation: float = Field(0.15, gt=0.0, lt=1.0)
    test: float = Field(0.15, gt=0.0, lt=1.0)
    stratify: bool = True

    @model_validator(mode="after")
    def _leave_training_data(self) -> "SplitConfig":
        if self.validation + self.test >= 0.9:
            raise ValueError(
                f"validation ({self.validation}) + test ({self.test}) leave less "
                "than 10% of the examples for training; lower them"
            )
        return self


class DataConfig(StrictModel):
    """The data stage: a source, a split, normalization and the tf.data feed.

    Attributes:
        source: where examples come from; `sklearn` loads a dataset that ships
            with scikit-learn (`name`: digits, iris, wine, breast_cancer).
        name: the dataset's name within the source.
        split: validation and test fractions, see `SplitConfig`.
        normalization: `global` standardizes with one mean and variance over
            all features (right for pixels), `per_feature` with one per
            feature, `none` feeds raw values. Always fitted on the training
            split only.
        batch_size: examples per batch (per replica under a strategy the
            trainer multiplies it by the number of replicas).
        shuffle_buffer: size of the shuffle buffer; 0 turns shuffling off.
        cache: keep the prepared examples in memory after the first epoch.
    """

    source: Literal["sklearn"] = "sklearn"
    name: str = "digits"
    split: SplitConfig = SplitConfig()
    normalization: Literal["global", "per_feature", "none"] = "global"
    batch_size: int = Field(32, ge=1)
    shuffle_buffer: int = Field(2048, ge=0)
    cache: bool = True
