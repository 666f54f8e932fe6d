"""TensorFlow Datasets read offline from a folder where they were prepared.

Training machines often have no internet, so tfdl never lets TFDS download:
a dataset is built once on a machine that has internet (`tfds build NAME
--data_dir DIR`), its `DIR/NAME/VERSION/` folder is copied to the same place
on this machine, and `load_tfds` / `tfds_splits` read it from there. When the
folder is missing the error says exactly which folder and how to make it.

`tensorflow_datasets` is imported inside the functions: importing it costs
seconds, and most runs never touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tensorflow as tf

from tfdl.pipelines.errors import DataError

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

# The name of the split that slices are cut from when a dataset has no
# validation or test split of its own, and the names TFDS uses for those.
_TRAIN = "train"
_VALIDATION = "validation"
_TEST = "test"


@dataclass(frozen=True)
class TfdsSplits:
    """Train, validation and test datasets of one TFDS dataset.

    Attributes:
        train, validation, test: unbatched datasets of examples.
        info: the dataset's `tfds.core.DatasetInfo` (features, class names,
            split sizes).
        specs: the TFDS split each dataset was read from, by name, e.g.
            `{"train": "train[:340]", "validation": "train[340:400]",
            "test": "test"}`, so a run report shows where the examples came from.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    info: "tfds.core.DatasetInfo"
    specs: dict[str, str]


def load_tfds(
    name: str,
    *,
    data_dir: str | Path,
    split: str = "train",
    as_supervised: bool = True,
    shuffle_files: bool = False,
    seed: int | None = None,
) -> tuple[tf.data.Dataset, "tfds.core.DatasetInfo"]:
    """Load one split of a TFDS dataset already prepared in `data_dir`.

    Nothing is downloaded, from the dataset's source or from Google Cloud
    Storage. A dataset whose builder code is not installed still loads when
    its prepared folder is there (TFDS reads it from its files).

    Args:
        name: the TFDS name, optionally with config and version, e.g.
            `mnist`, `mnist:3.0.1`, `imdb_reviews/plain_text`.
        data_dir: the folder that holds `NAME/VERSION/` (TFDS's `data_dir`).
        split: a TFDS split, with slicing if wanted (`train`, `test[:10%]`,
            `train[100:200]`).
        as_supervised: yield `(input, label)` pairs (the dataset's
            `supervised_keys`) instead of feature dicts.
        shuffle_files: read the data files in a shuffled order (for
            training on a dataset with many files).
        seed: seeds the file shuffle, so the order is reproducible.

    Returns:
        The unbatched dataset and the dataset's `DatasetInfo`.

    Raises:
        DataError: if the name is unknown, the requested version does not
            exist, the dataset is not prepared in `data_dir` (the message
            names the folder and the `tfds build` command that makes it), or
            the split cannot be read.
    """
    builder = _prepared_builder(name, data_dir)
    dataset = _read_split(builder, split, as_supervised=as_supervised, shuffle_files=shuffle_files, seed=seed)
    return dataset, builder.info


def tfds_class_names(info: "tfds.core.DatasetInfo", label_key: str = "label") -> tuple[str, ...]:
    """The class names of a TFDS dataset's `ClassLabel` feature.

    Args:
        info: the dataset's `DatasetInfo`, as `load_tfds` returns it.
        label_key: the name of the label feature.

    Returns:
        The name of each class index, in index order.

    Raises:
        DataError: if the dataset has no `ClassLabel` feature named `label_key`.
    """
    import tensorflow_datasets as tfds

    features = info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    feature = features[label_key] if label_key in keys else None
    if not isinstance(feature, tfds.features.ClassLabel):
        listed = ", ".join(f"{key} ({type(features[key]).__name__})" for key in keys) or "none"
        raise DataError(
            f"TFDS dataset {info.full_name} has no ClassLabel feature {label_key!r}; "
            f"its features are: {listed}. Pass the name of its class label as label_key"
        )
    return tuple(feature.names)


def tfds_splits(
    name: str,
    *,
    data_dir: str | Path,
    validation: float,
    test: float | None = None,
    train_split: str = _TRAIN,
    as_supervised: bool = True,
    shuffle_files: bool = False,
    seed: int | None = None,
) -> TfdsSplits:
    """Train, validation and test datasets that never share an example.

    A dataset's own `validation` and `test` splits are used when it has
    them. A split it lacks is cut from the end of `train_split` with TFDS
    slicing by example count (e.g. `train[:340]`, `train[340:400]`,
    `train[400:]`), so the same prepared data always gives the same
    disjoint splits. TFDS shuffles examples when it prepares a dataset, so a
    contiguous slice is a random sample of the training examples.

    Args:
        name: the TFDS name, as for `load_tfds`.
        data_dir: the folder that holds `NAME/VERSION/`.
        validation: the fraction of `train_split` held out for validation,
            in (0, 1); ignored when the dataset has a `validation` split.
        test: the fraction of `train_split` held out for test, in (0, 1),
            used only when the dataset has no `test` split. None requires the
            dataset to have its own.
        train_split: the split training examples (and any held-out slices)
            come from.
        as_supervised: yield `(input, label)` pairs instead of feature dicts.
        shuffle_files: read the training files in a shuffled order;
            validation and test are always read in file order.
        seed: seeds the training file shuffle.

    Returns:
        The three datasets, the `DatasetInfo`, and the split each was read from.

    Raises:
        DataError: as for `load_tfds`; also if a fraction is outside (0, 1),
            the held-out fractions leave no training examples or hold out
            none, `train_split` does not exist, or `test` is None and the
            dataset has no `test` split.
    """
    builder = _prepared_builder(name, data_dir)
    specs = _split_specs(builder.info, validation=validation, test=test, train_split=train_split)
    datasets = {
        role: _read_split(
            builder,
            spec,
            as_supervised=as_supervised,
            shuffle_files=shuffle_files and role == "train",
            seed=seed,
        )
        for role, spec in specs.items()
    }
    return TfdsSplits(info=builder.info, specs=specs, **datasets)


def _prepared_builder(name: str, data_dir: str | Path) -> "tfds.core.DatasetBuilder":
    """The builder of `name` in `data_dir` (`~` expanded), checked to hold prepared data."""
    import tensorflow_datasets as tfds

    data_dir = Path(data_dir).expanduser()
    try:
        builder = tfds.builder(name, data_dir=str(data_dir), try_gcs=False)
    except tfds.core.DatasetNotFoundError as err:
        raise DataError(_unknown_name_message(name, data_dir, err)) from err
    except AssertionError as err:
        # TFDS asserts that a requested version (`name:1.2.3`) is one its
        # code supports; that is a user error, not a bug.
        raise DataError(
            f"TFDS dataset {name!r} cannot be opened: {err} Ask for a version the "
            "installed tensorflow-datasets supports, or leave the version out"
        ) from err
    if not builder.is_prepared():
        raise DataError(_not_prepared_message(builder, data_dir))
    return builder


def _unknown_name_message(name: str, data_dir: str | Path, err: Exception) -> str:
    # TFDS's message lists every dataset it knows (thousands of lines); keep
    # only its spelling suggestion.
    suggestions = [line.strip() for line in str(err).splitlines() if line.strip().startswith("Did you mean")]
    hint = f" ({suggestions[0]})" if suggestions else ""
    return (
        f"unknown TFDS dataset {name!r}{hint}: the installed tensorflow-datasets "
        f"has no builder of that name and {data_dir} holds no prepared folder "
        f"{name}/. Check the name against https://www.tensorflow.org/datasets/catalog/overview, "
        "or upgrade tensorflow-datasets if the dataset is new"
    )


def _not_prepared_message(builder: "tfds.core.DatasetBuilder", data_dir: str | Path) -> str:
    config = builder.builder_config.name if builder.builder_config else None
    spec = f"{builder.name}/{config}" if config else builder.name
    folder = "/".join([*spec.split("/"), str(builder.version)])
    others = _versions_present(Path(data_dir, *spec.split("/")))
    found = f" (versions there: {', '.join(others)})" if others else ""
    return (
        f"TFDS dataset {spec}:{builder.version} is not prepared in {data_dir}: "
        f"no data in {builder.data_dir}{found}. tfdl never downloads TFDS data. "
        f"On a machine with internet run `tfds build {spec}:{builder.version} --data_dir DIR` "
        f"(or in Python `tfds.builder('{spec}:{builder.version}', data_dir=DIR).download_and_prepare()`), "
        f"then copy the folder DIR/{folder}/ to {builder.data_dir}/ here"
    )


def _versions_present(dataset_folder: Path) -> list[str]:
    """Version folders (`1.0.0`) already in a dataset's folder, for the message."""
    if not dataset_folder.is_dir():
        return []
    return sorted(p.name for p in dataset_folder.iterdir() if p.is_dir() and p.name[:1].isdigit())


def _read_split(
    builder: "tfds.core.DatasetBuilder",
    split: str,
    *,
    as_supervised: bool,
    shuffle_files: bool,
    seed: int | None,
) -> tf.data.Dataset:
    import tensorflow_datasets as tfds

    try:
        return builder.as_dataset(
            split=split,
            as_supervised=as_supervised,
            shuffle_files=shuffle_files,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        )
    except ValueError as err:
        # TFDS raises ValueError for an unknown split name, a bad slice and
        # as_supervised on a dataset without supervised keys.
        raise DataError(
            f"cannot read split {split!r} of TFDS dataset {builder.info.full_name}: {err} "
            f"Its splits: {_describe_splits(builder.info)}"
        ) from err


def _split_specs(info: "tfds.core.DatasetInfo", *, validation: float, test: float | None, train_split: str) -> dict[str, str]:
    """The TFDS split string for train, validation and test."""
    if train_split not in info.splits:
        raise DataError(
            f"TFDS dataset {info.full_name} has no split {train_split!r} to train on; "
            f"its splits: {_describe_splits(info)}. Pass one of them as train_split"
        )
    # Checked even when the dataset's own split makes a fraction unused, so a
    # bad config fails on every dataset, not only on some.
    _check_fraction("validation", validation)
    if test is not None:
        _check_fraction("test", test)
    held_out: dict[str, float] = {}
    if _VALIDATION not in info.splits:
        held_out["validation"] = validation
    if _TEST not in info.splits:
        if test is None:
            raise DataError(
                f"TFDS dataset {info.full_name} has no 'test' split (its splits: "
                f"{_describe_splits(info)}); pass test=FRACTION, e.g. test=0.1, "
                f"to hold out part of {train_split!r} for testing"
            )
        held_out["test"] = test

    total = info.splits[train_split].num_examples
    counts = {role: int(round(total * fraction)) for role, fraction in held_out.items()}
    n_train = total - sum(counts.values())
    empty = [role for role, count in counts.items() if count == 0]
    if empty or n_train <= 0:
        raise DataError(
            f"{train_split!r} of TFDS dataset {info.full_name} has {total} examples: "
            f"holding out {', '.join(f'{role}={held_out[role]}' for role in held_out)} "
            f"leaves {n_train} for training and {', '.join(f'{c} for {r}' for r, c in counts.items())}; "
            "every split needs at least one example, so change the fractions"
        )

    specs = {"train": f"{train_split}[:{n_train}]" if counts else train_split}
    start = n_train
    for role in ("validation", "test"):
        if role in counts:
            end = start + counts[role]
            specs[role] = f"{train_split}[{start}:{end}]" if end < total else f"{train_split}[{start}:]"
            start = end
        else:
            specs[role] = _VALIDATION if role == "validation" else _TEST
    return specs


def _check_fraction(role: str, fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise DataError(f"{role}={fraction} is not a fraction of the training examples; use a value between 0 and 1, e.g. 0.1")


def _describe_splits(info: "tfds.core.DatasetInfo") -> str:
    """`train (40 examples), test (10 examples)`, for messages."""
    return ", ".join(f"{name} ({split.num_examples} examples)" for name, split in info.splits.items())
