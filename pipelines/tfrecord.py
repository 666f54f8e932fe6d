"""TFRecord files as a data source: write arrays to sharded files, check them, read them fast.

`write_tfrecords` stores one `tf.train.Example` per row and a
`feature_spec.json` (each feature's dtype and per-row shape) beside the
shards. `scan_tfrecords` makes one pass before training that counts each
file's records and finds corrupt or truncated ones, so a bad file fails with
a message naming it instead of a TensorFlow error in the middle of an epoch.
`read_tfrecords` interleaves the files in parallel, batches the serialized
records and parses each batch with one vectorized `tf.io.parse_example`.
"""

from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError, where

Compression = Literal[None, "GZIP", "ZLIB"]

SPEC_FILE = "feature_spec.json"

_SUFFIXES = {None: ".tfrecord", "GZIP": ".tfrecord.gz", "ZLIB": ".tfrecord.zlib"}

# Spec dtype -> (the Example list that stores it, the dtype `parse_example` reads it as).
# Every integer and bool fits an int64_list exactly; float64 does not fit a
# float_list (32-bit), so it is written and read back as float32.
_STORAGE = {
    "float16": ("float_list", tf.float32),
    "float32": ("float_list", tf.float32),
    "bool": ("int64_list", tf.int64),
    **{name: ("int64_list", tf.int64) for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")},
    "string": ("bytes_list", tf.string),
}

# Files read at once by `read_tfrecords`. Fixed rather than AUTOTUNE'd
# (which follows the machine's core count) so that a seed gives the same
# record order on every machine.
_MAX_OPEN_FILES = 16

# Records per step when counting: large enough that Python is not the limit.
_SCAN_BATCH = 4096


def feature_spec(arrays: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """The spec of the features `write_tfrecords` stores for these arrays.

    Args:
        arrays: feature name -> array with one row per example; rows may
            have any rank.

    Returns:
        JSON-able `{"name": {"dtype": "float32", "shape": [64]}}`: the dtype
        the reader yields (float64 becomes float32, str and bytes become
        "string") and the shape of one row.

    Raises:
        DataError: if there are no arrays, an array is a scalar, arrays hold
            different numbers of rows, or a dtype cannot be stored.
    """
    if not arrays:
        raise DataError("no features to write: pass a mapping of feature name -> array")
    spec, rows = {}, {}
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.ndim == 0:
            raise DataError(f"feature {name!r} is a scalar; give one row per example (shape [rows, ...])")
        spec[name] = {"dtype": _spec_dtype(name, values.dtype), "shape": [int(d) for d in values.shape[1:]]}
        rows[name] = len(values)
    if len(set(rows.values())) > 1:
        raise DataError(f"features hold different numbers of rows ({rows}); every feature needs one row per example")
    return spec


def _spec_dtype(name: str, dtype: np.dtype) -> str:
    if dtype.kind in "USO":
        return "string"
    if dtype == np.float64:
        return "float32"
    if dtype.name in _STORAGE:
        return dtype.name
    raise DataError(
        f"feature {name!r} has dtype {dtype}, which a tf.train.Example cannot hold exactly; "
        "cast it to float32, int64 or str first"
    )


def load_feature_spec(path: str | os.PathLike) -> dict[str, dict]:
    """Read the spec `write_tfrecords` wrote.

    Args:
        path: the `feature_spec.json` file, or the directory holding it.

    Returns:
        The spec, checked: `{"name": {"dtype": ..., "shape": [...]}}`.

    Raises:
        DataError: if the file is missing, is not JSON, or an entry is not
            a known dtype with a list of non-negative sizes.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILE
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; write_tfrecords writes it beside the shards, or pass the spec itself") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON ({error}); re-write it with write_tfrecords") from None
    _check_spec(spec, str(path))
    return spec


def _check_spec(spec: Mapping, origin: str) -> None:
    if not isinstance(spec, Mapping) or not spec:
        raise DataError(f"{origin}: a feature spec maps feature names to {{'dtype': ..., 'shape': [...]}}; got {spec!r}")
    for name, entry in spec.items():
        shape = entry.get("shape") if isinstance(entry, Mapping) else None
        dtype = entry.get("dtype") if isinstance(entry, Mapping) else None
        if dtype not in _STORAGE:
            raise DataError(f"{origin}, feature {name!r}: dtype {dtype!r} is not one of {sorted(_STORAGE)}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise DataError(f"{origin}, feature {name!r}: shape {shape!r} must be a list of sizes such as [8, 8] ([] for a scalar)")


def to_parse_spec(spec: Mapping[str, Mapping]) -> dict[str, tf.io.FixedLenFeature]:
    """The `tf.io.parse_example` features for a spec.

    Args:
        spec: `{"name": {"dtype": ..., "shape": [...]}}`, as `feature_spec`
            or `load_feature_spec` return it.

    Returns:
        name -> `tf.io.FixedLenFeature(shape, float32 | int64 | string)`.

    Raises:
        DataError: if an entry has an unknown dtype or a bad shape.
    """
    _check_spec(spec, "feature spec")
    return {name: tf.io.FixedLenFeature(entry["shape"], _STORAGE[entry["dtype"]][1]) for name, entry in spec.items()}


def write_tfrecords(
    directory: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    *,
    num_shards: int = 1,
    compression: Compression = None,
    prefix: str = "data",
) -> list[Path]:
    """Write one `tf.train.Example` per row to sharded TFRecord files.

    Row i goes to shard i % num_shards, so `read_tfrecords` (which takes one
    record from each file in turn) gives the rows back in their order, as
    long as it reads all the shards at once (up to 16) and does not shuffle.

    Args:
        directory: where the shards and `feature_spec.json` go (created).
        arrays: feature name -> array with one row per example. Floats are
            stored as float_list, integers and bools as int64_list, str and
            bytes as bytes_list (str as UTF-8); rows are flattened.
        num_shards: number of files; more files let readers work in parallel
            and let a distribution strategy give each worker its own files.
        compression: None, "GZIP" or "ZLIB".
        prefix: file names are `{prefix}-00000-of-00004.tfrecord[.gz|.zlib]`.

    Returns:
        The paths of the shards, in order.

    Raises:
        DataError: for bad arrays (see `feature_spec`), a bad argument, a
            string cell that is neither str nor bytes, or shards of another
            write (another shard count or compression) already in `directory`.
    """
    _check_compression_name(compression)
    if not isinstance(num_shards, int) or num_shards < 1:
        raise DataError(f"num_shards must be a positive integer, got {num_shards!r}")
    spec = feature_spec(arrays)
    directory = Path(directory)
    paths = [directory / f"{prefix}-{i:05d}-of-{num_shards:05d}{_SUFFIXES[compression]}" for i in range(num_shards)]
    stale = sorted(set(glob.glob(str(directory / f"{glob.escape(prefix)}-*-of-*.tfrecord*"))) - {str(p) for p in paths})
    if stale:
        # A later glob over the directory would read the old shards too.
        raise DataError(f"{stale[0]} is a shard of an earlier write; delete it or write to another directory or prefix")
    records = _serialize_rows(arrays, spec)
    directory.mkdir(parents=True, exist_ok=True)
    for shard, path in enumerate(paths):
        with tf.io.TFRecordWriter(str(path), options=compression) as writer:
            for record in records[shard::num_shards]:
                writer.write(record)
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    return paths


def _serialize_rows(arrays: Mapping[str, np.ndarray], spec: Mapping[str, Mapping]) -> list[bytes]:
    # One `.tolist()` per feature turns the whole array into Python values at
    # C speed; what is left per row is building the protobuf.
    columns = {}
    for name, values in arrays.items():
        values = np.asarray(values)
        flat = values.reshape(len(values), -1)
        if spec[name]["dtype"] == "string":
            columns[name] = [[_to_bytes(v, name, row) for v in cells] for row, cells in enumerate(flat.tolist())]
        elif flat.dtype == np.bool_:
            columns[name] = flat.astype(np.int64).tolist()  # protobuf refuses Python bools in an int64_list
        else:
            columns[name] = flat.tolist()
    kinds = {name: _STORAGE[entry["dtype"]][0] for name, entry in spec.items()}
    list_types = {"float_list": tf.train.FloatList, "int64_list": tf.train.Int64List, "bytes_list": tf.train.BytesList}
    n_rows = len(next(iter(columns.values())))
    return [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    name: tf.train.Feature(**{kinds[name]: list_types[kinds[name]](value=columns[name][row])})
                    for name in columns
                }
            )
        ).SerializeToString()
        for row in range(n_rows)
    ]


def _to_bytes(value, name: str, row: int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise DataError(f"{where(row=row, column=name)}: {value!r} is neither str nor bytes; a string feature holds only text or bytes")


def list_tfrecord_files(files: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The TFRecord files that `files` names, sorted.

    Args:
        files: a path, a glob pattern, a directory (its `*.tfrecord*` files),
            or a sequence of these.

    Returns:
        Sorted, de-duplicated file paths.

    Raises:
        DataError: if a pattern matches no file.
    """
    patterns = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not patterns:
        raise DataError("no TFRecord files given; pass a path, a glob pattern or a directory")
    found = set()
    for pattern in map(str, patterns):
        if os.path.isdir(pattern):
            pattern = os.path.join(glob.escape(pattern), "*.tfrecord*")
        matches = [path for path in glob.glob(pattern) if os.path.isfile(path)]
        if not matches:
            raise DataError(f"no TFRecord files match {pattern!r}; check the path and the pattern")
        found.update(matches)
    return sorted(found)


def scan_tfrecords(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    compression: Compression = None,
    spec: Mapping[str, Mapping] | None = None,
    on_bad_data: Literal["error", "skip"] = "error",
    report: DataReport | None = None,
) -> dict[str, int]:
    """Count the readable records of each file, finding corrupt and truncated ones.

    One pass over every byte (checksums are verified), before training, so
    that a bad file fails here with its name rather than mid-epoch.

    Args:
        files: paths, glob patterns or directories (see `list_tfrecord_files`).
        compression: how the files were written: None, "GZIP" or "ZLIB".
        spec: if given, the first record of each file is checked against it.
        on_bad_data: "error" raises at the first corrupt record; "skip" keeps
            the records before it and counts the rest of that file in `report`.
        report: where skipped records are counted; required with "skip".

    Returns:
        File path -> number of readable records; pass it to
        `read_tfrecords(record_counts=...)` so only those are read.

    Raises:
        DataError: if no file matches, a record is corrupt (with "error"),
            the compression does not match the files, or the first record
            does not match `spec`.
    """
    if on_bad_data not in ("error", "skip"):
        raise DataError(f"on_bad_data {on_bad_data!r} is not 'error' or 'skip'")
    if on_bad_data == "skip" and report is None:
        raise DataError("on_bad_data='skip' needs a DataReport to count the skipped records in; pass report=")
    _check_compression_name(compression)
    if spec is not None:
        _check_spec(spec, "feature spec")
    counts = {}
    for path in list_tfrecord_files(files):
        good, corrupt = _count_readable(path, compression)
        if corrupt:
            _refuse_compression_mismatch(path, compression, good)
            if on_bad_data == "error":
                raise DataError(
                    f"{where(path, record=good)}: the record is corrupt or truncated (its checksum or length "
                    f"does not hold); the {good} records before it are readable. Re-write the file, or set "
                    "on_bad_data: skip to read only the records before it"
                )
            _report_skipped(report, path, good, compression)
        if spec is not None and good > 0:
            _check_first_record(path, compression, spec)
        counts[path] = good
    return counts


def _count_readable(path: str, compression: Compression) -> tuple[int, bool]:
    """(records read before the first corrupt one, whether there is one)."""
    good = 0
    try:
        for batch in tf.data.TFRecordDataset(path, compression_type=compression).batch(_SCAN_BATCH):
            good += int(batch.shape[0])
        return good, False
    except tf.errors.DataLossError:
        pass
    # The error lost the failing batch's partial count: find the record one at a time.
    try:
        for _ in tf.data.TFRecordDataset(path, compression_type=compression).skip(good):
            good += 1
    except tf.errors.DataLossError:
        return good, True
    return good, False


def _check_compression_name(compression: Compression) -> None:
    if compression not in _SUFFIXES:
        raise DataError(f"compression {compression!r} is not one of None, 'GZIP', 'ZLIB'")


def _refuse_compression_mismatch(path: str, compression: Compression, good: int) -> None:
    # A file read with the wrong compression fails at its first record, like
    # a corrupt one; its first bytes tell the two apart.
    if good > 0:
        return
    actual = _sniff_compression(path)
    if actual != "unknown" and actual != compression:
        raise DataError(
            f"{path} is {_describe(actual)} but was read as {_describe(compression)}; "
            f"pass compression={actual!r}"
        )


def _describe(compression: Compression | str) -> str:
    return "an uncompressed TFRecord file" if compression is None else f"{compression}-compressed"


def _sniff_compression(path: str) -> Compression | Literal["unknown"]:
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    if len(head) == 12 and _masked_crc32c(head[:8]) == int.from_bytes(head[8:], "little"):
        return None
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "ZLIB"
    return "unknown"


def _report_skipped(report: DataReport, path: str, good: int, compression: Compression) -> None:
    skipped = _records_from(path, good) if compression is None else None
    if skipped is not None:
        report.add("TFRecord records skipped: corrupt record and the rest of its file", skipped, [f"{where(path, record=good)} onward"])
    else:
        # Past a corrupt compressed block or length field nothing can be
        # framed again, so how many records were lost is unknown.
        report.add(
            "TFRecord files cut short at a corrupt record (records after it cannot be counted)",
            1,
            [f"{where(path, record=good)} onward, {good} records kept"],
        )


def _records_from(path: str, index: int) -> int | None:
    """Records from the `index`-th to the end of an uncompressed file, by its framing; None if broken."""
    # Framing: uint64 length, uint32 masked crc32c(length), data, uint32 masked crc32c(data).
    # Only lengths are checked: the records are skipped anyway, only their number matters.
    size = os.path.getsize(path)
    position = 0
    with open(path, "rb") as f:
        while f.tell() < size:
            header = f.read(12)
            if len(header) == 12 and _masked_crc32c(header[:8]) != int.from_bytes(header[8:], "little"):
                return None  # a corrupt length: where the next record starts is lost
            f.seek(int.from_bytes(header[:8], "little") + 4, os.SEEK_CUR)
            position += 1
    return position - index


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _check_first_record(path: str, compression: Compression, spec: Mapping[str, Mapping]) -> None:
    record = next(iter(tf.data.TFRecordDataset(path, compression_type=compression).take(1))).numpy()
    try:
        example = tf.train.Example.FromString(record)
    except DecodeError:
        raise DataError(f"{where(path, record=0)} is not a tf.train.Example; write the file with write_tfrecords") from None
    held = example.features.feature
    for name, entry in spec.items():
        kind, size = _STORAGE[entry["dtype"]][0], math.prod(entry["shape"])
        expected = f"{entry['dtype']} ({kind}) of {size} values (shape {entry['shape']})"
        if name not in held:
            raise DataError(
                f"{where(path, record=0)}, feature {name!r}: the spec expects {expected} but the record has no "
                f"such feature (it holds {sorted(held)}); fix the spec or re-write the file"
            )
        actual_kind = held[name].WhichOneof("kind")
        actual_size = len(getattr(held[name], actual_kind).value) if actual_kind else 0
        if actual_kind != kind or actual_size != size:
            raise DataError(
                f"{where(path, record=0)}, feature {name!r}: the spec expects {expected} but the record holds "
                f"{actual_kind} of {actual_size} values; fix the spec or re-write the file"
            )


def read_tfrecords(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    spec: Mapping[str, Mapping],
    *,
    compression: Compression = None,
    batch_size: int,
    shuffle_files: bool = False,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    deterministic: bool = True,
    drop_remainder: bool = False,
    record_counts: Mapping[str, int] | None = None,
) -> tf.data.Dataset:
    """Batches of parsed records: dicts of tensors with each feature's row shape.

    Files are read in parallel, one record from each in turn; each batch of
    serialized records is parsed in one vectorized `tf.io.parse_example`.
    The dataset shards by file under a distribution strategy, so give it at
    least as many files as workers.

    Args:
        files: paths, glob patterns or directories (see `list_tfrecord_files`).
        spec: `{"name": {"dtype": ..., "shape": [...]}}` (`load_feature_spec`).
        compression: how the files were written: None, "GZIP" or "ZLIB".
        batch_size: examples per batch.
        shuffle_files: shuffle the order of files each epoch.
        shuffle_buffer: shuffle records with this buffer before batching
            (0: keep the order read).
        seed: seeds both shuffles, so a run is reproducible.
        deterministic: keep the order fixed; False lets a slow file be
            overtaken, which is faster but changes the order between runs.
        drop_remainder: drop the last, smaller batch.
        record_counts: `scan_tfrecords`'s result: read only that many
            records of each file (the part before any corruption). It must
            name every file read; with it the dataset knows its length.

    Returns:
        A dataset of dicts from each feature name to a tensor of shape
        `[batch, *shape]`, in the spec's dtypes.

    Raises:
        DataError: if no file matches, the spec or an argument is bad, or a
            file is missing from `record_counts`.
    """
    parse_spec = to_parse_spec(spec)
    _check_compression_name(compression)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    paths = list_tfrecord_files(files)
    counts = _counts_for(paths, record_counts)

    ds = tf.data.Dataset.from_tensor_slices((paths, np.array(counts, dtype=np.int64)))
    if shuffle_files:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda path, count: tf.data.TFRecordDataset(path, compression_type=compression).take(count),
        cycle_length=min(len(paths), _MAX_OPEN_FILES),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if record_counts is not None:
        # interleave forgets the length; Keras needs it to know where an epoch ends.
        ds = ds.apply(tf.data.experimental.assert_cardinality(sum(counts)))
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dtypes = {name: tf.as_dtype(entry["dtype"]) for name, entry in spec.items()}
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).map(
        lambda records: _parse_batch(records, parse_spec, dtypes),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
    options.deterministic = deterministic
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _counts_for(paths: list[str], record_counts: Mapping[str, int] | None) -> list[int]:
    if record_counts is None:
        return [-1] * len(paths)  # take(-1) reads a whole file
    missing = [path for path in paths if path not in record_counts]
    if missing:
        raise DataError(
            f"{missing[0]} is not in record_counts; pass the result of scan_tfrecords over the same files"
        )
    return [int(record_counts[path]) for path in paths]


def _parse_batch(records: tf.Tensor, parse_spec: Mapping, dtypes: Mapping[str, tf.DType]) -> dict[str, tf.Tensor]:
    parsed = tf.io.parse_example(records, parse_spec)
    return {name: tf.cast(value, dtypes[name]) if value.dtype != dtypes[name] else value for name, value in parsed.items()}
