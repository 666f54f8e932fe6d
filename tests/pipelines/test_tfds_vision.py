"""TFDS vision datasets map to the synthetic shapes' structures, read offline from tiny look-alike datasets."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.synthetic_shapes import shapes_dataset
from tfdl.pipelines.tfds_vision import PET_TRIMAP_CLASSES, SEGMENTATION_CLASS_NAMES, load_tfds_vision

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PET_BREEDS = ["Abyssinian", "american_bulldog", "beagle"]
VOC_LABELS = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
VOC_POSES = ["frontal", "rear", "left", "right", "unspecified"]


def _cifar_image(i: int) -> np.ndarray:
    """32x32 RGB whose pixel (r, c) is (i + r, 2c, 255 - i): every pixel checkable."""
    rows, cols = np.mgrid[0:32, 0:32]
    return np.stack([i + rows, 2 * cols, np.full_like(rows, 255 - i)], axis=-1).astype(np.uint8)


def _trimap(i: int) -> np.ndarray:
    """12x16 trimap: background (2) around a pet (1) with a border (3) ring; a 0 in example 99."""
    mask = np.full((12, 16), 2, np.uint8)
    mask[2:10, 3 + 2 * i : 13] = 3
    mask[3:9, 4 + 2 * i : 12] = 1
    if i == 99:
        mask[0, 0] = 0
    return mask[..., None]


# Each builder's features copy the real TFDS catalog entry's names and types
# (tensorflow_datasets/image_classification/cifar.py, datasets/oxford_iiit_pet,
# object_detection/voc.py). A builder registers under its snake_case class
# name, so the names are unique to this module.
class TfdlTestVisionCifar10(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("3.0.2")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "image": tfds.features.Image(shape=(32, 32, 3)),
                    "label": tfds.features.ClassLabel(names=CIFAR_NAMES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(6))}

    def _generate_examples(self, ids):
        for i in ids:
            yield i, {"id": f"train_{i}", "image": _cifar_image(i), "label": (3 * i) % 10}


class TfdlTestVisionMnist(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("3.0.1")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(28, 28, 1)), "label": tfds.features.ClassLabel(num_classes=10)}
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples(range(2))}

    def _generate_examples(self, ids):
        for i in ids:
            yield i, {"image": np.full((28, 28, 1), 100 + i, np.uint8), "label": i}


class TfdlTestVisionOxfordIiitPet(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("4.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(encoding_format="jpeg"),
                    "label": tfds.features.ClassLabel(names=PET_BREEDS),
                    "species": tfds.features.ClassLabel(names=["Cat", "Dog"]),
                    "file_name": tfds.features.Text(),
                    "segmentation_mask": tfds.features.Image(shape=(None, None, 1), use_colormap=True),
                    "head_bbox": tfds.features.BBoxFeature(),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        # "corrupt" is not a pet split: its mask holds a 0, which no trimap has.
        return {"train": self._generate_examples([0, 1, 2]), "corrupt": self._generate_examples([99])}

    def _generate_examples(self, ids):
        for i in ids:
            yield i, {
                # A flat colour survives JPEG exactly enough to check.
                "image": np.full((12, 16, 3), [200, 100, 50], np.uint8),
                "label": i % 3,
                "species": i % 2,
                "file_name": f"pet_{i}.jpg",
                "segmentation_mask": _trimap(i),
                "head_bbox": tfds.features.BBox(0.1, 0.2, 0.5, 0.6),
            }


VOC_OBJECTS = {
    # image id -> [(label, (ymin, xmin, ymax, xmax), is_difficult)]
    0: [(14, (0.1, 0.2, 0.5, 0.6), False)],
    1: [(11, (0.0, 0.0, 1.0, 1.0), False), (7, (0.25, 0.5, 0.75, 0.875), True), (0, (0.5, 0.125, 0.625, 0.375), False)],
    2: [],
}


class TfdlTestVisionVoc(tfds.core.GeneratorBasedBuilder):
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="2007", version=tfds.core.Version("5.0.0"))]

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(),
                    "image/filename": tfds.features.Text(),
                    "objects": tfds.features.Sequence(
                        {
                            "label": tfds.features.ClassLabel(names=VOC_LABELS),
                            "bbox": tfds.features.BBoxFeature(),
                            "pose": tfds.features.ClassLabel(names=VOC_POSES),
                            "is_truncated": np.bool_,
                            "is_difficult": np.bool_,
                        }
                    ),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(names=VOC_LABELS)),
                    "labels_no_difficult": tfds.features.Sequence(tfds.features.ClassLabel(names=VOC_LABELS)),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples([0, 1, 2]), "test": self._generate_examples([2])}

    def _generate_examples(self, ids):
        for i in ids:
            objects = VOC_OBJECTS[i]
            yield i, {
                "image": np.full((8, 8, 3), 40 * i, np.uint8),
                "image/filename": f"{i:06d}.jpg",
                "objects": [
                    {
                        "label": label,
                        "bbox": tfds.features.BBox(*box),
                        "pose": 4,
                        "is_truncated": False,
                        "is_difficult": difficult,
                    }
                    for label, box, difficult in objects
                ],
                "labels": [label for label, _, _ in objects],
                "labels_no_difficult": [label for label, _, difficult in objects if not difficult],
            }


CIFAR, MNIST, PET, VOC = "tfdl_test_vision_cifar10", "tfdl_test_vision_mnist", "tfdl_test_vision_oxford_iiit_pet", "tfdl_test_vision_voc"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds_vision")
    for builder in (TfdlTestVisionCifar10, TfdlTestVisionMnist, TfdlTestVisionOxfordIiitPet):
        builder(data_dir=str(folder)).download_and_prepare()
    TfdlTestVisionVoc(config="2007", data_dir=str(folder)).download_and_prepare()
    return folder


def _structure(dataset: tf.data.Dataset):
    return tf.nest.map_structure(lambda spec: (tuple(spec.shape), spec.dtype), dataset.element_spec)


def test_classification_yields_image_and_class_like_the_shapes(data_dir):
    ds, names = load_tfds_vision(CIFAR, data_dir, "train", "classification", (32, 32))
    assert names == tuple(CIFAR_NAMES)
    assert _structure(ds) == _structure(shapes_dataset(1, 32, task="classification"))
    # TFDS shuffles examples when it prepares them; the label says which one each is.
    by_label = {int(y): x for x, y in ds.as_numpy_iterator()}
    assert sorted(by_label) == sorted((3 * i) % 10 for i in range(6))
    for i in range(6):
        np.testing.assert_allclose(by_label[(3 * i) % 10], _cifar_image(i) / 255.0, atol=1e-6)


def test_classification_resizes_and_repeats_grayscale_to_rgb(data_dir):
    ds, names = load_tfds_vision(MNIST, data_dir, "test", "classification", (14, 10))
    assert names == tuple(str(i) for i in range(10))
    pairs = {int(y): x for x, y in ds.as_numpy_iterator()}
    for label, image in pairs.items():
        assert image.shape == (14, 10, 3)
        # A flat image stays flat through any resize.
        np.testing.assert_allclose(image, (100 + label) / 255.0, atol=1e-6)


def test_segmentation_maps_the_pet_trimap_to_classes_with_nearest_resize(data_dir):
    ds, names = load_tfds_vision(PET, data_dir, "train", "segmentation", (6, 8))
    assert names == SEGMENTATION_CLASS_NAMES == ("background", "pet", "border")
    assert PET_TRIMAP_CLASSES == {1: 1, 2: 0, 3: 2}
    assert _structure(ds) == (((6, 8, 3), tf.float32), ((6, 8), tf.int32))
    # Halving 12x16 to 6x8: output pixel (r, c) samples input (2r + 1, 2c + 1), the pixel under its centre.
    expected = {}
    for i in range(3):
        trimap = _trimap(i)[1::2, 1::2, 0]
        classes = np.select([trimap == 1, trimap == 2, trimap == 3], [1, 0, 2], -1)
        expected[int((classes == 1).sum())] = classes
    seen = 0
    for image, mask in ds.as_numpy_iterator():
        assert mask.dtype == np.int32
        np.testing.assert_array_equal(mask, expected[int((mask == 1).sum())])
        np.testing.assert_allclose(image, np.broadcast_to([200 / 255, 100 / 255, 50 / 255], (6, 8, 3)), atol=3 / 255)
        seen += 1
    assert seen == 3 and len(expected) == 3


def test_segmentation_refuses_a_mask_that_is_not_a_trimap(data_dir):
    ds, _ = load_tfds_vision(PET, data_dir, "corrupt", "segmentation", (12, 16))
    with pytest.raises(tf.errors.InvalidArgumentError, match="segmentation_mask holds a value outside 1, 2, 3"):
        list(ds.as_numpy_iterator())


def test_detection_pads_voc_objects_to_the_most_in_the_split(data_dir):
    ds, names = load_tfds_vision(f"{VOC}/2007", data_dir, "train", "detection", (32, 32))
    assert names == tuple(VOC_LABELS)
    assert _structure(ds) == _structure(shapes_dataset(1, 32, max_objects=3, task="detection"))
    by_colour = {round(float(x[0, 0, 0]) * 255): y for x, y in ds.as_numpy_iterator()}
    assert sorted(by_colour) == [0, 40, 80]
    for i, objects in VOC_OBJECTS.items():
        targets = by_colour[40 * i]
        boxes = np.zeros((3, 4), np.float32)
        boxes[: len(objects)] = [box for _, box, _ in objects] or np.zeros((0, 4))
        np.testing.assert_allclose(targets["boxes"], boxes, atol=1e-7)
        classes = [label for label, _, _ in objects] + [-1] * (3 - len(objects))
        np.testing.assert_array_equal(targets["classes"], classes)


def test_detection_keeps_the_first_max_objects(data_dir):
    ds, _ = load_tfds_vision(f"{VOC}/2007", data_dir, "train", "detection", (8, 8), max_objects=2)
    by_colour = {round(float(x[0, 0, 0]) * 255): y for x, y in ds.as_numpy_iterator()}
    np.testing.assert_array_equal(by_colour[40]["classes"], [11, 7])
    np.testing.assert_allclose(by_colour[40]["boxes"], [[0, 0, 1, 1], [0.25, 0.5, 0.75, 0.875]])
    np.testing.assert_array_equal(by_colour[0]["classes"], [14, -1])
    np.testing.assert_array_equal(by_colour[80]["classes"], [-1, -1])


def test_detection_of_a_split_without_objects_needs_max_objects(data_dir):
    with pytest.raises(DataError, match=r"split 'test' of TFDS dataset tfdl_test_vision_voc/2007/5.0.0 holds no object; pass max_objects"):
        load_tfds_vision(f"{VOC}/2007", data_dir, "test", "detection", (8, 8))
    ds, _ = load_tfds_vision(f"{VOC}/2007", data_dir, "test", "detection", (8, 8), max_objects=4)
    (_, targets), = list(ds.as_numpy_iterator())
    np.testing.assert_array_equal(targets["classes"], [-1] * 4)


def test_a_task_the_features_cannot_serve_lists_the_features(data_dir):
    with pytest.raises(
        DataError,
        match=r"tfdl_test_vision_cifar10/3.0.2 cannot serve the detection task: it needs 'image' and a Sequence 'objects'.*"
        r"as voc has; its features are: id \(Text\), image \(Image\), label \(ClassLabel\)",
    ):
        load_tfds_vision(CIFAR, data_dir, "train", "detection", (32, 32))
    with pytest.raises(DataError, match=r"cannot serve the segmentation task: .*as oxford_iiit_pet has"):
        load_tfds_vision(f"{VOC}/2007", data_dir, "train", "segmentation", (8, 8))
    with pytest.raises(DataError, match=r"cannot serve the classification task: .*'label'.*its features are: image \(Image\), image/filename"):
        load_tfds_vision(f"{VOC}/2007", data_dir, "train", "classification", (8, 8))


def test_bad_arguments_are_data_errors(data_dir):
    with pytest.raises(DataError, match=r"task='instance': use one of classification, segmentation, detection; .*load_coco_detection"):
        load_tfds_vision(CIFAR, data_dir, "train", "instance", (32, 32))
    with pytest.raises(DataError, match=r"image_size=\(32,\): give \(height, width\)"):
        load_tfds_vision(CIFAR, data_dir, "train", "classification", (32,))
    with pytest.raises(DataError, match=r"max_objects=0: give a positive integer"):
        load_tfds_vision(f"{VOC}/2007", data_dir, "train", "detection", (8, 8), max_objects=0)


def test_an_unprepared_dataset_names_the_folder_and_the_build_command(tmp_path):
    with pytest.raises(DataError) as caught:
        load_tfds_vision(PET, tmp_path, "train", "segmentation", (8, 8))
    message = str(caught.value)
    assert f"TFDS dataset {PET}:4.0.0 is not prepared in {tmp_path}" in message
    assert f"`tfds build {PET}:4.0.0 --data_dir DIR`" in message
    with pytest.raises(DataError, match=r"TFDS dataset tfdl_test_vision_voc/2007:5.0.0 is not prepared"):
        load_tfds_vision(f"{VOC}/2007", tmp_path, "train", "detection", (8, 8))
