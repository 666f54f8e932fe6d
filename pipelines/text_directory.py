"""A folder of text files, one sub-folder per class, loaded as an `ArrayData` of strings.

The layout is the one `keras.utils.text_dataset_from_directory` reads
(`DIR/CLASS/FILE.txt`), but the texts are read here, in Python, so a file
that does not decode or is empty is named in a `DataError` or counted in the
`DataReport` before training starts, instead of failing (or silently
becoming an empty example) inside a tf.data iterator.
"""

from __future__ import annotations

import codecs
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from tfdl.pipelines.array_data import ArrayData
from tfdl.pipelines.data_report import DataReport
from tfdl.pipelines.errors import DataError, where

_LAYOUT = "DIR/CLASS/FILE.txt (e.g. reviews/neg/001.txt, reviews/pos/002.txt)"


def load_text_directory(
    directory: str | Path,
    *,
    extensions: Sequence[str] = (".txt",),
    encoding: str = "utf-8",
    input_name: str = "text",
    on_bad_data: Literal["error", "skip"] = "error",
    report: DataReport | None = None,
) -> ArrayData:
    """Read every text file under `directory`, labelled by its class sub-folder.

    Class names are the sorted names of the sub-folders of `directory`
    (hidden ones, starting with ".", are ignored); label `i` is
    `class_names[i]`. Within a class, files are taken in sorted order of
    their path, nested folders included, so the result is the same on every
    machine. A file counts as text when its extension (case-insensitive) is
    in `extensions`; other files are ignored and counted in the report.

    Empty files (nothing but whitespace) are always skipped and counted in
    the report: they would be examples with no tokens. Files that cannot be
    read or decoded raise a DataError, or, with `on_bad_data="skip"`, are
    skipped and counted. Without a `report`, anything skipped or ignored is
    reported as one `UserWarning` instead.

    Args:
        directory: the folder that holds one sub-folder per class.
        extensions: file name endings that mark a text file.
        encoding: the encoding of every file; a leading byte-order mark is
            dropped.
        input_name: the model input's name (the served signature's key).
        on_bad_data: "error" to stop at the first unreadable file, "skip" to
            leave it out and count it in `report`.
        report: where skipped and ignored files are counted.

    Returns:
        ArrayData whose features are the texts (numpy object array of str)
        and labels the int32 class indices.

    Raises:
        DataError: the folder is missing or has no class sub-folders, a
            class holds no text files (or none usable), the encoding or
            `on_bad_data` is unknown, or (with "error") a file cannot be
            read or decoded.
    """
    root = Path(directory)
    _check_arguments(root, encoding, on_bad_data)
    own_report = report is None
    report = DataReport() if report is None else report
    suffixes = tuple(e.lower() for e in extensions)

    class_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if not class_dirs:
        raise DataError(f"{root}: no class sub-folders; put one folder per class in it: {_LAYOUT}")
    loose = sorted(str(p) for p in root.iterdir() if p.is_file())
    report.add("files ignored: outside a class folder", len(loose), loose)

    texts: list[str] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        class_texts = _read_class(class_dir, suffixes, encoding, on_bad_data, report)
        texts.extend(class_texts)
        labels.extend([label] * len(class_texts))

    if own_report and report:
        warnings.warn(f"{root}: " + "; ".join(report.lines()), UserWarning, stacklevel=2)
    return ArrayData(
        features=np.array(texts, dtype=object),
        labels=np.asarray(labels, dtype=np.int32),
        class_names=tuple(p.name for p in class_dirs),
        input_name=input_name,
    )


def _check_arguments(root: Path, encoding: str, on_bad_data: str) -> None:
    if not root.is_dir():
        raise DataError(f"{root}: text folder not found; give a folder laid out as {_LAYOUT}")
    if on_bad_data not in ("error", "skip"):
        raise DataError(f"on_bad_data must be 'error' or 'skip', got {on_bad_data!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; use a Python codec name such as 'utf-8' or 'latin-1'") from None


def _read_class(
    class_dir: Path, suffixes: tuple[str, ...], encoding: str, on_bad_data: str, report: DataReport
) -> list[str]:
    files = sorted((p for p in class_dir.rglob("*") if p.is_file()), key=lambda p: p.relative_to(class_dir).as_posix())
    text_files = [p for p in files if p.suffix.lower() in suffixes]
    others = [str(p) for p in files if p.suffix.lower() not in suffixes]
    report.add(f"files ignored: extension not one of {', '.join(suffixes)}", len(others), others)
    if not text_files:
        raise DataError(
            f"{class_dir}: class folder {class_dir.name!r} holds no files ending in "
            f"{', '.join(suffixes)}; add its texts there ({_LAYOUT}), remove the folder, "
            "or set extensions"
        )

    texts, empty, unreadable = [], [], []
    for path in text_files:
        try:
            text = _read_text(path, encoding)
        except DataError:
            if on_bad_data == "error":
                raise
            unreadable.append(str(path))
            continue
        if text.strip():
            texts.append(text)
        else:
            empty.append(str(path))
    report.add("text files skipped: empty", len(empty), empty)
    report.add(f"text files skipped: not readable as {encoding}", len(unreadable), unreadable)
    if not texts:
        raise DataError(
            f"{class_dir}: none of the {len(text_files)} text files of class {class_dir.name!r} "
            "is usable (all empty or unreadable); add texts to it or remove the folder"
        )
    return texts


def _read_text(path: Path, encoding: str) -> str:
    """The decoded text of one file; DataError naming the file (and byte) if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{where(file=str(path))}: cannot be read ({error.strerror}); fix its permissions, or set on_bad_data: skip") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{where(file=str(path))}: byte offset {error.start} is not valid {encoding} "
            f"({error.reason}); re-encode the file as {encoding}, pass the file's real "
            "encoding, or set on_bad_data: skip"
        ) from None
    # Editors on Windows write a byte-order mark; kept, it would glue itself
    # to the first word and make a token the vocabulary never sees again.
    return text.removeprefix("\ufeff")
