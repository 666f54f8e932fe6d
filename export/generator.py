"""A GAN's generator as a serving signature: `generate`, noise (and labels) in, images in raw data units out.

    signature = gan_generate_signature(gan, preprocessing=pipeline.preprocessing)
    export_gan_generator(gan, "serving/digits_gan/1", preprocessing=pipeline.preprocessing)
    # POST /v1/models/digits_gan:predict
    #   {"signature_name": "generate", "inputs": {"noise": [[...32 floats...]], "labels": [3]}}

The generator makes images in the units it was trained on, which are the
data pipeline's output: raw pixels under `normalization: none`, or
standardized ones. The signature undoes the pipeline's normalization inside
the graph, so clients always get the raw units of the data (0..16 for
scikit-learn's digits) whatever the training config.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def normalization_inverse(preprocessing, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`(scale, offset)` with `raw = fed * scale + offset`, undoing the pipeline's preprocessing.

    Args:
        preprocessing: the pipeline's fitted preprocessing: None, a Keras
            `Normalization` layer, or a model/list made of them only.
        image_shape: the generator's image shape; per-feature constants are
            reshaped to it.

    Returns:
        float32 arrays broadcastable to (batch, *image_shape).

    Raises:
        ValueError: the preprocessing holds a layer that cannot be inverted
            (imputation, vectorization...): a GAN needs numeric pixels.
    """
    import keras

    scale, offset = np.ones((), np.float32), np.zeros((), np.float32)
    if preprocessing is None:
        return scale, offset
    layers = getattr(preprocessing, "layers", None)
    layers = list(preprocessing) if isinstance(preprocessing, (list, tuple)) else (layers or [preprocessing])
    for layer in reversed(layers):  # the last applied is the first undone
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, keras.layers.Normalization) or layer.invert:
            raise ValueError(
                f"the GAN export undoes Normalization layers only, but the data's preprocessing has "
                f"{type(layer).__name__} {layer.name!r}; use data.normalization: global, per_feature or none"
            )
        mean = np.asarray(layer.mean, np.float32)
        std = np.sqrt(np.maximum(np.asarray(layer.variance, np.float32), keras.backend.epsilon()))
        if mean.size > 1:
            mean, std = mean.reshape(image_shape), std.reshape(image_shape)
        else:
            mean, std = mean.reshape(()), std.reshape(())
        # raw = (fed * scale + offset) * std + mean, composed from the inside out.
        scale, offset = scale * std, offset * std + mean
    return scale.astype(np.float32), offset.astype(np.float32)


def gan_generate_signature(model, preprocessing=None):
    """A `tf.function` mapping `noise` (and `labels`) to `images` in raw data units.

    Inputs: `noise`, float32 (batch, latent_dim); for a conditional GAN also
    `labels`, int32 (batch,), each in [0, num_classes). Output:
    `{"images": float32 (batch, *image_shape)}`.

    Args:
        model: a GAN of `tfdl.models` (`dcgan`, `conditional_gan`, `wgan`).
        preprocessing: the pipeline's preprocessing, undone in the graph (see
            `normalization_inverse`); None when the model was fed raw data.

    Returns:
        A `tf.function` with an input signature, ready for `export_generator`.

    Raises:
        ValueError: `model` is not a GAN, or the preprocessing cannot be undone.
    """
    import tensorflow as tf

    if not hasattr(model, "generator") or not hasattr(model, "config"):
        raise ValueError(f"gan_generate_signature takes a GAN from tfdl.models, got {type(model).__name__}")
    config = model.config
    scale, offset = normalization_inverse(preprocessing, config.image_shape)
    scale, offset = tf.constant(scale), tf.constant(offset)
    generator = model.generator
    noise_spec = tf.TensorSpec((None, config.latent_dim), tf.float32, name="noise")

    def to_raw(images):
        return {"images": tf.cast(images, tf.float32) * scale + offset}

    if model.num_classes is None:
        @tf.function(input_signature=[noise_spec])
        def generate(noise):
            return to_raw(generator(noise, training=False))

        return generate

    num_classes = model.num_classes

    @tf.function(input_signature=[noise_spec, tf.TensorSpec((None,), tf.int32, name="labels")])
    def generate_conditional(noise, labels):
        checks = [
            tf.debugging.assert_equal(tf.shape(labels)[0], tf.shape(noise)[0],
                                      message="labels: send one label per noise row"),
            tf.debugging.assert_greater_equal(labels, 0, message=f"labels must be in [0, {num_classes - 1}]"),
            tf.debugging.assert_less(labels, num_classes, message=f"labels must be in [0, {num_classes - 1}]"),
        ]
        with tf.control_dependencies(checks):
            return to_raw(generator([noise, labels], training=False))

    return generate_conditional


def export_gan_generator(model, directory: Path | str, preprocessing=None) -> Path:
    """Write a SavedModel of the GAN's generator whose `generate` (and `serving_default`) signature gives raw images.

    Args:
        model: a trained GAN of `tfdl.models`.
        directory: the SavedModel folder (`serving/NAME/VERSION` for TF Serving).
        preprocessing: the pipeline's preprocessing to undo; see `gan_generate_signature`.

    Returns:
        The SavedModel folder.

    Raises:
        ValueError: see `gan_generate_signature`.
    """
    from tfdl.export.generation import export_generator

    return export_generator(model.generator, directory, gan_generate_signature(model, preprocessing))
