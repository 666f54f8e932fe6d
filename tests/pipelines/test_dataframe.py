"""from_arrays and from_dataframe: exact values, NaN for missing, errors that name row or column."""

import numpy as np
import pandas as pd
import pytest

from tfdl.pipelines.dataframe import from_arrays, from_dataframe
from tfdl.pipelines.errors import DataError


def test_from_arrays_converts_nested_lists_to_float32_with_none_as_nan():
    data = from_arrays([[1, 2.5], [3, None]], ["b", "a"], input_name="x", feature_names=("p", "q"))
    np.testing.assert_array_equal(data.features, np.array([[1.0, 2.5], [3.0, np.nan]], dtype=np.float32))
    assert data.features.dtype == np.float32
    np.testing.assert_array_equal(data.labels, [1, 0])
    assert data.class_names == ("a", "b")
    assert data.input_name == "x"
    assert data.feature_names == ("p", "q")


def test_from_arrays_takes_numpy_arrays_of_any_numeric_dtype():
    data = from_arrays(np.arange(6, dtype=np.int64).reshape(3, 2), np.array([0, 1, 0]), class_names=["n", "y"])
    np.testing.assert_array_equal(data.features, [[0, 1], [2, 3], [4, 5]])
    assert data.features.dtype == np.float32
    assert data.class_names == ("n", "y")


def test_inconsistent_shapes_name_the_first_differing_row_and_the_expected_shape():
    with pytest.raises(DataError, match=r"inconsistent shapes: row 2 has shape \(3,\) but row 0 has shape \(2,\)"):
        from_arrays([[1, 2], [3, 4], [5, 6, 7], [8]], [0, 1, 0, 1])


def test_non_numeric_feature_names_row_column_and_value():
    with pytest.raises(DataError, match=r"row 1, column 'q': 'high' is not a number"):
        from_arrays([[1, 2], [3, "high"]], [0, 1], feature_names=("p", "q"))
    # Numeric text is text too: a string array is not silently parsed.
    with pytest.raises(DataError, match=r"row 0, column 0: '1' is not a number"):
        from_arrays(np.array([["1", "b"]]), [0])


def test_feature_and_label_counts_must_match():
    with pytest.raises(DataError, match=r"3 examples but labels 2"):
        from_arrays([[1], [2], [3]], [0, 1])


def test_feature_names_must_match_the_columns():
    with pytest.raises(DataError, match=r"2 feature_names.*shape \(1, 3\)"):
        from_arrays([[1, 2, 3]], [0], feature_names=("a", "b"))


def test_empty_features_are_refused():
    with pytest.raises(DataError, match="empty"):
        from_arrays([], [])


def _frame():
    return pd.DataFrame(
        {
            "age": [30.0, None, 50.0],
            "visits": pd.array([1, None, 3], dtype="Int64"),
            "city": ["Oslo", "Rome", "Oslo"],
            "species": ["dog", "cat", "dog"],
        },
        index=[10, 11, 12],
    )


def test_from_dataframe_keeps_missing_values_as_nan_and_names_features():
    data = from_dataframe(_frame(), "species", feature_columns=["visits", "age"], input_name="tab")
    np.testing.assert_array_equal(
        data.features, np.array([[1.0, 30.0], [np.nan, np.nan], [3.0, 50.0]], dtype=np.float32)
    )
    assert data.feature_names == ("visits", "age")
    np.testing.assert_array_equal(data.labels, [1, 0, 1])
    assert data.class_names == ("cat", "dog")
    assert data.input_name == "tab"


def test_from_dataframe_integer_labels_with_class_names():
    frame = pd.DataFrame({"x": [0.5, 1.5], "y": [1, 0]})
    data = from_dataframe(frame, "y", class_names=["neg", "pos"])
    np.testing.assert_array_equal(data.labels, [1, 0])
    assert data.feature_names == ("x",)


def test_default_feature_columns_include_text_columns_and_refuse_them():
    with pytest.raises(DataError, match=r"feature column 'city' is not numeric.*row 10 holds 'Oslo'.*drop it.*encode it"):
        from_dataframe(_frame(), "species")


def test_unknown_columns_list_the_available_ones():
    with pytest.raises(DataError, match=r"label_column 'kind'.*'age', 'visits', 'city', 'species'"):
        from_dataframe(_frame(), "kind")
    with pytest.raises(DataError, match=r"feature_columns 'height'.*'age', 'visits', 'city', 'species'"):
        from_dataframe(_frame(), "species", feature_columns=["age", "height"])


def test_label_column_cannot_be_a_feature():
    with pytest.raises(DataError, match=r"label column 'species' is also in feature_columns"):
        from_dataframe(_frame(), "species", feature_columns=["age", "species"])


def test_missing_label_is_named_by_the_frame_index():
    frame = _frame()
    frame.loc[12, "species"] = None
    with pytest.raises(DataError, match=r"column 'species'.*row 12: missing label"):
        from_dataframe(frame, "species", feature_columns=["age"])


def test_object_column_of_numbers_and_none_is_numeric():
    frame = pd.DataFrame({"x": pd.Series([1, None, 2.5], dtype=object), "y": [0, 1, 0]})
    data = from_dataframe(frame, "y")
    np.testing.assert_array_equal(data.features[:, 0], np.array([1.0, np.nan, 2.5], dtype=np.float32))
