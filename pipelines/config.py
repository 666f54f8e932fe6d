"""Typed configuration of the data stage: where data comes from, how it is cleaned, transformed and fed.

    data:
      source: {type: csv, path: data/*.csv, label_column: species}
      split: {validation: 0.15, test: 0.15, stratify: true}
      missing: {policy: impute, strategy: median, indicator: true}
      normalization: per_feature
      imbalance: {class_weight: balanced}
      batch_size: 64

Each source type has its own section (`type` picks it); everything else
applies to every source where it makes sense, and is refused where it does
not (augmentation of a CSV, say), before any work starts.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from tfdl.schema import StrictModel

OnBadData = Literal["error", "skip"]


class SklearnSource(StrictModel):
    """A dataset that ships with scikit-learn: digits, iris, wine, breast_cancer."""

    type: Literal["sklearn"] = "sklearn"
    name: str = "digits"

    def describe(self) -> str:
        return f"scikit-learn {self.name}"


class CsvSource(StrictModel):
    """One or more CSV files (`path` may be a glob) with one example per row.

    Attributes:
        path: a file or a glob pattern; several files must share their columns.
        label_column: the column holding the class (a name or an index).
        header: the first line holds the column names; otherwise give
            `column_names`.
        column_types: `float`, `int` or `string` per column; others are inferred.
        feature_columns: the numeric columns fed to the model (default: all
            but the label).
        input_name: the model input's name, the key serving clients send.
    """

    type: Literal["csv"]
    path: str
    label_column: str
    header: bool = True
    column_names: list[str] | None = None
    column_types: dict[str, Literal["float", "int", "string"]] | None = None
    feature_columns: list[str] | None = None
    delimiter: str = Field(",", min_length=1, max_length=1)
    class_names: list[str] | None = None
    input_name: str = "features"

    def describe(self) -> str:
        return f"CSV {self.path}"

    @model_validator(mode="after")
    def _names_without_header(self) -> "CsvSource":
        if not self.header and not self.column_names:
            raise ValueError("header is false, so column_names must list the columns")
        return self


class TFRecordSource(StrictModel):
    """TFRecord files of `tf.train.Example` records, already split into files per split.

    Attributes:
        train, validation, test: file patterns of each split.
        spec: the feature spec JSON (`write_tfrecords` writes
            `feature_spec.json` beside the files; the default looks there).
        compression: `GZIP`, `ZLIB` or none.
        input_key, label_key: the features holding the model input and the label.
        class_names: the name of each class index.
        input_name: the model input's name (default: `input_key`).
    """

    type: Literal["tfrecord"]
    train: str
    validation: str
    test: str
    spec: str | None = None
    compression: Literal["GZIP", "ZLIB"] | None = None
    input_key: str
    label_key: str = "label"
    class_names: list[str] = Field(min_length=2)
    input_name: str | None = None

    def describe(self) -> str:
        return f"TFRecord {self.train}"


class ImageDirectorySource(StrictModel):
    """A folder with one sub-folder of images per class (`path/CLASS/IMAGE.png`).

    Attributes:
        image_size: (height, width) every image is resized to.
        channels: 1 (grayscale) or 3 (RGB).
    """

    type: Literal["image_directory"]
    path: str
    image_size: tuple[int, int] = (64, 64)
    channels: Literal[1, 3] = 3
    input_name: str = "image"

    def describe(self) -> str:
        return f"images in {self.path}"


class TextDirectorySource(StrictModel):
    """A folder with one sub-folder of text files per class (`path/CLASS/FILE.txt`)."""

    type: Literal["text_directory"]
    path: str
    encoding: str = "utf-8"
    input_name: str = "text"

    def describe(self) -> str:
        return f"texts in {self.path}"


class TFDSSource(StrictModel):
    """A TensorFlow Datasets dataset already prepared in `data_dir` (never downloaded at run time).

    Attributes:
        name: the TFDS name, optionally with a version (`mnist:3.0.1`).
        data_dir: where the prepared data lives.
        input_key, label_key: the features holding the model input and the label.
        image_size: resize images to (height, width); none keeps their size.
    """

    type: Literal["tfds"]
    name: str
    data_dir: str
    input_key: str = "image"
    label_key: str = "label"
    image_size: tuple[int, int] | None = None
    input_name: str | None = None

    def describe(self) -> str:
        return f"TFDS {self.name} in {self.data_dir}"


class SyntheticShapesSource(StrictModel):
    """Generated images of circles, squares and triangles (`pipelines/synthetic_shapes.py`); ships with tfdl.

    Attributes:
        task: what each example is labelled with: `classification` (the
            class of the largest visible shape), `segmentation` (a class
            per pixel, 0 the background), `detection` (a box and a class
            per shape) or `instance` (boxes, classes and a mask per shape,
            for `two_stage_detector` with `masks: true`); `tfdl run` trains
            detectors on the last two, see `tfdl.tasks.detection`.
        examples: how many images to generate (before the split).
        image_size: side of the square RGB images.
        min_objects, max_objects: shapes per image.
        seed: the generator's seed; None uses the run's.
        input_name: the model input's name, the key serving clients send.
    """

    type: Literal["synthetic_shapes"]
    task: Literal["classification", "segmentation", "detection", "instance"] = "classification"
    examples: int = Field(2000, ge=10)
    image_size: int = Field(64, ge=16)
    min_objects: int = Field(1, ge=1)
    max_objects: int = Field(4, ge=1)
    seed: int | None = None
    input_name: str = "image"

    @model_validator(mode="after")
    def _objects_range(self) -> "SyntheticShapesSource":
        if self.max_objects < self.min_objects:
            raise ValueError(f"max_objects {self.max_objects} is below min_objects {self.min_objects}")
        return self

    def describe(self) -> str:
        return f"{self.examples} synthetic {self.image_size}x{self.image_size} shape images ({self.task})"


class GeneratedSource(StrictModel):
    """A dataset tfdl generates by name (`pipelines/generated.py`): XOR, the adding problem, a noisy sine...

    Attributes:
        name: a registered generator (`tfdl.pipelines.generated.available_generators()`).
        examples: how many examples to generate (before the split).
        seed: the generator's seed; None uses the run's.
        params: the generator's own parameters, checked against it.
    """

    type: Literal["generated"]
    name: str
    examples: int = Field(1000, ge=10)
    seed: int | None = None
    params: dict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_generator(self) -> "GeneratedSource":
        from tfdl.pipelines.generated import check_generator_params

        check_generator_params(self.name, self.params)
        return self

    def describe(self) -> str:
        return f"{self.examples} generated examples of {self.name!r}"


Source = Annotated[
    Union[SklearnSource, CsvSource, TFRecordSource, ImageDirectorySource, TextDirectorySource, TFDSSource,
          SyntheticShapesSource, GeneratedSource],
    Field(discriminator="type"),
]
IN_MEMORY_SOURCES = (
    SklearnSource, CsvSource, ImageDirectorySource, TextDirectorySource, SyntheticShapesSource, GeneratedSource,
)


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


class MissingConfig(StrictModel):
    """What to do with missing values (empty or NA cells, NaN) in tabular data.

    Attributes:
        policy: `error` names the rows and columns and stops; `drop` drops the
            rows; `impute` fills them with a statistic of the training split.
        strategy: the statistic `impute` fills with.
        fill_value: the value of the `constant` strategy.
        indicator: add a 0/1 column per feature that had missing values.
    """

    policy: Literal["error", "drop", "impute"] = "error"
    strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean"
    fill_value: float = 0.0
    indicator: bool = False


class ImbalanceConfig(StrictModel):
    """Counter class imbalance by weighting the loss or resampling the training feed.

    Attributes:
        class_weight: `balanced` weights each class by n / (classes x count),
            counted on the training split.
        resample: draw the training feed to `target` by `oversample`
            (mixing per-class streams) or `rejection` resampling.
        target: `uniform`, or one probability per class.
    """

    class_weight: Literal["none", "balanced"] = "none"
    resample: Literal["none", "oversample", "rejection"] = "none"
    target: Literal["uniform"] | list[float] = "uniform"

    @model_validator(mode="after")
    def _one_remedy(self) -> "ImbalanceConfig":
        if self.class_weight != "none" and self.resample != "none":
            raise ValueError("use class_weight or resample, not both: together they over-correct")
        return self


class AugmentationConfig(StrictModel):
    """Random image augmentation of the training feed (validation and test feeds are never augmented).

    Two implementations, picked by the data's task, so labels stay true:

    - classification: Keras preprocessing layers in tf.data
      (`pipelines/augmentation.py`); the label does not move with the image.
      Takes `flip` (any), `rotation`, `zoom`, `translation`, `contrast`,
      `brightness`.
    - segmentation, detection and instance masks (`synthetic_shapes` with
      `task: segmentation | detection | instance`): the geometry-aware
      transform (`pipelines/geometric_augmentation.py`), which moves masks and
      boxes with the image. Takes `flip: horizontal`, `crop_scale`,
      `brightness`, `contrast`, `saturation`, `hue`; `zoom` and
      `translation` are `crop_scale`'s work there, and rotation and vertical
      flips are refused.

    Either way the run's seed drives the draws: the same seed gives the same
    feed, and each epoch draws new transforms.

        augmentation: {flip: horizontal, crop_scale: [0.6, 1.0], brightness: 0.1,
                       contrast: 0.2, saturation: 0.2, hue: 0.02}   # segmentation / detection

    Attributes:
        flip: which mirror images to draw, each with probability 1/2.
        rotation: up to this fraction of a full turn, either way.
        zoom, translation: up to this fraction of the image size.
        crop_scale: (low, high): crop a square-scaled window whose side is a
            fraction drawn from [low, high] of the image side, at a random
            position, and resize it back to the image size; objects left
            mostly outside the window are dropped from the labels.
        brightness: shift by up to this fraction of the value range.
        contrast, saturation: scale by a factor drawn from [1 - f, 1 + f].
        hue: rotate the hue by up to this fraction of a full turn, at most 0.5.

    0 (or null) turns a transform off.
    """

    flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None = None
    rotation: float = Field(0.0, ge=0.0, lt=1.0)
    zoom: float = Field(0.0, ge=0.0, lt=1.0)
    translation: float = Field(0.0, ge=0.0, lt=1.0)
    crop_scale: tuple[float, float] | None = None
    contrast: float = Field(0.0, ge=0.0, lt=1.0)
    brightness: float = Field(0.0, ge=0.0, lt=1.0)
    saturation: float = Field(0.0, ge=0.0, le=1.0)
    hue: float = Field(0.0, ge=0.0, le=0.5)

    @model_validator(mode="after")
    def _crop_scale_range(self) -> "AugmentationConfig":
        if self.crop_scale is not None and not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise ValueError(
                f"crop_scale {list(self.crop_scale)}: give [low, high] fractions of the image side with "
                "0 < low <= high <= 1, e.g. [0.6, 1.0]"
            )
        return self

    def refusals(self, dense: str | None) -> list[str]:
        """What this augmentation asks for that the feed of `dense` (a task, or None for classification) cannot do."""
        if dense is None:
            keras = "the classification feed augments with Keras layers, which have no"
            asked = {
                "crop_scale": (self.crop_scale is not None,
                               f"{keras} crop-and-scale (it is for segmentation and detection); use zoom"),
                "saturation": (self.saturation > 0,
                               f"{keras} saturation jitter (it is for segmentation and detection); "
                               "use contrast and brightness"),
                "hue": (self.hue > 0,
                        f"{keras} hue jitter (it is for segmentation and detection); use contrast and brightness"),
            }
        else:
            dense = {"instance": "instance segmentation"}.get(dense, dense)
            moves = "it moves the masks and boxes with the image"
            asked = {
                "flip": (self.flip not in (None, "horizontal"),
                         f"only flip: horizontal is implemented for {dense}; use it, or leave flip out"),
                "rotation": (self.rotation > 0, f"the geometry-aware transform of {dense} has no rotation; "
                                                "use flip: horizontal and crop_scale"),
                "zoom": (self.zoom > 0, f"use crop_scale (e.g. [0.6, 1.0]) for {dense}: {moves}"),
                "translation": (self.translation > 0,
                                f"use crop_scale for {dense}: its window sits at a random position, and {moves}"),
            }
        return [f"{name}: {why}" for name, (refused, why) in asked.items() if refused]


class TextConfig(StrictModel):
    """Text vectorization, fitted on the training split only.

    Attributes:
        max_tokens: vocabulary size, padding and out-of-vocabulary ids included.
        sequence_length: pad or cut every text to this many tokens; none keeps
            each text's length and pads per batch (see `bucket_boundaries`).
        bucket_boundaries: group texts by length so a batch pads only to its
            bucket's longest text (needs `sequence_length: null`).
    """

    max_tokens: int = Field(20000, ge=3)
    sequence_length: int | None = Field(128, ge=1)
    standardize: Literal["lower_and_strip_punctuation", "lower", "strip_punctuation"] | None = "lower_and_strip_punctuation"
    bucket_boundaries: list[int] | None = None

    @model_validator(mode="after")
    def _bucketing_needs_free_length(self) -> "TextConfig":
        if self.bucket_boundaries is not None:
            if self.sequence_length is not None:
                raise ValueError("bucket_boundaries needs sequence_length: null (buckets pad per batch)")
            if sorted(set(self.bucket_boundaries)) != self.bucket_boundaries or self.bucket_boundaries[0] < 1:
                raise ValueError("bucket_boundaries must be increasing positive lengths")
        return self


class DataConfig(StrictModel):
    """The data stage: a source, a split, cleaning, transforms and the tf.data feed.

    Attributes:
        source: where examples come from (see the source classes above).
        split: validation and test fractions, see `SplitConfig` (sources that
            come split, TFRecord files and TFDS, keep their own splits).
        normalization: `global` standardizes with one mean and variance over
            all features (right for pixels), `per_feature` with one per
            feature, `none` feeds raw values. Always fitted on the training
            split only.
        missing: the missing-value policy, see `MissingConfig`.
        on_bad_data: `error` stops on an unreadable file, corrupt record or
            malformed row and names it; `skip` leaves it out and counts it in
            the report.
        imbalance: class weights or resampling, see `ImbalanceConfig`.
        augmentation: random image transforms of the training feed, see
            `AugmentationConfig`; for segmentation and detection they move
            the masks and boxes with the image.
        text: vectorization of text sources, see `TextConfig`.
        batch_size: examples per batch per replica (the trainer multiplies it
            by the number of replicas).
        shuffle_buffer: size of the shuffle buffer; 0 turns shuffling off.
        cache: keep the prepared examples in `memory` or on `disk` (in
            `cache_dir`) after the first epoch, or `none`.
        deterministic: tf.data yields elements in a fixed order (parallel maps
            too); false lets it trade order for speed.
    """

    source: Source = SklearnSource()
    split: SplitConfig = SplitConfig()
    normalization: Literal["global", "per_feature", "none"] = "global"
    missing: MissingConfig = MissingConfig()
    on_bad_data: OnBadData = "error"
    imbalance: ImbalanceConfig = ImbalanceConfig()
    augmentation: AugmentationConfig | None = None
    text: TextConfig = TextConfig()
    batch_size: int = Field(32, ge=1)
    shuffle_buffer: int = Field(2048, ge=0)
    cache: Literal["memory", "disk", "none"] = "memory"
    cache_dir: str | None = None
    deterministic: bool = True

    @model_validator(mode="after")
    def _fits_the_source(self) -> "DataConfig":
        kind = self.source.type
        if self.augmentation is not None and kind not in ("image_directory", "tfds", "synthetic_shapes"):
            raise ValueError(f"augmentation applies to images; a {kind} source has none")
        dense = self.source.task if kind == "synthetic_shapes" and self.source.task != "classification" else None
        refused = self.augmentation.refusals(dense) if self.augmentation is not None else []
        if refused:
            raise ValueError("augmentation." + "; augmentation.".join(refused))
        if dense and self.split.stratify:
            raise ValueError(f"split.stratify needs one class per example; set it to false for {dense}")
        if dense and (self.imbalance.class_weight != "none" or self.imbalance.resample != "none"):
            raise ValueError(f"imbalance needs one class per example; leave it out for {dense}")
        if self.cache == "disk" and not self.cache_dir:
            raise ValueError("cache: disk needs cache_dir, the folder the cache files go to")
        return self
