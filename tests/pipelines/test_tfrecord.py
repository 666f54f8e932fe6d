import json
import re

import numpy as np
import pytest
import tensorflow as tf

from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.tfrecord import (
    feature_spec,
    load_feature_spec,
    read_tfrecords,
    scan_tfrecords,
    to_parse_spec,
    write_tfrecords,
)

SKIPPED = "TFRecord records skipped: corrupt record and the rest of its file"
CUT_SHORT = "TFRecord files cut short at a corrupt record (records after it cannot be counted)"


def mixed_rows(n=20):
    rng = np.random.default_rng(0)
    return {
        "pixels": rng.normal(size=(n, 2, 3)).astype(np.float32),
        "label": np.arange(n, dtype=np.int32) * 7 - 30,
        "word": np.array([f"wörd {i}" for i in range(n)]),
        "blob": np.array([bytes([i, 255, 0, i]) for i in range(n)], dtype=object),
        "tags": np.array([[f"a{i}", f"b{i}"] for i in range(n)]),
    }


def float_rows(n):
    return {"x": np.arange(n * 16, dtype=np.float32).reshape(n, 16)}


def collect(ds):
    batches = list(ds.as_numpy_iterator())
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def corrupt_byte(path, record, n_records):
    # Rows of float_rows all serialize to the same length, so record i starts at i * size.
    data = bytearray(path.read_bytes())
    size = len(data) // n_records
    data[record * size + size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression, suffix", [(None, ".tfrecord"), ("GZIP", ".tfrecord.gz")])
def test_round_trip_gives_back_every_row_in_order(tmp_path, compression, suffix):
    rows = mixed_rows()
    paths = write_tfrecords(tmp_path, rows, num_shards=3, compression=compression)

    assert [p.name for p in paths] == [f"data-0000{i}-of-00003{suffix}" for i in range(3)]
    got = collect(read_tfrecords(tmp_path, load_feature_spec(tmp_path), compression=compression, batch_size=7))
    np.testing.assert_array_equal(got["pixels"], rows["pixels"])
    assert got["pixels"].dtype == np.float32 and got["pixels"].shape == (20, 2, 3)
    np.testing.assert_array_equal(got["label"], rows["label"])
    assert got["label"].dtype == np.int32
    assert [w.decode("utf-8") for w in got["word"]] == rows["word"].tolist()
    assert got["blob"].tolist() == rows["blob"].tolist()
    assert got["tags"].shape == (20, 2) and got["tags"][19].tolist() == [b"a19", b"b19"]


def test_spec_file_holds_each_features_dtype_and_row_shape(tmp_path):
    write_tfrecords(tmp_path, {**mixed_rows(), "wide": np.zeros((20, 3))})
    expected = {
        "pixels": {"dtype": "float32", "shape": [2, 3]},
        "label": {"dtype": "int32", "shape": []},
        "word": {"dtype": "string", "shape": []},
        "blob": {"dtype": "string", "shape": []},
        "tags": {"dtype": "string", "shape": [2]},
        "wide": {"dtype": "float32", "shape": [3]},  # float64 does not fit a float_list
    }
    assert json.loads((tmp_path / "feature_spec.json").read_text()) == expected
    assert load_feature_spec(tmp_path / "feature_spec.json") == expected
    parse = to_parse_spec(expected)
    assert parse["pixels"] == tf.io.FixedLenFeature([2, 3], tf.float32)
    assert parse["label"] == tf.io.FixedLenFeature([], tf.int64)
    assert parse["tags"] == tf.io.FixedLenFeature([2], tf.string)


def test_reading_is_deterministic_for_a_seed(tmp_path):
    write_tfrecords(tmp_path, float_rows(40), num_shards=4)
    spec = load_feature_spec(tmp_path)

    def order(seed):
        ds = read_tfrecords(tmp_path, spec, batch_size=8, shuffle_files=True, shuffle_buffer=10, seed=seed)
        return (collect(ds)["x"][:, 0] / 16).astype(int).tolist()

    first = order(3)
    assert order(3) == first
    assert sorted(first) == list(range(40)) and first != list(range(40))
    assert order(4) != first


def test_dataset_shards_by_file_under_a_strategy(tmp_path):
    write_tfrecords(tmp_path, float_rows(4), num_shards=2)
    ds = read_tfrecords(tmp_path, load_feature_spec(tmp_path), batch_size=2)
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE


def test_scan_counts_the_records_of_each_file(tmp_path):
    paths = write_tfrecords(tmp_path, float_rows(10), num_shards=3, compression="GZIP")
    counts = scan_tfrecords(str(tmp_path / "*.tfrecord.gz"), compression="GZIP", spec=load_feature_spec(tmp_path))
    assert counts == {str(paths[0]): 4, str(paths[1]): 3, str(paths[2]): 3}


def test_corrupt_record_is_an_error_naming_file_and_record(tmp_path):
    (path,) = write_tfrecords(tmp_path, float_rows(10))
    corrupt_byte(path, record=5, n_records=10)
    with pytest.raises(DataError, match=re.escape(f"{path}, record 5: the record is corrupt") + ".*on_bad_data: skip"):
        scan_tfrecords(path)


def test_truncated_file_is_an_error_naming_file_and_record(tmp_path):
    (path,) = write_tfrecords(tmp_path, float_rows(10))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 65 // 100])  # cut inside record 6
    with pytest.raises(DataError, match=re.escape(f"{path}, record 6:") + ".*6 records before it are readable"):
        scan_tfrecords(path)


def test_skip_keeps_the_good_prefix_and_reports_the_rest(tmp_path):
    paths = write_tfrecords(tmp_path, float_rows(20), num_shards=2)  # rows 0, 2, .. and 1, 3, ..
    corrupt_byte(paths[0], record=4, n_records=10)
    report = DataReport()

    counts = scan_tfrecords(tmp_path, on_bad_data="skip", report=report)

    assert counts == {str(paths[0]): 4, str(paths[1]): 10}
    assert report.count(SKIPPED) == 6
    assert report.entries[0].examples == [f"{paths[0]}, record 4 onward"]
    ds = read_tfrecords(tmp_path, load_feature_spec(tmp_path), batch_size=5, record_counts=counts)
    assert ds.cardinality().numpy() == 3
    rows = (collect(ds)["x"][:, 0] / 16).astype(int).tolist()
    # Rows 0, 2, 4, 6 of the first file, taking turns with the second, then the rest of the second.
    assert rows == list(range(8)) + list(range(9, 20, 2))


def test_skip_in_a_truncated_compressed_file_reports_the_file(tmp_path):
    rows = {"x": np.random.default_rng(1).normal(size=(2000, 16)).astype(np.float32)}
    (path,) = write_tfrecords(tmp_path, rows, compression="GZIP")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = DataReport()

    counts = scan_tfrecords(path, compression="GZIP", on_bad_data="skip", report=report)

    kept = counts[str(path)]
    assert 0 < kept < 2000
    assert report.count(CUT_SHORT) == 1
    assert report.entries[0].examples == [f"{path}, record {kept} onward, {kept} records kept"]
    got = collect(read_tfrecords(path, load_feature_spec(tmp_path), compression="GZIP", batch_size=256, record_counts=counts))
    np.testing.assert_array_equal(got["x"], rows["x"][:kept])


def test_skip_needs_a_report(tmp_path):
    (path,) = write_tfrecords(tmp_path, float_rows(2))
    with pytest.raises(DataError, match="needs a DataReport"):
        scan_tfrecords(path, on_bad_data="skip")


def test_record_counts_must_cover_every_file(tmp_path):
    paths = write_tfrecords(tmp_path, float_rows(4), num_shards=2)
    with pytest.raises(DataError, match=re.escape(f"{paths[1]} is not in record_counts")):
        read_tfrecords(tmp_path, load_feature_spec(tmp_path), batch_size=2, record_counts={str(paths[0]): 2})


def test_spec_without_a_recorded_feature_names_it(tmp_path):
    (path,) = write_tfrecords(tmp_path, float_rows(3))
    spec = {"x": {"dtype": "float32", "shape": [16]}, "label": {"dtype": "int64", "shape": []}}
    with pytest.raises(DataError, match=re.escape(f"{path}, record 0, feature 'label': the spec expects int64") + ".*no such feature .*\\['x'\\]"):
        scan_tfrecords(path, spec=spec)


def test_spec_with_the_wrong_dtype_or_size_names_the_feature(tmp_path):
    (path,) = write_tfrecords(tmp_path, float_rows(3))
    with pytest.raises(DataError, match=r"feature 'x': the spec expects int64 \(int64_list\) of 16 values \(shape \[16\]\) but the record holds float_list of 16 values"):
        scan_tfrecords(path, spec={"x": {"dtype": "int64", "shape": [16]}})
    with pytest.raises(DataError, match=r"feature 'x': the spec expects float32 \(float_list\) of 8 values \(shape \[2, 4\]\) but the record holds float_list of 16"):
        scan_tfrecords(path, spec={"x": {"dtype": "float32", "shape": [2, 4]}})


def test_no_matching_file_names_the_pattern(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"no TFRecord files match '{tmp_path}/*.tfrecord'")):
        scan_tfrecords(str(tmp_path / "*.tfrecord"))
    with pytest.raises(DataError, match="no TFRecord files match"):
        read_tfrecords(str(tmp_path / "*.tfrecord"), {"x": {"dtype": "float32", "shape": []}}, batch_size=2)


def test_compression_mismatch_says_which_compression_to_pass(tmp_path):
    (gzipped,) = write_tfrecords(tmp_path / "gz", float_rows(3), compression="GZIP")
    (plain,) = write_tfrecords(tmp_path / "plain", float_rows(3))
    with pytest.raises(DataError, match=re.escape(f"{gzipped} is GZIP-compressed but was read as an uncompressed TFRecord file; pass compression='GZIP'")):
        scan_tfrecords(gzipped)
    with pytest.raises(DataError, match=re.escape(f"{plain} is an uncompressed TFRecord file but was read as ZLIB-compressed; pass compression=None")):
        scan_tfrecords(plain, compression="ZLIB", on_bad_data="skip", report=DataReport())


def test_zlib_files_round_trip(tmp_path):
    rows = float_rows(5)
    (path,) = write_tfrecords(tmp_path, rows, compression="ZLIB")
    assert path.name == "data-00000-of-00001.tfrecord.zlib"
    assert scan_tfrecords(path, compression="ZLIB") == {str(path): 5}
    np.testing.assert_array_equal(collect(read_tfrecords(path, feature_spec(rows), compression="ZLIB", batch_size=2))["x"], rows["x"])


def test_writing_refuses_shards_of_an_earlier_write(tmp_path):
    write_tfrecords(tmp_path, float_rows(4), num_shards=2)
    write_tfrecords(tmp_path, float_rows(4), num_shards=2)  # the same files again is a re-write
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}/data-00000-of-00002.tfrecord is a shard of an earlier write")):
        write_tfrecords(tmp_path, float_rows(4), num_shards=3)


def test_arrays_that_cannot_be_written_are_errors(tmp_path):
    with pytest.raises(DataError, match=r"different numbers of rows \(\{'x': 3, 'y': 2\}\)"):
        write_tfrecords(tmp_path, {"x": np.zeros((3, 2)), "y": np.zeros(2)})
    with pytest.raises(DataError, match="feature 'big' has dtype uint64"):
        write_tfrecords(tmp_path, {"big": np.zeros(3, dtype=np.uint64)})
    with pytest.raises(DataError, match=r"row 1, column 'name': 5 is neither str nor bytes"):
        write_tfrecords(tmp_path, {"name": np.array(["a", 5], dtype=object)})
    with pytest.raises(DataError, match="num_shards must be a positive integer, got 0"):
        write_tfrecords(tmp_path, float_rows(2), num_shards=0)
    assert not list(tmp_path.iterdir())


def test_missing_spec_file_says_where_it_comes_from(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}/feature_spec.json does not exist; write_tfrecords writes it")):
        load_feature_spec(tmp_path)
    with pytest.raises(DataError, match=r"feature 'x': dtype 'float64' is not one of"):
        to_parse_spec({"x": {"dtype": "float64", "shape": [2]}})


def test_bools_halves_and_unsigned_ints_come_back_in_their_dtype(tmp_path):
    rows = {
        "mask": np.array([[True, False], [False, True]]),
        "half": np.array([0.5, 1.25], dtype=np.float16),
        "id": np.array([2**32 - 1, 3], dtype=np.uint32),
    }
    write_tfrecords(tmp_path, rows)
    got = collect(read_tfrecords(tmp_path, load_feature_spec(tmp_path), batch_size=2))
    for name, values in rows.items():
        assert got[name].dtype == values.dtype
        np.testing.assert_array_equal(got[name], values)
