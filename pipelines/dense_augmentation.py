"""`data.augmentation` for segmentation and detection feeds: the geometry-aware transform on `(image, targets)` pairs.

`tfdl run` feeds segmentation models `(image, semantic_mask)` pairs and
detection models `(image, {"boxes", "classes"[, "masks"]})` pairs. Here
each pair becomes the example dict of `geometric_augmentation`, is flipped,
cropped and colour-jittered with its labels (`augment_dataset`), and goes
back to its pair: the mask or boxes always describe the augmented image.
Only the training feed is augmented, after the cache and the shuffle, so
each epoch draws new transforms; the run's seed drives the draws, so a run
is reproducible.
"""

from __future__ import annotations

import tensorflow as tf

from tfdl.pipelines.config import AugmentationConfig

COLOUR_FACTORS = ("brightness", "contrast", "saturation", "hue")


def geometric_options(augmentation: AugmentationConfig) -> dict:
    """The keyword arguments of `augment_dataset` that `augmentation` asks for (0 or null turns one off)."""
    colour = {name: getattr(augmentation, name) for name in COLOUR_FACTORS}
    return {
        "flip": augmentation.flip == "horizontal",
        "crop_scale": augmentation.crop_scale,
        "color": any(colour.values()),
        **colour,
    }


def augment_pairs(pairs: tf.data.Dataset, augmentation: AugmentationConfig, seed: int) -> tf.data.Dataset:
    """Augment unbatched `(image, targets)` pairs, keeping their masks and boxes on the image.

    Args:
        pairs: `(image [H, W, C] in [0, 1], targets)`, targets a semantic
            mask `[H, W]` (segmentation) or a dict of `boxes` `[N, 4]`,
            `classes` `[N]` and optionally `masks` `[N, H, W]` (detection).
        augmentation: the config's `data.augmentation`.
        seed: the run's seed; the same seed gives the same pairs.

    Returns:
        The augmented pairs, same structure, dtypes and order; float32 images.
    """
    segmentation = not isinstance(pairs.element_spec[1], dict)

    def to_example(image, targets):
        if segmentation:
            # No objects: the transform moves the semantic mask; boxes and classes stay empty.
            return {"image": image, "semantic_mask": targets,
                    "boxes": tf.zeros([0, 4], tf.float32), "classes": tf.zeros([0], tf.int32)}
        return {"image": image, **targets}

    def to_pair(example):
        if segmentation:
            return example["image"], example["semantic_mask"]
        return example["image"], {key: example[key] for key in pairs.element_spec[1]}

    from tfdl.pipelines.geometric_augmentation import augment_dataset

    examples = pairs.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    examples = augment_dataset(examples, seed, **geometric_options(augmentation))
    return examples.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)


def augment_batches(batches: tf.data.Dataset, augmentation: AugmentationConfig, seed: int,
                    batch_size: int) -> tf.data.Dataset:
    """`augment_pairs` on a batched feed of `batch_size` pairs: batches of the same sizes, in the same order."""
    count = int(batches.cardinality())
    pairs = augment_pairs(batches.unbatch(), augmentation, seed)
    rebatched = pairs.batch(batch_size)
    # unbatch forgets the length; Keras needs it to know where an epoch ends.
    return rebatched.apply(tf.data.experimental.assert_cardinality(count)) if count >= 0 else rebatched
