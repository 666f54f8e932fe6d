"""Random image augmentation of the training feed, with Keras preprocessing layers run in tf.data.

Augmentation runs on the input side, on whole batches, so it touches only
the training feed and never becomes part of an exported or served model.

The random draws are stateless. A Keras random layer keeps its seed in a
variable that each call reads and advances; read inside tf.data, that
variable races between parallel calls (the same seed gives different images
from run to run) and makes the iterator impossible to checkpoint (a backup
mid-run fails with "ReadVariableOp is stateful"). So `augment` zips each
batch with a seed pair from `tf.data.Dataset.random`, part of the iterator's
own state, and hands each layer seeds derived from it: the same seed gives
the same images with any parallelism, each epoch gets new draws, and a
backup of the iterator resumes them exactly.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import keras
import tensorflow as tf

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.geometric_augmentation import seed_pairs

Flip = Literal["horizontal", "vertical", "horizontal_and_vertical"]


def build_augmentation(
    *,
    flip: Flip | None = None,
    rotation: float = 0.0,
    zoom: float = 0.0,
    translation: float = 0.0,
    contrast: float = 0.0,
    brightness: float = 0.0,
    value_range: tuple[float, float] = (0.0, 255.0),
    seed: int | None = None,
) -> keras.Sequential | None:
    """The Keras preprocessing layers for the transforms asked for, in a fixed order.

    Order: RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
    RandomContrast, RandomBrightness; a layer is included only when its
    factor is non-zero (or `flip` is set). Each factor `f` draws uniformly
    from `[-f, f]` per image.

    Args:
        flip: which flips to draw, each with probability 1/2; None: no flip.
        rotation: fraction of a full turn (0.1 rotates by up to 36 degrees).
        zoom: fraction of the image size to zoom in or out by.
        translation: fraction of the height and of the width to shift by.
        contrast: fraction to scale each image's contrast by.
        brightness: fraction of the value range to shift brightness by.
        value_range: (low, high) of the pixel values; contrast and
            brightness clip their output to it.
        seed: seeds every layer (layer `i` gets `seed + i`, so their draws
            are independent); None draws fresh randomness every run.

    Returns:
        A `keras.Sequential` named `augmentation`, or None when no transform
        is asked for.

    Raises:
        DataError: naming the argument, for a factor outside [0, 1), an
            unknown `flip`, or a `value_range` whose low is not below its high.
    """
    factors = {
        "rotation": rotation,
        "zoom": zoom,
        "translation": translation,
        "contrast": contrast,
        "brightness": brightness,
    }
    for name, factor in factors.items():
        _check_factor(name, factor)
    if flip not in (None, "horizontal", "vertical", "horizontal_and_vertical"):
        raise DataError(f"flip={flip!r}: use 'horizontal', 'vertical', 'horizontal_and_vertical' or null")
    low, high = _check_value_range(value_range)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise DataError(f"seed={seed!r}: use an integer, or null for fresh randomness")

    layers = []

    def layer_seed() -> int | None:
        return None if seed is None else seed + len(layers)

    if flip is not None:
        layers.append(keras.layers.RandomFlip(flip, seed=layer_seed()))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=layer_seed()))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=layer_seed()))
    if translation:
        layers.append(keras.layers.RandomTranslation(translation, translation, seed=layer_seed()))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(low, high), seed=layer_seed()))
    if brightness:
        layers.append(keras.layers.RandomBrightness(brightness, value_range=(low, high), seed=layer_seed()))
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")


def augment(
    dataset: tf.data.Dataset, augmentation: keras.Sequential | None, seed: int | None = None
) -> tf.data.Dataset:
    """Augment every batch of `(images, labels, ...)` of a dataset (the training feed only).

    Each layer is applied as in training (`training=True`), with seeds drawn
    per batch from the dataset's own seed stream rather than from the
    layer's seed variable. Given the same seed, the same dataset gives the
    same images on every run; each new pass over the dataset (epoch) draws
    new transforms; an iterator over the result can be checkpointed.

    Args:
        dataset: batched elements `(images, labels)` (more components, such
            as sample weights, pass through unchanged); images of shape
            `(batch, height, width, channels)` in the augmentation's value
            range.
        augmentation: from `build_augmentation`, or any `keras.Sequential` of
            Keras image augmentation layers; None returns `dataset` unchanged.
        seed: seeds the draws; None takes the seed the first layer was
            built with (`build_augmentation`'s), and fresh randomness every
            run when that is None too.

    Returns:
        The dataset with float32 augmented images, the rest of each element
        unchanged.

    Raises:
        DataError: if the elements are not `(images, labels, ...)` tuples of
            batched images, or a layer is not a Keras image augmentation layer.
    """
    if augmentation is None:
        return dataset
    layers = _augmentation_layers(augmentation)
    _check_batched_images(dataset.element_spec)

    if seed is None:
        seed = getattr(layers[0], "seed", None)

    def transform(element, seed_pair):
        images, *rest = element
        images = tf.cast(images, tf.float32)
        for index, layer in enumerate(layers):
            seeds = _StatelessSeeds(tf.random.experimental.stateless_fold_in(seed_pair, index))
            transformation = layer.get_random_transformation(images, training=True, seed=seeds)
            images = layer.transform_images(images, transformation, training=True)
        return (images, *rest)

    return tf.data.Dataset.zip((dataset, seed_pairs(seed))).map(transform, num_parallel_calls=tf.data.AUTOTUNE)


class _StatelessSeeds(keras.random.SeedGenerator):
    """A seed generator without a variable: the i-th seed it gives is `seed_pair` folded with i.

    Keras's random layers draw through a `SeedGenerator`; this one lets them
    draw statelessly from a tensor, so nothing outside the tf.data iterator
    holds random state.
    """

    def __init__(self, seed_pair: tf.Tensor):  # no super().__init__(): that makes the state variable
        self._seed_pair = seed_pair
        self._drawn = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self._drawn += 1
        return tf.random.experimental.stateless_fold_in(self._seed_pair, self._drawn)


def _augmentation_layers(augmentation) -> list:
    layers = augmentation.layers if isinstance(augmentation, keras.Sequential) else [augmentation]
    for layer in layers:
        if not (hasattr(layer, "get_random_transformation") and hasattr(layer, "transform_images")):
            raise DataError(
                f"augmentation layer {layer.name!r} ({type(layer).__name__}) is not a Keras image "
                "augmentation layer; use the keras.layers.Random* layers (see build_augmentation)"
            )
    return layers


def _check_batched_images(spec) -> None:
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise DataError(f"augment needs a dataset of (images, labels) batches; its elements are {spec}")
    images = spec[0]
    if not isinstance(images, tf.TensorSpec) or images.shape.rank != 4:
        raise DataError(
            f"augment maps whole batches of images (batch, height, width, channels); the images "
            f"are {images}; batch the dataset first"
        )


def _check_factor(name: str, factor: float) -> None:
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not math.isfinite(factor) or not 0.0 <= factor < 1.0:
        raise DataError(f"{name}={factor!r}: use a fraction in [0, 1), 0 to turn the transform off")


def _check_value_range(value_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise DataError(f"value_range={value_range!r}: give (low, high), e.g. (0, 255)") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise DataError(f"value_range={value_range!r}: low must be below high, e.g. (0, 255)")
    return low, high
