"""The TensorFlow Serving layout: `<base>/<model_name>/<version>/` SavedModels.

Version folders are positive integers; TF Serving (and tfdl's server) serve
the highest by default. These helpers import nothing of TensorFlow, so the
server can use them too.
"""

from __future__ import annotations

from pathlib import Path


def list_versions(model_dir: Path | str) -> list[int]:
    """Version numbers of the SavedModels under `model_dir`, ascending.

    Folders that are not positive integers, or hold no `saved_model.pb`
    (a half-written export), are skipped.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    versions = []
    for child in model_dir.iterdir():
        if child.is_dir() and child.name.isdigit() and int(child.name) > 0:
            if (child / "saved_model.pb").is_file():
                versions.append(int(child.name))
    return sorted(versions)


def next_version(model_dir: Path | str) -> int:
    """One above the highest version folder (any, complete or not) under `model_dir`."""
    model_dir = Path(model_dir)
    taken = [int(c.name) for c in model_dir.iterdir() if c.name.isdigit()] if model_dir.is_dir() else []
    return max(taken, default=0) + 1


def version_dir(model_dir: Path | str, version: int) -> Path:
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    return Path(model_dir) / str(version)
