"""load_csv: parsed values and types, several files, and errors that name file, line and column."""

import re

import numpy as np
import pytest

from tfdl.pipelines.csv_source import load_csv
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def _at(path, line: int) -> str:
    return re.escape(f"{path}, line {line}")


def test_header_file_values_types_and_missing(tmp_path):
    path = _write(tmp_path / "pets.csv", "age,weight,species\n3,4.5,dog\n 7 ,NA,cat\n\n1,?,dog\n")
    data = load_csv(path, "species")
    np.testing.assert_array_equal(
        data.features, np.array([[3.0, 4.5], [7.0, np.nan], [1.0, np.nan]], dtype=np.float32)
    )
    assert data.features.dtype == np.float32
    np.testing.assert_array_equal(data.labels, [1, 0, 1])
    assert data.labels.dtype == np.int32
    assert data.class_names == ("cat", "dog")
    assert data.feature_names == ("age", "weight")
    assert data.input_name == "features"


def test_no_header_uses_column_names_and_integer_labels(tmp_path):
    path = _write(tmp_path / "raw.csv", "0.5;2;1\n-1e2;3;0\n")
    data = load_csv(
        path, "y", header=False, column_names=["x1", "x2", "y"], delimiter=";", class_names=["no", "yes"]
    )
    np.testing.assert_array_equal(data.features, np.array([[0.5, 2.0], [-100.0, 3.0]], dtype=np.float32))
    np.testing.assert_array_equal(data.labels, [1, 0])
    assert data.class_names == ("no", "yes")
    assert data.feature_names == ("x1", "x2")


def test_no_header_without_column_names_is_refused(tmp_path):
    path = _write(tmp_path / "raw.csv", "1,2\n")
    with pytest.raises(DataError, match="header=False needs column_names"):
        load_csv(path, "y", header=False)


def test_two_files_by_glob_are_read_in_sorted_order(tmp_path):
    _write(tmp_path / "part-2.csv", "x,label\n30,b\n")
    _write(tmp_path / "part-1.csv", "x,label\n10,a\n20,b\n")
    _write(tmp_path / "other.csv", "x,label\n99,a\n")
    data = load_csv(str(tmp_path / "part-*.csv"), "label", feature_columns=["x"])
    np.testing.assert_array_equal(data.features[:, 0], [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(data.labels, [0, 1, 1])


def test_a_list_of_files_must_share_columns(tmp_path):
    first = _write(tmp_path / "a.csv", "x,label\n1,a\n")
    second = _write(tmp_path / "b.csv", "x,y,label\n1,2,a\n")
    with pytest.raises(DataError, match=r"b\.csv: the columns \['x', 'y', 'label'\] differ from \['x', 'label'\]"):
        load_csv([second, first], "label")


def test_no_matching_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"no files match .*nothing-\*\.csv"):
        load_csv(str(tmp_path / "nothing-*.csv"), "y")
    with pytest.raises(DataError, match=r"missing\.csv' does not exist"):
        load_csv(tmp_path / "missing.csv", "y")


def test_declared_types_are_enforced_and_undeclared_inferred(tmp_path):
    bad = _write(tmp_path / "bad.csv", "count,ratio,label\n1,2,0\n2.5,3,1\n")
    with pytest.raises(DataError) as caught:
        load_csv(bad, "label", column_types={"count": "int"})
    message = str(caught.value)
    assert f"{bad}, line 3, column 'count'" in message
    assert "'2.5' is not an int" in message
    # Undeclared, the same column is inferred as float and loads.
    np.testing.assert_array_equal(load_csv(bad, "label").features[:, 0], [1.0, 2.5])


def test_unparsable_float_names_file_line_column_value_and_type(tmp_path):
    path = _write(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,4,1\n5,x7,0\n")
    with pytest.raises(DataError, match=_at(path, 4) + r", column 'b': 'x7' is not a float.*on_bad_data='skip'"):
        load_csv(path, "label", column_types={"b": "float"})


def test_wrong_field_count_names_file_and_line(tmp_path):
    path = _write(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,4\n")
    with pytest.raises(DataError, match=_at(path, 3) + r": 2 fields but there are 3 columns \(a, b, label\)"):
        load_csv(path, "label")


def test_text_feature_column_says_to_list_only_numeric_columns(tmp_path):
    path = _write(tmp_path / "d.csv", "id,a,label\n1,2,0\nabc,4,1\n")
    with pytest.raises(DataError) as caught:
        load_csv(path, "label", column_types={"id": "string"})
    message = str(caught.value)
    assert "feature column 'id' holds text" in message
    assert "List only numeric columns in feature_columns (numeric ones here: 'a')" in message
    # Inferred as text, the message points at the first value that is not a number.
    with pytest.raises(DataError, match=_at(path, 3) + ": 'abc'"):
        load_csv(path, "label")


def test_unknown_column_names_list_the_columns(tmp_path):
    path = _write(tmp_path / "d.csv", "a,b,label\n1,2,0\n")
    columns = r"'a', 'b', 'label'"
    with pytest.raises(DataError, match=r"label_column 'class' is not a column; the columns are " + columns):
        load_csv(path, "class")
    with pytest.raises(DataError, match=r"feature_columns names 'c', not a column; the columns are " + columns):
        load_csv(path, "label", feature_columns=["a", "c"])
    with pytest.raises(DataError, match=r"column_types names 'z', not a column"):
        load_csv(path, "label", column_types={"z": "int"})


def test_empty_files_are_refused(tmp_path):
    empty = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=re.escape(f"{empty} is empty")):
        load_csv(empty, "label")
    header_only = _write(tmp_path / "header.csv", "a,label\n")
    with pytest.raises(DataError, match=r"header\.csv is empty: it has no data rows after its header"):
        load_csv(header_only, "label")


def test_bad_label_names_file_and_line(tmp_path):
    path = _write(tmp_path / "d.csv", "a,label\n1,0\n2,5\n3,NA\n")
    with pytest.raises(DataError) as caught:
        load_csv(path, "label", class_names=["x", "y"])
    message = str(caught.value)
    assert f"{path}, line 3: 5 is not below the number of classes (2)" in message
    assert f"{path}, line 4: missing label" in message


def test_skip_mode_skips_and_counts_bad_lines(tmp_path):
    path = _write(tmp_path / "d.csv", "a,b,label\n1,2,0\n3\n4,x,1\n5,6,1,9\n7,8,1\n9,y,1\n")
    report = DataReport()
    data = load_csv(path, "label", column_types={"b": "float"}, on_bad_data="skip", report=report)
    np.testing.assert_array_equal(data.features, np.array([[1.0, 2.0], [7.0, 8.0]], dtype=np.float32))
    np.testing.assert_array_equal(data.labels, [0, 1])
    assert report.count("rows skipped: wrong number of fields") == 2
    assert report.count("rows skipped: values that do not parse") == 2
    (fields,) = [e for e in report.entries if e.what == "rows skipped: wrong number of fields"]
    assert fields.examples == [f"{path}:3 (1 fields, expected 3)", f"{path}:5 (4 fields, expected 3)"]
    (values,) = [e for e in report.entries if e.what == "rows skipped: values that do not parse"]
    assert values.examples == [f"{path}:4 column 'b': 'x' is not a float", f"{path}:7 column 'b': 'y' is not a float"]
    # The labels' row names still point at the right lines after skipping.
    with pytest.raises(DataError, match=_at(path, 6) + ": 1 is not below"):
        load_csv(path, "label", column_types={"b": "float"}, class_names=["z"], on_bad_data="skip", report=DataReport())


def test_skip_mode_needs_a_report(tmp_path):
    path = _write(tmp_path / "d.csv", "a,label\n1,0\n")
    with pytest.raises(DataError, match="needs a report"):
        load_csv(path, "label", on_bad_data="skip")


def test_byte_order_mark_does_not_stick_to_the_first_column(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffsize,label\n2,a\n".encode("utf-8"))
    assert load_csv(path, "label").feature_names == ("size",)
