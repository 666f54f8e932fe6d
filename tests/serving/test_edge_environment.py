"""The edge runner in a fresh virtual environment holding only the `edge` extra, no TensorFlow.

One venv is made in tmp_path with `ai-edge-litert`, numpy and Pillow (the
same versions as this environment, so pip's cache serves them) and tfdl
installed with `--no-deps` (its main requirements include TensorFlow). It
needs the package registry or a pip cache that holds those wheels.

tfdl is built from a copy of the repository's sources: building in the
checkout itself would write `build/` and `tfdl.egg-info` into a tree that
other work shares.
"""

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from tfdl.export import export_saved_model, to_tflite
from tfdl.export.litert import LiteRTModel
from tfdl.serving.edge import load_inputs

REPOSITORY = Path(__file__).resolve().parents[2]
EDGE_PACKAGES = [f"{name}=={version(name)}" for name in ("ai-edge-litert", "numpy", "pillow")]
# Installing into a new venv takes about 10 s with a warm pip cache; the limit is for a cold one.
TIMEOUT_S = 300


def run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    # Without PYTHONPATH, and outside the checkout, the venv can only find the installed tfdl.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def checked(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_sources(target: Path) -> Path:
    skip = shutil.ignore_patterns(
        ".git", ".venv", "venv", "tests", "benchmarks", "docker", "build", "dist", "runs",
        "*.egg-info", "__pycache__", "*.tflite",
    )
    shutil.copytree(REPOSITORY, target, ignore=skip)
    return target


def test_edge_extra_alone_runs_a_tflite_model_without_tensorflow(tmp_path):
    keras.utils.set_random_seed(0)
    pixels = keras.Input((8, 8, 3), name="pixels")
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(pixels))
    model = keras.Model(pixels, keras.layers.Dense(3, activation="softmax", name="probabilities")(features))
    model_path = to_tflite(export_saved_model(model, tmp_path / "saved"), tmp_path / "model.tflite")
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 8, 8, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    here = LiteRTModel(model_path)
    png_expected = here(load_inputs([str(tmp_path / "a.png")], here))

    venv = tmp_path / "edge-venv"
    checked(run([sys.executable, "-m", "venv", venv], tmp_path))
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    checked(run([*pip, *EDGE_PACKAGES], tmp_path))
    checked(run([*pip, "--no-deps", copy_sources(tmp_path / "src")], tmp_path))

    probe = run([python, "-c", "import tensorflow"], tmp_path)
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    where = checked(run([python, "-c", "import tfdl.serving.edge as e; print(e.__file__)"], tmp_path))
    assert Path(where.strip()).is_relative_to(venv)

    edge = [python, "-m", "tfdl.serving.edge", "predict", model_path, "--json", "--input"]
    out = checked(run([*edge, tmp_path / "x.npy"], tmp_path))
    got = np.asarray(json.loads(out)["outputs"]["probabilities"])
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)

    out = checked(run([*edge, tmp_path / "a.png"], tmp_path))
    np.testing.assert_allclose(json.loads(out)["outputs"]["probabilities"], png_expected["probabilities"], atol=1e-6)
