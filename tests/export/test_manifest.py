"""`manifest.json`: versions, labels, preprocessing and every file's checksum, checked before serving.

(That each registry model's manifest describes its SavedModel's signatures is checked, with one export per
model, in `test_registry_exports.py`.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdl
from served_models import constant_model
from tfdl.export.manifest import MANIFEST_FILENAME, ManifestMismatch, read_manifest, verify_manifest
from tfdl.export.serving_model import export_serving_model
from tfdl.serving.model_store import ModelStore

VARIABLES = "variables/variables.data-00000-of-00001"


def test_manifest_lists_versions_labels_preprocessing_and_every_file(tmp_path):
    constants = {"normalization": {"class": "Normalization", "mean": [1.5, 2.0], "variance": [4.0, 9.0]}}
    directory = export_serving_model(constant_model(3.0), tmp_path / "m" / "1", class_names=["low", "high"],
                                     warmup={"x": np.zeros((2, 2), "float32")}, preprocessing=constants)
    manifest = json.loads((directory / MANIFEST_FILENAME).read_text())
    assert manifest["versions"] == {"tfdl": tfdl.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    assert manifest["labels"] == ["low", "high"] and manifest["preprocessing"] == constants
    assert manifest["signatures"]["serving_default"] == {
        "method_name": "tensorflow/serving/predict",
        "inputs": {"x": {"dtype": "float32", "shape": [-1, 2]}},
        "outputs": {"y": {"dtype": "float32", "shape": [-1, 1]}},
    }
    # Every file but the manifest and the warm-up records, each with its size and SHA-256.
    expected = {}
    for root, _, files in os.walk(directory):
        for file in files:
            path = os.path.join(root, file)
            relative = os.path.relpath(path, directory).replace(os.sep, "/")
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            expected[relative] = {"size": os.path.getsize(path), "sha256": digest}
    assert {"saved_model.pb", VARIABLES, "assets.extra/tf_serving_warmup_requests"} <= expected.keys()
    del expected[MANIFEST_FILENAME], expected["assets.extra/tf_serving_warmup_requests"]
    assert manifest["files"] == expected
    assert verify_manifest(directory) == manifest


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Versions 1 and 2 of a model answering its version number."""
    root = tmp_path_factory.mktemp("exported")
    for version in (1, 2):
        export_serving_model(constant_model(version), root / str(version))
    return root


def answer(servable) -> float:
    return float(servable.signature(None)({"x": np.ones((1, 2), "float32")})["y"][0, 0])


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_tampered_version_is_refused_naming_the_file_and_the_old_one_keeps_serving(tmp_path, exported, caplog):
    caplog.set_level(logging.INFO, logger="tfdl.serving")
    base = tmp_path / "m"
    shutil.copytree(exported / "1", base / "1")
    store = ModelStore()
    store.add_model("m", base)
    shutil.copytree(exported / "2", base / "2")
    flip_last_byte(base / "2" / VARIABLES)
    store.refresh()
    assert store.get("m").version == 1 and answer(store.get("m")) == 1.0
    failed, serving = store.status("m")["model_version_status"]
    assert (failed["version"], failed["state"], serving["version"], serving["state"]) == ("2", "END", "1", "AVAILABLE")
    assert f"{VARIABLES} does not match its checksum" in failed["status"]["error_message"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "version 2" in r.getMessage()]
    assert len(errors) == 1 and VARIABLES in errors[0].getMessage()


@pytest.mark.parametrize("change, message", [
    (lambda d: (d / VARIABLES).unlink(), f"{VARIABLES} is missing"),
    (lambda d: (d / "variables" / "extra.bin").write_bytes(b"x"), "variables/extra.bin is not in the manifest"),
    (lambda d: flip_last_byte(d / "saved_model.pb"), "saved_model.pb does not match its checksum"),
    (lambda d: (d / MANIFEST_FILENAME).write_text("{not json"), "manifest.json is not valid JSON"),
    (lambda d: (d / MANIFEST_FILENAME).write_text("[]"), "no 'files' table"),
])
def test_verify_manifest_names_what_differs(tmp_path, exported, change, message):
    directory = shutil.copytree(exported / "1", tmp_path / "1")
    change(directory)
    with pytest.raises(ManifestMismatch, match=message.replace(".", r"\.")):
        verify_manifest(directory)


def test_warmup_records_added_after_export_do_not_fail_the_check(tmp_path, exported):
    # assets.extra/ is TF Serving's folder for side files written after export.
    from tfdl.export.warmup import write_warmup_requests

    directory = shutil.copytree(exported / "1", tmp_path / "m" / "1")
    write_warmup_requests(directory, "m", {"x": np.zeros((2, 2), "float32")})
    assert ModelStore().add_model("m", tmp_path / "m").version == 1


def test_metadata_carries_the_manifest_beside_the_signature_defs(tmp_path, exported):
    shutil.copytree(exported / "2", tmp_path / "m" / "2")
    store = ModelStore()
    store.add_model("m", tmp_path / "m")
    metadata = store.metadata("m")["metadata"]
    assert sorted(metadata) == ["manifest", "signature_def"]
    assert metadata["manifest"] == read_manifest(tmp_path / "m" / "2")
    assert "serving_default" in metadata["signature_def"]["signature_def"]


def test_a_saved_model_without_a_manifest_serves_as_before(tmp_path):
    constant_model(5.0).export(str(tmp_path / "m" / "1"), format="tf_saved_model", verbose=False)
    store = ModelStore()
    store.add_model("m", tmp_path / "m")
    assert sorted(store.metadata("m")["metadata"]) == ["signature_def"]
    assert read_manifest(tmp_path / "m" / "1") is None and verify_manifest(tmp_path / "m" / "1") is None
