"""Missing-value policy: refuse, drop (counted), impute from training rows only (counted)."""

import numpy as np
import pytest

from tfdl.layers.missing_value_imputation import MissingValueImputation
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.missing import check_no_missing, drop_missing, fit_imputer, impute_report
from tfdl.pipelines.splits import split_indices

NAN = np.nan


def _table():
    return np.array(
        [
            [1.0, 10.0, 5.0],
            [NAN, 20.0, 5.0],
            [3.0, NAN, 7.0],
            [4.0, 40.0, NAN],
            [NAN, 20.0, 7.0],
            [6.0, 60.0, 7.0],
        ],
        dtype=np.float32,
    )


def test_check_no_missing_passes_complete_data():
    check_no_missing(np.ones((3, 2), dtype=np.float32))
    check_no_missing(np.ones((3, 2), dtype=np.int64))


def test_check_no_missing_names_columns_rows_counts_and_the_policy():
    with pytest.raises(DataError) as caught:
        check_no_missing(_table(), ("age", "income", "visits"))
    message = str(caught.value)
    assert "4 missing values (NaN) in 3 column(s)" in message
    assert "column 'age': 2 (first at row 1, row 4)" in message
    assert "column 'income': 1 (first at row 2)" in message
    assert "column 'visits': 1 (first at row 3)" in message
    assert "data.missing.policy: drop" in message and "impute" in message


def test_check_no_missing_uses_row_names():
    rows = [f"d.csv, line {i + 2}" for i in range(6)]
    with pytest.raises(DataError, match=r"column 2: 1 \(first at d\.csv, line 5\)"):
        check_no_missing(_table(), row_names=rows)


def test_drop_missing_keeps_complete_rows_and_counts_per_column():
    labels = np.arange(6, dtype=np.int32)
    report = DataReport()
    features, kept_labels, kept = drop_missing(_table(), labels, report=report, feature_names=("age", "income", "visits"))
    np.testing.assert_array_equal(kept, [0, 5])
    np.testing.assert_array_equal(features, _table()[[0, 5]])
    np.testing.assert_array_equal(kept_labels, [0, 5])
    assert report.count("rows dropped: missing values") == 4
    assert report.count("rows dropped: missing value in column 'age'") == 2
    assert report.count("rows dropped: missing value in column 'income'") == 1
    assert report.count("rows dropped: missing value in column 'visits'") == 1
    (total,) = [e for e in report.entries if e.what == "rows dropped: missing values"]
    assert total.examples == ["row 1", "row 2", "row 3", "row 4"]


def test_drop_missing_with_nothing_missing_reports_nothing():
    report = DataReport()
    features, labels, kept = drop_missing(np.ones((2, 2)), np.array([0, 1]), report=report)
    np.testing.assert_array_equal(kept, [0, 1])
    assert not report


def test_drop_missing_that_would_drop_everything_suggests_impute():
    with pytest.raises(DataError, match=r"every one of the 2 rows.*impute"):
        drop_missing(np.array([[NAN, 1.0], [2.0, NAN]]), np.array([0, 1]), report=DataReport())


def _apply(layer, features) -> np.ndarray:
    return np.asarray(layer(features.astype(np.float32)))


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_statistics_come_from_training_rows_only(strategy):
    rng = np.random.default_rng(0)
    features = rng.integers(0, 5, size=(200, 3)).astype(np.float64)
    features[rng.random(features.shape) < 0.2] = NAN
    labels = rng.integers(0, 2, size=200)
    split = split_indices(labels, validation=0.2, test=0.1, seed=3)
    # Extreme values outside the training rows: any leak moves every statistic.
    features[split.validation] = 1e6
    features[split.test] = -1e6
    train = features[split.train]

    layer = fit_imputer(train, strategy)

    if strategy == "mean":
        expected = np.nanmean(train, axis=0)
    elif strategy == "median":
        expected = np.nanmedian(train, axis=0)
    else:
        expected = []
        for column in train.T:
            values, counts = np.unique(column[~np.isnan(column)], return_counts=True)
            expected.append(values[counts == counts.max()].min())
    np.testing.assert_allclose(layer.fill_values, np.asarray(expected, dtype=np.float32), rtol=1e-6)
    assert np.all(np.abs(layer.fill_values) < 5)


def test_imputed_values_fill_only_the_missing_cells():
    layer = fit_imputer(_table(), "mean")
    out = _apply(layer, _table())
    assert out.shape == (6, 3)
    np.testing.assert_allclose(out[1, 0], np.mean([1, 3, 4, 6]))
    np.testing.assert_allclose(out[2, 1], np.mean([10, 20, 40, 20, 60]))
    np.testing.assert_allclose(out[3, 2], np.mean([5, 5, 7, 7, 7]))
    np.testing.assert_array_equal(out[0], [1.0, 10.0, 5.0])


def test_most_frequent_breaks_ties_by_the_smallest_value():
    train = np.array([[3.0], [1.0], [3.0], [1.0], [NAN], [2.0]])
    assert fit_imputer(train, "most_frequent").fill_values == [1.0]


def test_median_of_an_even_count_is_the_midpoint():
    train = np.array([[1.0], [NAN], [10.0], [4.0], [2.0]])
    assert fit_imputer(train, "median").fill_values == [3.0]


def test_constant_fills_every_column_with_fill_value():
    assert fit_imputer(_table(), "constant", fill_value=-1.0).fill_values == [-1.0, -1.0, -1.0]


def test_indicators_are_added_for_columns_missing_in_training_only():
    train = np.array([[1.0, NAN, 5.0], [3.0, 2.0, NAN], [5.0, 4.0, 1.0]])
    layer = fit_imputer(train, "mean", indicator=True)
    assert layer.indicator_columns == [1, 2]
    # Column 0 has a NaN in new data: filled, but it gets no indicator.
    out = _apply(layer, np.array([[NAN, NAN, 7.0], [2.0, 8.0, NAN]]))
    np.testing.assert_allclose(out, [[3.0, 3.0, 7.0, 1.0, 0.0], [2.0, 8.0, 3.0, 0.0, 1.0]])


def test_a_column_missing_in_all_training_rows_falls_back_to_fill_value_and_says_so():
    train = np.array([[1.0, NAN], [3.0, NAN]])
    report = DataReport()
    layer = fit_imputer(train, "median", fill_value=-5.0, feature_names=("a", "b"), report=report)
    assert layer.fill_values == [2.0, -5.0]
    assert layer.notes == ("no training value in column 'b': filled with fill_value -5",)
    assert report.count("columns with no training value, filled with -5") == 1


def test_impute_report_counts_filled_values_per_column():
    layer = fit_imputer(_table(), "constant", fill_value=0.0)
    report = DataReport()
    impute_report(_table(), layer, report, ("age", "income", "visits"))
    assert report.count("values filled: column 'age' with 0") == 2
    assert report.count("values filled: column 'income' with 0") == 1
    assert report.count("values filled: column 'visits' with 0") == 1
    (age,) = [e for e in report.entries if "'age'" in e.what]
    assert age.examples == ["row 1", "row 4"]


def test_impute_report_refuses_other_columns():
    layer = fit_imputer(_table(), "mean")
    with pytest.raises(DataError, match=r"2 columns but the imputer was fitted on 3"):
        impute_report(np.zeros((2, 2)), layer, DataReport())


def test_fit_imputer_returns_a_built_layer_and_refuses_bad_arguments():
    layer = fit_imputer(_table(), "mean")
    assert isinstance(layer, MissingValueImputation) and layer.built
    with pytest.raises(DataError, match="unknown imputation strategy 'mode'"):
        fit_imputer(_table(), "mode")
    with pytest.raises(DataError, match=r"\(examples, features\).*\(6,\)"):
        fit_imputer(_table()[:, 0], "mean")
    with pytest.raises(DataError, match="fill_value must be a finite number"):
        fit_imputer(_table(), "constant", fill_value=NAN)
