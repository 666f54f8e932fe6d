"""Image folders: listing, finding unreadable files, decoding to the pixels written."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.image_directory import (
    check_images,
    find_unreadable_images,
    image_loader,
    list_image_directory,
    load_image_array,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (6, 5), dtype=np.uint8)


def _save(path, pixels, format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=format)
    return str(path)


def _jpeg_bytes(size=64):
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture()
def image_root(tmp_path):
    """cat: 2 PNGs (one upper-case extension) + a text file; dog: a JPEG and a PNG in a sub-folder."""
    root = tmp_path / "images"
    _save(root / "cat" / "b.png", RGB)
    _save(root / "cat" / "A.PNG", RGB, format="PNG")
    (root / "cat" / "notes.txt").write_text("not an image")
    _save(root / "dog" / "c.jpg", RGB)
    _save(root / "dog" / "sub" / "d.png", RGB)
    (root / "readme.md").write_text("top-level file")
    (root / ".ipynb_checkpoints").mkdir()
    return root


def test_list_gives_sorted_classes_paths_and_labels(image_root):
    report = DataReport()
    data = list_image_directory(image_root, input_name="photo", report=report)

    assert data.class_names == ("cat", "dog")
    assert data.features.tolist() == [
        str(image_root / "cat" / "A.PNG"),
        str(image_root / "cat" / "b.png"),
        str(image_root / "dog" / "c.jpg"),
        str(image_root / "dog" / "sub" / "d.png"),
    ]
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.labels.dtype == np.int32
    assert data.input_name == "photo"
    assert report.count("files ignored: outside a class folder") == 1
    assert report.count("folders ignored: hidden, not a class") == 1
    assert report.count("files ignored: not an image (.png, .jpg, .jpeg, .bmp, .gif)") == 1
    assert "notes.txt" in report.lines()[-1]


def test_list_respects_extensions(image_root):
    data = list_image_directory(image_root, extensions=(".png",))
    assert [os.path.basename(p) for p in data.features] == ["A.PNG", "b.png", "d.png"]


def test_list_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match=r"nowhere does not exist"):
        list_image_directory(tmp_path / "nowhere")
    _save(tmp_path / "flat" / "a.png", RGB)
    with pytest.raises(DataError, match=r"no class sub-folders.*flat/CLASS_NAME/IMAGE\.png"):
        list_image_directory(tmp_path / "flat")
    with pytest.raises(DataError, match=r"a\.png is a file, not a folder"):
        list_image_directory(tmp_path / "flat" / "a.png")
    _save(tmp_path / "classes" / "cat" / "a.png", RGB)
    (tmp_path / "classes" / "dog").mkdir()
    (tmp_path / "classes" / "dog" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"class folder .*classes/dog holds no images"):
        list_image_directory(tmp_path / "classes")
    with pytest.raises(DataError, match=r"extensions='.png'"):
        list_image_directory(tmp_path / "classes", extensions=".png")


def test_loader_gives_the_png_pixels_written(tmp_path):
    path = _save(tmp_path / "a.png", RGB)
    image = image_loader((6, 5), channels=3)(path)
    assert image.dtype.name == "float32"
    np.testing.assert_array_equal(image.numpy(), RGB.astype(np.float32))


def test_grayscale_png_becomes_three_equal_channels(tmp_path):
    path = _save(tmp_path / "g.png", GRAY)
    image = load_image_array([path], (6, 5), channels=3)
    assert image.shape == (1, 6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[0, :, :, c], GRAY.astype(np.float32))
    np.testing.assert_array_equal(load_image_array([path], (6, 5), channels=1)[0, :, :, 0], GRAY)


def test_rgb_to_one_channel_is_the_luma_of_the_pixels(tmp_path):
    path = _save(tmp_path / "a.png", RGB)
    gray = load_image_array([path], (6, 5), channels=1)
    luma = RGB.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
    assert gray.shape == (1, 6, 5, 1)
    np.testing.assert_allclose(gray[0, :, :, 0], luma, atol=1.0)


def test_every_format_decodes_to_the_asked_size_and_channels(tmp_path):
    constant = np.full((4, 4, 3), (10, 200, 90), dtype=np.uint8)
    paths = [_save(tmp_path / f"a.{ext}", constant) for ext in ("png", "bmp", "gif", "jpg")]
    images = load_image_array(paths, (8, 3), channels=3)
    assert images.shape == (4, 8, 3, 3) and images.dtype == np.float32
    # Lossless formats keep a constant colour exactly through the resize.
    np.testing.assert_array_equal(images[:2], np.broadcast_to(np.float32([10, 200, 90]), (2, 8, 3, 3)))
    np.testing.assert_allclose(images[3], np.broadcast_to(np.float32([10, 200, 90]), (8, 3, 3)), atol=3)
    assert 0.0 <= images.min() and images.max() <= 255.0


def test_downscaling_is_antialiased(tmp_path):
    # Left half black, right half white, width halved. An antialiased resize
    # weighs the input columns (centres 0.5 .. 3.5) by a triangle of radius 2
    # around each output centre (1.0 and 3.0): weights 3/4, 3/4, 1/4, 0 and
    # 0, 1/4, 3/4, 3/4, normalized. Plain bilinear would give 0 and 255.
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)
    pixels[:, 2:] = 255
    image = load_image_array([_save(tmp_path / "a.png", pixels)], (2, 2))[0]
    expected = [255 * 0.25 / 1.75, 255 * 1.5 / 1.75]
    np.testing.assert_allclose(image[:, :, 0], [expected, expected], rtol=1e-5)


@pytest.fixture()
def bad_files(tmp_path):
    good = _save(tmp_path / "cat" / "good.png", RGB)
    corrupt = tmp_path / "cat" / "corrupt.png"
    corrupt.write_bytes(RNG.integers(0, 256, 200, dtype=np.uint8).tobytes())
    jpeg = _jpeg_bytes()
    truncated = tmp_path / "dog" / "truncated.jpg"
    truncated.parent.mkdir()
    truncated.write_bytes(jpeg[: len(jpeg) // 2])
    other = _save(tmp_path / "dog" / "good.jpg", RGB)
    return [good, str(corrupt), str(truncated), other]


def test_find_unreadable_images_gives_their_indices(bad_files, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = str(tmp_path / "missing.png")
    paths = bad_files + [str(empty), missing]
    assert find_unreadable_images(paths) == [1, 2, 4, 5]
    assert find_unreadable_images(paths, channels=1) == [1, 2, 4, 5]
    assert find_unreadable_images(bad_files[:1]) == []
    assert find_unreadable_images([]) == []


def _data(paths):
    return ArrayData(np.array(paths), np.array([0, 0, 1, 1], dtype=np.int32), ("cat", "dog"), "image")


def test_check_images_names_unreadable_files(bad_files):
    with pytest.raises(DataError, match=r"2 of 4 image files cannot be read.*corrupt\.png; .*truncated\.jpg.*on_bad_data: skip"):
        check_images(_data(bad_files))


def test_check_images_skips_and_counts(bad_files):
    report = DataReport()
    data = check_images(_data(bad_files), on_bad_data="skip", report=report)
    assert data.features.tolist() == [bad_files[0], bad_files[3]]
    assert data.labels.tolist() == [0, 1]
    assert report.count("images skipped: unreadable") == 2
    assert report.entries[0].examples == [bad_files[1], bad_files[2]]


def test_check_images_without_report_warns(bad_files):
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 image files"):
        data = check_images(_data(bad_files), on_bad_data="skip")
    assert len(data) == 2


def test_check_images_returns_good_data_unchanged(bad_files):
    data = _data([bad_files[0], bad_files[0], bad_files[3], bad_files[3]])
    assert check_images(data) is data


def test_check_images_refuses_to_empty_a_class(bad_files):
    data = _data([bad_files[0], bad_files[0], bad_files[1], bad_files[2]])
    with pytest.raises(DataError, match=r"class 'dog' has no readable image left"):
        check_images(data, on_bad_data="skip", report=DataReport())
    with pytest.raises(DataError, match=r"on_bad_data='ignore' is not a policy"):
        check_images(data, on_bad_data="ignore")


def test_load_image_array_names_a_bad_file(bad_files):
    with pytest.raises(DataError, match=r"2 of 4 image files cannot be read.*corrupt\.png.*run check_images first"):
        load_image_array(bad_files, (6, 5))


def test_bad_size_and_channels_are_refused():
    with pytest.raises(DataError, match=r"image_size=\(64, 0\)"):
        image_loader((64, 0))
    with pytest.raises(DataError, match=r"image_size=64"):
        image_loader(64)
    with pytest.raises(DataError, match=r"channels=4"):
        image_loader((64, 64), channels=4)
    with pytest.raises(DataError, match=r"channels=2"):
        find_unreadable_images(["a.png"], channels=2)


def test_loader_runs_in_a_parallel_feed(image_root):
    import tensorflow as tf

    data = list_image_directory(image_root)
    ds = tf.data.Dataset.from_tensor_slices((data.features, data.labels))
    ds = ds.map(lambda path, label: (image_loader((6, 5))(path), label), num_parallel_calls=tf.data.AUTOTUNE).batch(4)
    images, labels = next(iter(ds))
    assert images.shape == (4, 6, 5, 3)
    assert labels.numpy().tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(images[0].numpy(), RGB.astype(np.float32))
