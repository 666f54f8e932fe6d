"""Random image augmentation of the training feed, with Keras preprocessing layers run in tf.data.

Augmentation runs on the input side, on whole batches, so it touches only
the training feed and never becomes part of an exported or served model.

The random draws are reproducible for a seed while the image work runs in
parallel. A random Keras layer keeps its seed in a variable that each call
reads and advances; mapped over batches with `num_parallel_calls`, the calls
race for it and the same seed gives different images from run to run (the
batches also get their draws in whatever order the threads ran). So `augment`
splits each layer's call in two: a sequential map draws the random
parameters of each batch in order (a few numbers per image), then a parallel
map transforms the images with them. The result equals calling the layers on
the batches one after another, and the layers' seed states advance as they
would, so each epoch gets new draws and a checkpoint of the states resumes
them.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import keras
import tensorflow as tf

from tfdl.pipelines.errors import DataError

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


def augment(dataset: tf.data.Dataset, augmentation: keras.Sequential | None) -> tf.data.Dataset:
    """Augment every batch of `(images, labels, ...)` of a dataset (the training feed only).

    Each layer is applied as in training (`training=True`). Given the same
    seeded augmentation, the same dataset gives the same images on every run;
    each new pass over the dataset (epoch) draws new transforms.

    Args:
        dataset: batched elements `(images, labels)` (more components, such
            as sample weights, pass through unchanged); images of shape
            `(batch, height, width, channels)` in the augmentation's value
            range.
        augmentation: from `build_augmentation`, or any `keras.Sequential` of
            Keras image augmentation layers; None returns `dataset` unchanged.

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

    def draw(images, *rest):
        # Sequential on purpose: this is the only step that reads and advances
        # the layers' seed states, so it must see the batches in order.
        transformations = tuple(layer.get_random_transformation(images, training=True) for layer in layers)
        return (images, *rest, transformations)

    def transform(images, *rest_and_transformations):
        *rest, transformations = rest_and_transformations
        images = tf.cast(images, tf.float32)
        for layer, transformation in zip(layers, transformations):
            images = layer.transform_images(images, transformation, training=True)
        return (images, *rest)

    return dataset.map(draw).map(transform, num_parallel_calls=tf.data.AUTOTUNE)


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
