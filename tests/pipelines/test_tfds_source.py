"""TFDS datasets load offline from a prepared folder, and fail clearly when it is missing."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.tfds_source import load_tfds, tfds_class_names, tfds_splits

CLASS_NAMES = ["circle", "square", "triangle"]
N_TRAIN, N_TEST = 40, 12


def _example(i: int) -> dict:
    return {"features": np.full(3, i, dtype=np.float32), "label": i % 3}


def _info(builder: tfds.core.GeneratorBasedBuilder) -> tfds.core.DatasetInfo:
    # DatasetInfo directly: `dataset_info_from_configs` would look for
    # metadata files next to the module that defines the builder.
    return tfds.core.DatasetInfo(
        builder=builder,
        features=tfds.features.FeaturesDict(
            {
                "features": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                "label": tfds.features.ClassLabel(names=CLASS_NAMES),
            }
        ),
        supervised_keys=("features", "label"),
    )


# Defining a builder registers it globally under its snake_case class name,
# so the names are unique to this module.
class TfdlTestTinyShapes(tfds.core.GeneratorBasedBuilder):
    """Train (ids 0..39) and test (ids 100..111) splits, made from numpy."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return _info(self)

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(range(N_TRAIN)),
            "test": self._generate_examples(range(100, 100 + N_TEST)),
        }

    def _generate_examples(self, ids):
        for i in ids:
            yield i, _example(i)


class TfdlTestTinyTrainOnly(tfds.core.GeneratorBasedBuilder):
    """Only a train split (ids 0..59), so every held-out split is sliced from it."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return _info(self)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(60))}

    def _generate_examples(self, ids):
        for i in ids:
            yield i, _example(i)


SHAPES = "tfdl_test_tiny_shapes"
TRAIN_ONLY = "tfdl_test_tiny_train_only"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    TfdlTestTinyShapes(data_dir=str(folder)).download_and_prepare()
    TfdlTestTinyTrainOnly(data_dir=str(folder)).download_and_prepare()
    return folder


def _ids(dataset) -> list[int]:
    """The example ids in the order the dataset yields them."""
    return [int(x[0]) for x, _ in dataset.as_numpy_iterator()]


def test_load_tfds_reads_the_prepared_dataset_by_name(data_dir):
    train, info = load_tfds(SHAPES, data_dir=data_dir, split="train")
    pairs = sorted((x.tolist(), int(y)) for x, y in train.as_numpy_iterator())
    assert pairs == [([float(i)] * 3, i % 3) for i in range(N_TRAIN)]
    test, _ = load_tfds(SHAPES, data_dir=str(data_dir), split="test")
    assert sorted(_ids(test)) == list(range(100, 100 + N_TEST))
    assert info.full_name == f"{SHAPES}/1.0.0"
    assert {name: s.num_examples for name, s in info.splits.items()} == {"train": N_TRAIN, "test": N_TEST}


def test_load_tfds_as_feature_dicts(data_dir):
    train, _ = load_tfds(SHAPES, data_dir=data_dir, as_supervised=False)
    first = next(train.as_numpy_iterator())
    assert set(first) == {"features", "label"}
    assert first["label"] == int(first["features"][0]) % 3


def test_class_names_come_from_the_class_label(data_dir):
    _, info = load_tfds(SHAPES, data_dir=data_dir)
    assert tfds_class_names(info) == ("circle", "square", "triangle")
    with pytest.raises(DataError, match=r"no ClassLabel feature 'features'; its features are: features \(Tensor\), label \(ClassLabel\)"):
        tfds_class_names(info, label_key="features")
    with pytest.raises(DataError, match="no ClassLabel feature 'category'"):
        tfds_class_names(info, label_key="category")


def test_slices_are_disjoint_and_deterministic(data_dir):
    head = _ids(load_tfds(SHAPES, data_dir=data_dir, split="train[:75%]")[0])
    tail = _ids(load_tfds(SHAPES, data_dir=data_dir, split="train[75%:]")[0])
    assert (len(head), len(tail)) == (30, 10)
    assert set(head).isdisjoint(tail)
    assert sorted(head + tail) == list(range(N_TRAIN))
    assert _ids(load_tfds(SHAPES, data_dir=data_dir, split="train[:75%]")[0]) == head


def test_splits_use_the_dataset_test_split_and_slice_validation_from_train(data_dir):
    splits = tfds_splits(SHAPES, data_dir=data_dir, validation=0.25, test=0.5)
    # The dataset has its own test split, so test=0.5 is not used.
    assert splits.specs == {"train": "train[:30]", "validation": "train[30:]", "test": "test"}
    train, validation, test = _ids(splits.train), _ids(splits.validation), _ids(splits.test)
    assert (len(train), len(validation)) == (30, 10)
    assert set(train).isdisjoint(validation)
    assert sorted(train + validation) == list(range(N_TRAIN))
    assert sorted(test) == list(range(100, 100 + N_TEST))
    again = tfds_splits(SHAPES, data_dir=data_dir, validation=0.25)
    assert (_ids(again.train), _ids(again.validation)) == (train, validation)


def test_splits_slice_validation_and_test_from_train_when_the_dataset_has_neither(data_dir):
    splits = tfds_splits(TRAIN_ONLY, data_dir=data_dir, validation=0.1, test=0.2)
    assert splits.specs == {"train": "train[:42]", "validation": "train[42:48]", "test": "train[48:]"}
    train, validation, test = _ids(splits.train), _ids(splits.validation), _ids(splits.test)
    assert (len(train), len(validation), len(test)) == (42, 6, 12)
    assert sorted(train + validation + test) == list(range(60))
    assert tfds_class_names(splits.info) == tuple(CLASS_NAMES)


def test_splits_reject_bad_fractions_and_a_missing_test_split(data_dir):
    with pytest.raises(DataError, match=r"has no 'test' split .*pass test=FRACTION"):
        tfds_splits(TRAIN_ONLY, data_dir=data_dir, validation=0.1)
    with pytest.raises(DataError, match=r"validation=1.5 is not a fraction"):
        tfds_splits(SHAPES, data_dir=data_dir, validation=1.5)
    with pytest.raises(DataError, match=r"leaves 0 for training .*every split needs at least one example"):
        tfds_splits(TRAIN_ONLY, data_dir=data_dir, validation=0.5, test=0.5)
    with pytest.raises(DataError, match=r"has no split 'training' to train on; its splits: train \(40 examples\), test \(12 examples\)"):
        tfds_splits(SHAPES, data_dir=data_dir, validation=0.1, train_split="training")


def test_unprepared_dataset_names_the_folder_and_the_build_command(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as caught:
        load_tfds(SHAPES, data_dir=empty)
    message = str(caught.value)
    assert f"TFDS dataset {SHAPES}:1.0.0 is not prepared in {empty}" in message
    assert f"no data in {empty / SHAPES / '1.0.0'}." in message
    assert f"`tfds build {SHAPES}:1.0.0 --data_dir DIR`" in message
    assert f"copy the folder DIR/{SHAPES}/1.0.0/ to {empty / SHAPES / '1.0.0'}/ here" in message


def test_unprepared_dataset_lists_other_versions_found(tmp_path):
    (tmp_path / SHAPES / "0.9.0").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(f"no data in {tmp_path / SHAPES / '1.0.0'} (versions there: 0.9.0)")):
        load_tfds(SHAPES, data_dir=tmp_path)


def test_unprepared_catalog_dataset_names_its_version_and_folder(tmp_path):
    version = str(tfds.builder_cls("mnist").VERSION)
    with pytest.raises(DataError, match=re.escape(f"`tfds build mnist:{version} --data_dir DIR`")) as caught:
        load_tfds("mnist", data_dir=tmp_path)
    assert f"no data in {tmp_path / 'mnist' / version}" in str(caught.value)


def test_unknown_name_and_version_are_data_errors(data_dir):
    with pytest.raises(DataError, match=r"unknown TFDS dataset 'tfdl_no_such_dataset'"):
        load_tfds("tfdl_no_such_dataset", data_dir=data_dir)
    with pytest.raises(DataError, match=r"unknown TFDS dataset 'mnsit' \(Did you mean: mnsit -> mnist \?\)"):
        load_tfds("mnsit", data_dir=data_dir)
    with pytest.raises(DataError, match=r"cannot be opened: .*only: 1.0.0"):
        load_tfds(f"{SHAPES}:9.9.9", data_dir=data_dir)


def test_unknown_split_lists_the_splits(data_dir):
    with pytest.raises(DataError, match=r"cannot read split 'validation' .*Its splits: train \(40 examples\), test \(12 examples\)"):
        load_tfds(SHAPES, data_dir=data_dir, split="validation")


def test_a_data_dir_under_home_is_expanded(data_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(data_dir.parent))
    train, _ = load_tfds(SHAPES, data_dir=f"~/{data_dir.name}", split="train")
    assert len(_ids(train)) == N_TRAIN
