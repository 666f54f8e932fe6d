"""`tfdl doctor PATH`: pick the checks for the kind of artifact and gate CI on the result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tfdl.doctor.findings import DoctorReport


def diagnose(path: Path | str, *, convert: bool = True) -> DoctorReport:
    """Run every check that fits the artifact at `path`.

    Args:
        path: a `.keras` file, a SavedModel folder or a `.tflite` file.
        convert: for `.keras` and SavedModels, also try a builtins-only
            TFLite conversion (a few seconds per model).

    Returns:
        The report; `ok` when nothing was found.

    Raises:
        FileNotFoundError: nothing exists at `path`.
        ValueError: `path` is none of the three kinds.
    """
    from tfdl.doctor.keras_file import diagnose_keras
    from tfdl.doctor.saved_model import diagnose_saved_model
    from tfdl.doctor.tflite_file import diagnose_tflite

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"nothing at {path}: pass a .keras file, a SavedModel folder or a .tflite file")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ValueError(f"{path} is a folder without saved_model.pb: pass a SavedModel folder "
                             "(for a served model, its version folder, e.g. serving/NAME/1)")
        return diagnose_saved_model(path, convert=convert)
    if path.suffix == ".keras":
        return diagnose_keras(path, convert=convert)
    if path.suffix == ".tflite":
        return diagnose_tflite(path)
    raise ValueError(f"{path}: doctor checks .keras files, SavedModel folders and .tflite files, "
                     f"not {path.suffix or 'files without a suffix'}")


def main_doctor(args: argparse.Namespace) -> int:
    """`tfdl doctor PATH [--json]`: print the report; exit 1 on a problem (not a note), 2 on a path it cannot check.

    Args:
        args: parsed arguments with `path` (str) and `json` (bool).

    Returns:
        0 when clean (notes only), 1 when a problem was found, 2 when `path` cannot be checked.
    """
    try:
        report = diagnose(args.path)
    except (FileNotFoundError, ValueError) as error:
        print(f"tfdl doctor: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
    return 0 if report.ok else 1
