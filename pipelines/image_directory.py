"""A folder of images, one sub-folder per class: listed, checked, then decoded in tf.data.

`list_image_directory` turns `DIR/CLASS_NAME/IMAGE.png` into an `ArrayData`
of file paths and class indices; `check_images` finds corrupt, truncated or
non-image files in one parallel tf.data pass before training starts;
`image_loader` is the per-example `path -> image` map of the training feed and
`load_image_array` decodes a few files at once (normalization statistics,
evaluation and parity samples) with the same code, so every consumer sees the
same pixels.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import tensorflow as tf

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError, where

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# Unreadable files named in an error message; the count is always exact.
_SHOWN_FILES = 5
# Images decoded per step when checking or loading many files.
_CHUNK = 256


def list_image_directory(
    directory: str | os.PathLike,
    *,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    input_name: str = "image",
    report: DataReport | None = None,
) -> ArrayData:
    """List the images of a folder that holds one sub-folder per class.

    The layout is `DIR/CLASS_NAME/IMAGE.png`. Class names are the sorted
    sub-folder names and class `i` is the `i`-th of them. Images may sit in
    nested folders inside a class folder; they belong to that class. Within a
    class, paths are sorted, so the listing is the same on every machine.
    Nothing is decoded here (see `check_images`).

    Ignored, and counted in `report` when one is given: files at the top
    level (they have no class), files in class folders whose extension is not
    in `extensions` (e.g. `.DS_Store`, `notes.txt`), and hidden top-level
    folders such as `.ipynb_checkpoints` (they are not classes).

    Args:
        directory: the folder holding the class sub-folders.
        extensions: file name endings that count as images, compared without
            regard to case (`.PNG` is a `.png`).
        input_name: the name of the model input the images feed.
        report: where ignored files and folders are counted.

    Returns:
        An `ArrayData` whose features are absolute file paths (a numpy string
        array) and whose labels are int32 class indices.

    Raises:
        DataError: if the folder does not exist, holds no class sub-folders,
            a class sub-folder holds no images, or `extensions` is malformed.
    """
    root = Path(os.path.abspath(directory))
    suffixes = _check_extensions(extensions)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; check the path (expected DIR/CLASS_NAME/IMAGE.png)")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder; give the folder that holds one sub-folder per class")
    entries = sorted(root.iterdir())
    class_dirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if not class_dirs:
        raise DataError(
            f"image folder {root} has no class sub-folders; lay the images out as "
            f"{root}/CLASS_NAME/IMAGE.png, one sub-folder per class"
        )
    if report is not None:
        top_files = [p for p in entries if not p.is_dir()]
        hidden = [p for p in entries if p.is_dir() and p.name.startswith(".")]
        report.add("files ignored: outside a class folder", len(top_files), [where(file=p) for p in top_files])
        report.add("folders ignored: hidden, not a class", len(hidden), [where(file=p) for p in hidden])

    paths: list[str] = []
    labels: list[int] = []
    ignored: list[str] = []
    for index, class_dir in enumerate(class_dirs):
        images, others = _class_files(class_dir, suffixes)
        if not images:
            raise DataError(
                f"class folder {class_dir} holds no images ({', '.join(suffixes)}); "
                "add images to it or remove the folder"
            )
        paths.extend(images)
        labels.extend([index] * len(images))
        ignored.extend(others)
    if report is not None:
        report.add(f"files ignored: not an image ({', '.join(suffixes)})", len(ignored), ignored)
    return ArrayData(
        features=np.array(paths, dtype=str),
        labels=np.array(labels, dtype=np.int32),
        class_names=tuple(p.name for p in class_dirs),
        input_name=input_name,
    )


def find_unreadable_images(paths: Sequence[str], *, channels: int = 3) -> list[int]:
    """Indices of the files that cannot be read and decoded as images.

    One parallel tf.data pass decodes every file exactly as `image_loader`
    does and drops the elements that fail (missing, corrupt, truncated or
    not an image); the indices that did not come through are the unreadable
    files. No Python call per image.

    Args:
        paths: image file paths.
        channels: 1 (grayscale) or 3 (RGB), as the images will be loaded.

    Returns:
        The sorted indices into `paths` of the unreadable files.

    Raises:
        DataError: if `channels` is not 1 or 3.
    """
    _check_channels(channels)
    if len(paths) == 0:
        return []
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(paths, dtype=str)).enumerate()
    # The decoded shape is part of the output on purpose: a map that returned
    # only the index would let the graph optimizer prune the decode away, and
    # every file would pass.
    ds = ds.map(lambda i, path: (i, tf.shape(_decode(path, channels))), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors().map(lambda i, shape: i).batch(4096)
    readable = np.zeros(len(paths), dtype=bool)
    for indices in ds.as_numpy_iterator():
        readable[indices] = True
    return np.flatnonzero(~readable).tolist()


def check_images(
    data: ArrayData,
    *,
    channels: int = 3,
    on_bad_data: Literal["error", "skip"] = "error",
    report: DataReport | None = None,
) -> ArrayData:
    """Find the unreadable image files of `data` before training, and stop or leave them out.

    Args:
        data: examples whose features are image file paths.
        channels: 1 (grayscale) or 3 (RGB), as the images will be loaded.
        on_bad_data: `error` raises on any unreadable file; `skip` drops them
            and counts them in `report` (or, without a report, in a warning).
        report: where skipped files are counted.

    Returns:
        `data` itself when every file reads, else the readable examples in
        their original order.

    Raises:
        DataError: naming the unreadable files (with `error`), when no image
            or no image of some class is left after skipping, or for a bad
            `on_bad_data` or `channels`.
    """
    if on_bad_data not in ("error", "skip"):
        raise DataError(f"on_bad_data={on_bad_data!r} is not a policy; use 'error' or 'skip'")
    bad = find_unreadable_images(data.features, channels=channels)
    if not bad:
        return data
    bad_paths = [str(data.features[i]) for i in bad]
    if on_bad_data == "error":
        raise DataError(
            f"{_unreadable_message(bad_paths, len(data))}; remove or replace them, "
            "or set `on_bad_data: skip` to leave them out"
        )
    keep = np.setdiff1d(np.arange(len(data)), bad)
    if len(keep) == 0:
        raise DataError(f"none of the {len(data)} images can be read (e.g. {where(file=bad_paths[0])}); check the files")
    kept = data.take(keep)
    emptied = [name for i, name in enumerate(data.class_names) if not np.any(kept.labels == i)]
    if emptied:
        raise DataError(
            f"class {emptied[0]!r} has no readable image left after skipping {len(bad)} unreadable "
            f"files (e.g. {where(file=bad_paths[0])}); replace its images or remove the class folder"
        )
    if report is not None:
        report.add("images skipped: unreadable", len(bad), bad_paths)
    else:
        warnings.warn(f"skipped {_unreadable_message(bad_paths, len(data))}", stacklevel=2)
    return kept


def image_loader(image_size: tuple[int, int], channels: int = 3) -> Callable[[tf.Tensor], tf.Tensor]:
    """The map function `path -> image` of an image feed.

    The image is decoded (PNG, JPEG, BMP, GIF: the first frame), converted to
    `channels` (grayscale is repeated to RGB; RGB is reduced with
    `tf.image.rgb_to_grayscale`; alpha is dropped) and resized to
    `image_size` with bilinear interpolation and antialiasing, so large
    photos shrink without aliasing and an image already at that size keeps
    its exact pixel values.

    Use it as `dataset.map(image_loader((64, 64)), num_parallel_calls=tf.data.AUTOTUNE)`.

    Args:
        image_size: (height, width) of every image.
        channels: 1 (grayscale) or 3 (RGB).

    Returns:
        A function from a scalar string tensor (a file path) to a float32
        tensor of shape `(height, width, channels)` with values in [0, 255].

    Raises:
        DataError: if `image_size` is not two positive integers or `channels`
            is not 1 or 3.
    """
    height, width = _check_image_size(image_size)
    _check_channels(channels)

    def load(path: tf.Tensor) -> tf.Tensor:
        image = tf.image.resize(_decode(path, channels), (height, width), method="bilinear", antialias=True)
        return tf.ensure_shape(image, (height, width, channels))

    return load


def load_image_array(paths: Sequence[str], image_size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """Decode image files into one array, in parallel, exactly as the feed does.

    For the few images needed outside the feed: normalization statistics,
    evaluation and parity samples, the raw inputs a client sends.

    Args:
        paths: image file paths.
        image_size: (height, width) of every image.
        channels: 1 (grayscale) or 3 (RGB).

    Returns:
        float32 array of shape `(len(paths), height, width, channels)`, values
        in [0, 255], in the order of `paths`.

    Raises:
        DataError: naming the files that cannot be read, or for a bad
            `image_size` or `channels`.
    """
    load = image_loader(image_size, channels)
    if len(paths) == 0:
        return np.zeros((0, *image_size, channels), dtype=np.float32)
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(paths, dtype=str))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(_CHUNK)
    try:
        return np.concatenate(list(ds.as_numpy_iterator()))
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        bad = find_unreadable_images(paths, channels=channels)
        if not bad:
            raise
        bad_paths = [str(paths[i]) for i in bad]
        raise DataError(
            f"{_unreadable_message(bad_paths, len(paths))}; run check_images first, "
            "or remove or replace them"
        ) from error


def _decode(path: tf.Tensor, channels: int) -> tf.Tensor:
    """One file -> uint8 `(H, W, channels)`; raises inside tf.data when the file is bad."""
    # Always decode to RGB, then reduce: BMP and GIF decoders refuse
    # channels=1, and one conversion for every format gives the same gray
    # values whatever the file type.
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape((None, None, 3))
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    return image


def _class_files(class_dir: Path, suffixes: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(image paths, other file paths) under one class folder, sorted; symlinked folders are not followed."""
    images, others = [], []
    for folder, subfolders, files in os.walk(class_dir):
        subfolders.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            (images if name.lower().endswith(suffixes) else others).append(path)
    return sorted(images), sorted(others)


def _unreadable_message(bad_paths: list[str], total: int) -> str:
    shown = "; ".join(where(file=p) for p in bad_paths[:_SHOWN_FILES])
    more = f" and {len(bad_paths) - _SHOWN_FILES} more" if len(bad_paths) > _SHOWN_FILES else ""
    return f"{len(bad_paths)} of {total} image files cannot be read (missing, corrupt, truncated or not an image): {shown}{more}"


def _check_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extensions, str) or not extensions or not all(
        isinstance(e, str) and e.startswith(".") and len(e) > 1 for e in extensions
    ):
        raise DataError(f"extensions={extensions!r}: give a list of file endings such as ['.png', '.jpg']")
    return tuple(e.lower() for e in extensions)


def _check_image_size(image_size) -> tuple[int, int]:
    size = tuple(image_size) if isinstance(image_size, (tuple, list, np.ndarray)) else ()
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size):
        raise DataError(f"image_size={image_size!r}: give (height, width) as two positive integers, e.g. (64, 64)")
    return int(size[0]), int(size[1])


def _check_channels(channels: int) -> None:
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"channels={channels!r}: use 1 (grayscale) or 3 (RGB)")
