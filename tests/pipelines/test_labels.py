"""encode_labels: class indices and names, and bad labels named by row."""

import numpy as np
import pytest

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.labels import encode_labels


def test_integer_labels_without_class_names_name_classes_0_to_max():
    indices, names = encode_labels([2, 0, 1, 2])
    np.testing.assert_array_equal(indices, [2, 0, 1, 2])
    assert indices.dtype == np.int32
    assert names == ("0", "1", "2")


def test_integer_labels_index_the_given_class_names():
    indices, names = encode_labels(np.array([1, 0, 1], dtype=np.int64), ["cat", "dog", "fox"])
    np.testing.assert_array_equal(indices, [1, 0, 1])
    assert names == ("cat", "dog", "fox")


def test_integral_floats_are_class_indices():
    indices, names = encode_labels(np.array([1.0, 0.0, 3.0]))
    np.testing.assert_array_equal(indices, [1, 0, 3])
    assert names == ("0", "1", "2", "3")


def test_string_labels_without_class_names_use_sorted_unique_names():
    indices, names = encode_labels(["dog", "cat", "dog", "ant"])
    assert names == ("ant", "cat", "dog")
    np.testing.assert_array_equal(indices, [2, 1, 2, 0])


def test_string_labels_map_through_the_given_class_names_in_their_order():
    indices, names = encode_labels(np.array(["dog", "cat"], dtype=object), ["dog", "cat"])
    np.testing.assert_array_equal(indices, [0, 1])
    assert names == ("dog", "cat")


def test_label_outside_the_class_range_names_row_value_and_range():
    with pytest.raises(DataError, match=r"1 of 3 labels.*row 2: 3 is not below the number of classes \(3\).*0\.\.2"):
        encode_labels([0, 1, 3], ["a", "b", "c"])


def test_negative_fractional_and_missing_labels_are_each_named():
    with pytest.raises(DataError) as caught:
        encode_labels([0, -1, 1.5, None, float("nan")], ["a", "b"])
    message = str(caught.value)
    assert "4 of 5 labels" in message
    assert "row 1: -1 is negative" in message
    assert "row 2: 1.5 is not an integer class index" in message
    assert "row 3: missing label" in message and "row 4: missing label" in message
    assert "classes 'a', 'b'" in message


def test_unknown_class_name_lists_the_valid_names_and_uses_row_names():
    rows = ["data.csv, line 2", "data.csv, line 3", "data.csv, line 4"]
    with pytest.raises(DataError, match=r"column 'y'.*data\.csv, line 3: 'emu' is not a class name.*'cat', 'dog'"):
        encode_labels(["cat", "emu", "dog"], ["cat", "dog"], row_names=rows, source="column 'y'")


def test_missing_string_label_is_an_error():
    with pytest.raises(DataError, match=r"row 1: missing label"):
        encode_labels(np.array(["cat", None], dtype=object))


def test_only_the_first_five_bad_rows_are_shown_with_the_total():
    with pytest.raises(DataError) as caught:
        encode_labels([9] * 8 + [0], ["a"])
    message = str(caught.value)
    assert "8 of 9 labels" in message
    assert "row 4: 9" in message and "row 5" not in message
    assert "(and 3 more)" in message


def test_repeated_class_names_are_refused():
    with pytest.raises(DataError, match=r"repeats 'a'"):
        encode_labels([0], ["a", "b", "a"])


def test_labels_must_be_one_dimensional():
    with pytest.raises(DataError, match=r"1-D.*\(2, 2\)"):
        encode_labels(np.zeros((2, 2)))
