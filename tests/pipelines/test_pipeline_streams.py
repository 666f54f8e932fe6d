"""`build_pipeline` on streamed sources: TFRecord files split by folder, and a TFDS dataset prepared offline."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfdl.pipelines import DataConfig, DataError, build_pipeline
from tfdl.pipelines.tfrecord import write_tfrecords


def write_splits(root, sizes=(90, 20, 20), seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, n in zip(("train", "validation", "test"), sizes):
        x = (rng.normal(size=(n, 4)) * [1, 2, 3, 4] + [10, 0, -5, 1]).astype("float32")
        y = (x[:, 0] > 10).astype("int64")
        write_tfrecords(root / name, {"x": x, "y": y}, num_shards=2)
        arrays[name] = (x, y)
    return arrays


def tfrecord_config(root, **kwargs) -> DataConfig:
    source = {"type": "tfrecord", "train": str(root / "train"), "validation": str(root / "validation"),
              "test": str(root / "test"), "input_key": "x", "label_key": "y", "class_names": ["low", "high"]}
    return DataConfig(source=source, **kwargs)


def test_tfrecord_splits_feed_normalized_examples_with_training_statistics(tmp_path):
    arrays = write_splits(tmp_path)
    pipeline = build_pipeline(tfrecord_config(tmp_path, normalization="per_feature", batch_size=16), seed=0)
    assert pipeline.sizes == {"train": 90, "validation": 20, "test": 20}
    x_train = arrays["train"][0]
    fed = np.concatenate([x for x, _ in pipeline.test.as_numpy_iterator()])
    labels = np.concatenate([y for _, y in pipeline.test.as_numpy_iterator()])
    # Two shards are read in turn, so compare as sets of rows.
    order = np.lexsort(pipeline.test_inputs.T)
    expected = (pipeline.test_inputs[order] - x_train.mean(0)) / x_train.std(0)
    np.testing.assert_allclose(fed[np.lexsort(fed.T)], expected[np.lexsort(expected.T)], rtol=1e-4, atol=1e-4)
    assert sorted(map(tuple, pipeline.test_inputs)) == sorted(map(tuple, arrays["test"][0]))
    assert labels.dtype == np.int32 and sorted(labels) == sorted(arrays["test"][1])
    assert pipeline.train.options().experimental_distribute.auto_shard_policy.name == "FILE"
    assert pipeline.input_shape == (4,) and pipeline.input_name == "x"


def test_label_outside_the_classes_names_file_and_record_or_is_skipped(tmp_path):
    write_splits(tmp_path)
    x = np.zeros((5, 4), "float32")
    write_tfrecords(tmp_path / "bad", {"x": x, "y": np.array([0, 1, 7, 0, 1])})
    config = tfrecord_config(tmp_path)
    source = config.source.model_copy(update={"validation": str(tmp_path / "bad")})
    with pytest.raises(DataError, match=r"record 2: label 7 is outside the 2 classes"):
        build_pipeline(config.model_copy(update={"source": source}), seed=0)
    pipeline = build_pipeline(config.model_copy(update={"source": source, "on_bad_data": "skip"}), seed=0)
    assert pipeline.sizes["validation"] == 4
    assert len(list(pipeline.validation.unbatch())) == 4
    assert pipeline.report.count("records skipped: label outside the classes") == 1


def test_corrupt_tfrecord_fails_before_training(tmp_path):
    write_splits(tmp_path)
    shard = sorted((tmp_path / "test").glob("*.tfrecord"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=shard.name):
        build_pipeline(tfrecord_config(tmp_path), seed=0)


def test_unknown_input_key_lists_the_features(tmp_path):
    write_splits(tmp_path)
    config = tfrecord_config(tmp_path)
    source = config.source.model_copy(update={"input_key": "pixels"})
    with pytest.raises(DataError, match="x, y"):
        build_pipeline(config.model_copy(update={"source": source}), seed=0)


# Defining a builder registers it globally under its snake_case class name.
class TfdlTestStreamImages(tfds.core.GeneratorBasedBuilder):
    """8x8 RGB images in two classes (dark, light): 40 train and 10 test examples."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["dark", "light"]),
            }),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(40)), "test": self._generate_examples(range(100, 110))}

    def _generate_examples(self, ids):
        for i in ids:
            pixels = np.full((8, 8, 3), 40 + 150 * (i % 2) + i % 7, np.uint8)
            yield i, {"image": pixels, "label": i % 2}


def test_tfds_images_load_offline_with_their_own_test_split_and_augment_training_only(tmp_path):
    TfdlTestStreamImages(data_dir=str(tmp_path)).download_and_prepare()
    name = "tfdl_test_stream_images"
    config = DataConfig(
        source={"type": "tfds", "name": name, "data_dir": str(tmp_path), "image_size": [4, 4]},
        split={"validation": 0.25, "test": 0.1},
        augmentation={"flip": "horizontal", "brightness": 0.3},
        batch_size=5,
    )
    pipeline = build_pipeline(config, seed=0)
    assert pipeline.sizes == {"train": 30, "validation": 10, "test": 10}
    assert pipeline.class_names == ("dark", "light") and pipeline.input_shape == (4, 4, 3)
    x_test = np.concatenate([x for x, _ in pipeline.test.as_numpy_iterator()])
    np.testing.assert_allclose(x_test, np.asarray(pipeline.preprocessing(pipeline.test_inputs)), atol=1e-5)
    # TFDS shuffles examples when it prepares them: check each label against its image.
    np.testing.assert_array_equal(pipeline.test_labels, pipeline.test_inputs.mean(axis=(1, 2, 3)) > 128)
    assert pipeline.test_labels.sum() == 5
    first, again = (next(iter(pipeline.train))[0].numpy() for _ in range(2))
    assert not np.allclose(first, again)


def test_tfds_dataset_not_prepared_says_what_to_download_and_where(tmp_path):
    config = DataConfig(source={"type": "tfds", "name": "mnist", "data_dir": str(tmp_path / "empty")})
    with pytest.raises(DataError, match="tfds build mnist"):
        build_pipeline(config, seed=0)
