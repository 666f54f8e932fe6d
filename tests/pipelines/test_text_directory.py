import numpy as np
import pytest

from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError
from tfdl.pipelines.text_directory import load_text_directory


def write(path, content: bytes | str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


@pytest.fixture
def reviews(tmp_path):
    root = tmp_path / "reviews"
    write(root / "pos" / "b.txt", "Great film")
    write(root / "pos" / "a.txt", "Loved it")
    write(root / "neg" / "z.txt", "Dull")
    write(root / "neg" / "deeper" / "c.txt", "Too long")
    write(root / "neg" / "notes.md", "not a review")
    return root


def test_classes_are_sorted_folders_and_files_are_sorted_within_a_class(reviews):
    report = DataReport()
    data = load_text_directory(reviews, report=report)
    assert data.class_names == ("neg", "pos")
    assert data.features.dtype == object
    assert data.features.tolist() == ["Too long", "Dull", "Loved it", "Great film"]
    np.testing.assert_array_equal(data.labels, np.array([0, 0, 1, 1], dtype=np.int32))
    assert data.labels.dtype == np.int32
    assert data.input_name == "text"
    # A file of another type is not a review, and the report says it was left out.
    assert report.count("files ignored: extension not one of .txt") == 1
    assert "notes.md" in report.entries[0].examples[0]


def test_extensions_are_matched_case_insensitively_and_can_be_chosen(tmp_path):
    write(tmp_path / "a" / "x.TXT", "upper")
    write(tmp_path / "a" / "y.text", "other")
    write(tmp_path / "b" / "z.text", "zed")
    data = load_text_directory(tmp_path, extensions=(".txt", ".text"), input_name="review")
    assert data.features.tolist() == ["upper", "other", "zed"]
    assert data.input_name == "review"


def test_empty_files_are_skipped_and_counted(reviews):
    write(reviews / "pos" / "empty.txt", "")
    write(reviews / "pos" / "blank.txt", " \n\t ")
    report = DataReport()
    data = load_text_directory(reviews, report=report)
    assert len(data) == 4
    assert report.count("text files skipped: empty") == 2
    assert [e.rsplit("/", 1)[-1] for e in report.entries[-1].examples] == ["blank.txt", "empty.txt"]


def test_without_a_report_skipped_files_are_a_warning(reviews):
    write(reviews / "pos" / "empty.txt", "")
    with pytest.warns(UserWarning, match="text files skipped: empty: 1"):
        load_text_directory(reviews)


def test_undecodable_file_names_the_file_and_byte_offset(reviews):
    write(reviews / "pos" / "bad.txt", b"ok \xff\xfe then")
    with pytest.raises(DataError, match=r"bad\.txt: byte offset 3 is not valid utf-8.*re-encode.*on_bad_data: skip"):
        load_text_directory(reviews)


def test_undecodable_file_is_skipped_and_counted_on_request(reviews):
    write(reviews / "pos" / "bad.txt", b"\xe9t\xe9")
    report = DataReport()
    data = load_text_directory(reviews, on_bad_data="skip", report=report)
    assert data.features.tolist() == ["Too long", "Dull", "Loved it", "Great film"]
    assert report.count("text files skipped: not readable as utf-8") == 1
    # The same bytes are valid latin-1: the encoding option reads them.
    data = load_text_directory(reviews, encoding="latin-1", report=DataReport())
    assert "\xe9t\xe9" in data.features.tolist()


def test_byte_order_mark_is_dropped(tmp_path):
    write(tmp_path / "a" / "x.txt", b"\xef\xbb\xbfhello")
    assert load_text_directory(tmp_path).features.tolist() == ["hello"]


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: text folder not found.*DIR/CLASS/FILE\.txt"):
        load_text_directory(tmp_path / "nowhere")


def test_folder_without_class_folders_shows_the_layout(tmp_path):
    write(tmp_path / "loose.txt", "text")
    write(tmp_path / ".hidden" / "x.txt", "text")
    with pytest.raises(DataError, match=r"no class sub-folders.*DIR/CLASS/FILE\.txt"):
        load_text_directory(tmp_path)


def test_class_folder_without_text_files(reviews):
    write(reviews / "mixed" / "image.png", b"\x89PNG")
    with pytest.raises(DataError, match=r"mixed: class folder 'mixed' holds no files ending in \.txt"):
        load_text_directory(reviews)


def test_class_whose_files_are_all_empty(reviews):
    write(reviews / "mixed" / "e.txt", "")
    with pytest.raises(DataError, match=r"none of the 1 text files of class 'mixed' is usable"):
        load_text_directory(reviews, report=DataReport())


def test_files_outside_class_folders_are_counted(reviews):
    write(reviews / "README.txt", "about")
    report = DataReport()
    load_text_directory(reviews, report=report)
    assert report.count("files ignored: outside a class folder") == 1


def test_bad_arguments(reviews):
    with pytest.raises(DataError, match="unknown encoding 'no-such-codec'"):
        load_text_directory(reviews, encoding="no-such-codec")
    with pytest.raises(DataError, match="on_bad_data must be 'error' or 'skip', got 'drop'"):
        load_text_directory(reviews, on_bad_data="drop")
