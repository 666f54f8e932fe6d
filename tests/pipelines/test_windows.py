import numpy as np
import pytest

from tfdl.pipelines.errors import DataError
from tfdl.pipelines.windows import split_series, window_dataset


def collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def test_next_step_windows_of_a_small_series():
    dataset = window_dataset(np.arange(10), input_width=3, batch_size=4)
    batches = list(dataset.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [4, 3]
    inputs, labels = collect(dataset)
    np.testing.assert_array_equal(inputs[:, :, 0], [[s, s + 1, s + 2] for s in range(7)])
    np.testing.assert_array_equal(labels[:, :, 0], [[s + 3] for s in range(7)])
    assert inputs.shape == (7, 3, 1) and labels.shape == (7, 1, 1)


def test_label_window_ends_shift_steps_after_the_inputs_with_chosen_columns_and_stride():
    series = np.arange(16).reshape(8, 2)
    inputs, labels = collect(window_dataset(series, input_width=2, label_width=2, shift=3, label_columns=[1], stride=2))
    np.testing.assert_array_equal(inputs, [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    np.testing.assert_array_equal(labels, [[[7], [9]], [[11], [13]]])


def test_label_window_may_overlap_the_inputs_as_in_the_tutorial():
    inputs, labels = collect(window_dataset(np.arange(6.0), input_width=3, label_width=3, shift=1))
    np.testing.assert_array_equal(inputs[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(labels[:, :, 0], [[1, 2, 3], [2, 3, 4], [3, 4, 5]])
    assert inputs.dtype == np.float64


def test_split_series_is_chronological():
    train, validation, test = split_series(np.arange(100), validation=0.2, test=0.1)
    np.testing.assert_array_equal(train, np.arange(70))
    np.testing.assert_array_equal(validation, np.arange(70, 90))
    np.testing.assert_array_equal(test, np.arange(90, 100))


def test_windows_of_each_split_never_touch_another_split():
    # Values are the time indices, so a window shows which steps it covers.
    series = np.stack([np.arange(200), np.arange(200)], axis=1)
    parts = split_series(series, validation=0.2, test=0.15)
    covered = []
    for part in parts:
        inputs, labels = collect(window_dataset(part, input_width=6, label_width=2, shift=3, batch_size=16))
        steps = set(inputs.ravel().tolist()) | set(labels.ravel().tolist())
        assert steps <= set(part[:, 0].tolist())
        covered.append(steps)
    train, validation, test = covered
    assert not train & validation and not train & test and not validation & test
    assert max(train) < min(validation) and max(validation) < min(test)
    # Windows reach the end of each part: nothing but the first steps is lost.
    assert max(train) == 129 and max(validation) == 169 and max(test) == 199


def test_shuffle_is_reproducible_with_a_seed_and_keeps_every_window():
    series = np.arange(50)
    ordered, _ = collect(window_dataset(series, input_width=4, batch_size=8))
    first = window_dataset(series, input_width=4, batch_size=8, shuffle=True, seed=3)
    second = window_dataset(series, input_width=4, batch_size=8, shuffle=True, seed=3)
    epoch_1, epoch_2 = collect(first)[0], collect(first)[0]
    np.testing.assert_array_equal(epoch_1, collect(second)[0])
    np.testing.assert_array_equal(epoch_2, collect(second)[0])
    assert not np.array_equal(epoch_1, ordered) and not np.array_equal(epoch_1, epoch_2)
    np.testing.assert_array_equal(np.sort(epoch_1[:, 0, 0]), ordered[:, 0, 0])
    # Labels stay with their inputs through the shuffle.
    inputs, labels = collect(first)
    np.testing.assert_array_equal(labels[:, 0, 0], inputs[:, -1, 0] + 1)


def test_series_too_short_for_one_window_says_the_lengths():
    with pytest.raises(DataError, match=r"the series has 4 time steps but one window needs input_width \+ shift = 3 \+ 2 = 5"):
        window_dataset(np.arange(4), input_width=3, shift=2)


def test_bad_window_arguments():
    series = np.zeros((20, 3))
    with pytest.raises(DataError, match=r"label column 3 is out of range: the series has 3 features \(columns 0\.\.2\)"):
        window_dataset(series, input_width=4, label_columns=[0, 3])
    with pytest.raises(DataError, match="label_width=6 is longer than the window input_width \\+ shift = 5"):
        window_dataset(series, input_width=4, label_width=6)
    with pytest.raises(DataError, match="shift must be an integer >= 1, got 0"):
        window_dataset(series, input_width=4, shift=0)
    with pytest.raises(DataError, match=r"shape \(T,\) or \(T, features\), got \(2, 2, 2\)"):
        window_dataset(np.zeros((2, 2, 2)), input_width=1)


def test_bad_split_fractions():
    with pytest.raises(DataError, match="validation must be a fraction in \\(0, 1\\), got 0"):
        split_series(np.arange(10), validation=0, test=0.2)
    with pytest.raises(DataError, match="validation \\+ test = 1.0 leaves no training steps"):
        split_series(np.arange(10), validation=0.5, test=0.5)
    with pytest.raises(DataError, match="a series of 4 steps .* gives 3/1/0 steps"):
        split_series(np.arange(4), validation=0.2, test=0.1)
