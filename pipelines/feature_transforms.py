"""The transforms of each kind of feature, fitted on the training split.

Numbers (tabular rows, pixels as rows) are imputed and normalized; images are
decoded from files, augmented and normalized; texts are vectorized. Each kind
says where in the feed its work runs and which fitted layers the served model
carries, so training and serving transform inputs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.config import DataConfig
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.normalization import fit_normalization

# Images decoded to fit the normalization statistics: enough for a stable
# mean and variance, bounded so a large folder is not decoded twice.
_IMAGE_STATS_SAMPLE = 1000


@dataclass
class FeatureTransforms:
    """Where the transforms of one kind of feature run, and what they need.

    Attributes:
        load: per example, before the cache (decode an image file).
        preprocess: per chunk of examples, before the cache (normalize, vectorize).
        augment: transforms the batched training feed (random image transforms).
        after_batch: per batch, every feed, after `augment` (normalize
            augmented images).
        batch: replaces plain batching (bucketing texts by length).
        served: the preprocessing the served model carries (raw in, model-ready out).
        input_shape, input_dtype: one raw served input.
        raw_inputs: features as stored -> the raw inputs a client sends.
        model_params: model parameters the data decides.
        assets: files to write beside the model (name -> writer).
    """

    input_shape: tuple[int, ...]
    input_dtype: str
    load: Callable | None = None
    preprocess: Callable | None = None
    augment: Callable[[tf.data.Dataset], tf.data.Dataset] | None = None
    after_batch: Callable | None = None
    batch: Callable | None = None
    served: object | None = None
    raw_inputs: Callable[[np.ndarray], np.ndarray] = lambda features: features
    model_params: dict = field(default_factory=dict)
    assets: dict[str, Callable[[Path], Path]] = field(default_factory=dict)


def fit_feature_transforms(
    config: DataConfig, data: ArrayData, train: ArrayData, seed: int, report: DataReport, batch_size: int
) -> FeatureTransforms:
    """Fit the transforms that suit `data`'s kind of features on the `train` examples.

    `batch_size` is the global batch size (bucketed text feeds batch themselves).
    """
    kind = config.source.type
    if kind == "image_directory":
        return _image_transforms(config, train, seed)
    if kind == "text_directory" or (kind == "generated" and data.features.dtype.kind in "OUS"):  # texts
        return _text_transforms(config, train, batch_size)
    if kind == "synthetic_shapes":
        return _shapes_transforms(config, train, seed, batch_size)
    return _numeric_transforms(config, data, train, report)


def fit_stream_transforms(config: DataConfig, train_sample: np.ndarray, seed: int) -> FeatureTransforms:
    """Transforms of a streamed source, fitted on a sample of its decoded training inputs.

    Inputs of rank 3 (height, width, channels) are images, pixel values in
    [0, 255] (brightness and contrast clip to it): augmented, then
    normalized per batch; anything else is normalized before the cache.
    """
    return _sample_transforms(config, train_sample, _keras_augmenter(config, seed, value_range=(0.0, 255.0)))


def _shapes_transforms(config: DataConfig, train: ArrayData, seed: int, batch_size: int) -> FeatureTransforms:
    """Synthetic shapes, images in [0, 1] held in memory: transformed as a stream's are.

    A segmentation feed is augmented with its masks (`dense_augmentation`);
    a classification feed with Keras layers.
    """
    if config.source.task == "classification":
        return _sample_transforms(config, train.features, _keras_augmenter(config, seed, value_range=(0.0, 1.0)))
    augment = None
    if config.augmentation is not None:
        from tfdl.pipelines.dense_augmentation import augment_batches

        augment = lambda ds: augment_batches(ds, config.augmentation, seed, batch_size)
    return _sample_transforms(config, train.features, augment)


def _sample_transforms(config: DataConfig, train_sample: np.ndarray, augment) -> FeatureTransforms:
    normalizer = fit_normalization(train_sample, config.normalization)
    shape = tuple(train_sample.shape[1:])
    if len(shape) != 3:
        return FeatureTransforms(input_shape=shape, input_dtype="float32", preprocess=normalizer, served=normalizer)
    return FeatureTransforms(
        input_shape=shape, input_dtype="float32", augment=augment, after_batch=normalizer,
        served=normalizer, model_params={"input_shape": shape},
    )


# The fields of `AugmentationConfig` that the Keras layers implement (the config refuses the others).
_KERAS_FACTORS = {"flip", "rotation", "zoom", "translation", "contrast", "brightness"}


def _keras_augmenter(config: DataConfig, seed: int, value_range: tuple[float, float]):
    """The classification feed's augmentation stage (Keras layers), or None when none is configured."""
    if config.augmentation is None:
        return None
    from tfdl.pipelines.augmentation import augment, build_augmentation

    augmentation = build_augmentation(
        **config.augmentation.model_dump(include=_KERAS_FACTORS), value_range=value_range, seed=seed,
    )
    return lambda ds: augment(ds, augmentation)


def _numeric_transforms(config: DataConfig, data: ArrayData, train: ArrayData, report: DataReport) -> FeatureTransforms:
    import keras

    layers = []
    train_features = train.features
    if config.missing.policy == "impute":
        from tfdl.pipelines.missing import fit_imputer, impute_report

        imputer = fit_imputer(
            train.features, config.missing.strategy, fill_value=config.missing.fill_value,
            indicator=config.missing.indicator, feature_names=data.feature_names, report=report,
        )
        impute_report(data.features, imputer, report, data.feature_names)
        train_features = np.asarray(imputer(train.features))
        layers.append(imputer)
    normalizer = fit_normalization(train_features, config.normalization)
    if normalizer is not None:
        layers.append(normalizer)
    if not layers:
        served = None
    elif len(layers) == 1:
        served = layers[0]
    else:
        served = keras.Sequential(layers, name="preprocessing")
        served.build((None, *data.features.shape[1:]))
    return FeatureTransforms(
        input_shape=tuple(data.features.shape[1:]), input_dtype="float32", preprocess=served, served=served,
    )


def _image_transforms(config: DataConfig, train: ArrayData, seed: int) -> FeatureTransforms:
    from tfdl.pipelines.image_directory import image_loader, load_image_array

    source = config.source
    size, channels = tuple(source.image_size), source.channels
    sample = np.random.default_rng(seed).permutation(len(train))[:_IMAGE_STATS_SAMPLE]
    normalizer = fit_normalization(load_image_array(train.features[np.sort(sample)], size, channels), config.normalization)
    return FeatureTransforms(
        input_shape=(*size, channels),
        input_dtype="float32",
        load=image_loader(size, channels),
        augment=_keras_augmenter(config, seed, value_range=(0.0, 255.0)),
        after_batch=normalizer,
        served=normalizer,
        raw_inputs=lambda paths: load_image_array(paths, size, channels),
        model_params={"input_shape": (*size, channels)},
    )


def _text_transforms(config: DataConfig, train: ArrayData, batch_size: int) -> FeatureTransforms:
    from tfdl.pipelines.text_vectorization import bucket_by_length, fit_text_vectorizer, save_vocabulary

    text = config.text
    vectorizer = fit_text_vectorizer(
        train.features, max_tokens=text.max_tokens, sequence_length=text.sequence_length, standardize=text.standardize,
    )
    params = {"vocabulary_size": vectorizer.vocabulary_size()}
    transforms = FeatureTransforms(
        input_shape=(), input_dtype="string", served=vectorizer, model_params=params,
        assets={"vocabulary": lambda directory: save_vocabulary(vectorizer, Path(directory) / "vocabulary.txt")},
    )
    if text.sequence_length is not None:
        params["max_length"] = text.sequence_length
        transforms.preprocess = vectorizer
        return transforms
    # Bucketing: each text keeps its own length until its batch pads it.
    transforms.load = lambda texts: vectorizer(texts[None])[0]
    if text.bucket_boundaries:
        transforms.batch = lambda ds: bucket_by_length(ds, boundaries=text.bucket_boundaries, batch_size=batch_size)
    else:
        transforms.batch = lambda ds: ds.padded_batch(batch_size)
    return transforms
