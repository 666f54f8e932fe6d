"""The trainer under real strategies, each run in its own process (see train_worker.py).

MirroredStrategy runs over two logical CPU devices, MultiWorkerMirroredStrategy
over two worker processes on loopback, and a run SIGKILLed mid-epoch is
started again with the same command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port

WORKER = Path(__file__).with_name("train_worker.py")
TWO_CPUS = ["--strategy", "mirrored", "--devices", "/cpu:0", "/cpu:1", "--logical-cpus", "2"]


def _train(run_dir: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    out = run_dir.with_suffix(".npz")
    done = subprocess.run(
        [sys.executable, str(WORKER), str(run_dir), str(out), *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def _result(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


def _weights(run_dir: Path) -> list[np.ndarray]:
    with np.load(run_dir.with_suffix(".npz")) as saved:
        return [saved[key] for key in sorted(saved.files, key=lambda k: int(k.split("_")[1]))]


def test_mirrored_over_two_devices_matches_one_device(tmp_path):
    _train(tmp_path / "one", "--dropout", "0")
    _train(tmp_path / "two", "--dropout", "0", *TWO_CPUS)
    for single, mirrored in zip(_weights(tmp_path / "one"), _weights(tmp_path / "two"), strict=True):
        np.testing.assert_allclose(mirrored, single, atol=1e-5)


def test_a_model_with_its_own_loss_trains_the_same_under_mirrored(tmp_path):
    # The VAE computes its loss itself; unless it divides by the replicas,
    # two replicas' summed gradients double the SGD step and the runs part.
    vae = ["--model", "vae", "--optimizer", "sgd", "--learning-rate", "0.2"]
    single = _result(_train(tmp_path / "one", *vae))["history"]
    mirrored = _result(_train(tmp_path / "two", *vae, *TWO_CPUS))["history"]
    assert mirrored["val_loss"][-1] == pytest.approx(single["val_loss"][-1], rel=0.005)
    assert mirrored["loss"][0] == pytest.approx(single["loss"][0], rel=0.01)


def test_two_workers_on_loopback_end_with_identical_weights(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path / "run"), str(tmp_path / f"w{index}.npz"),
             "--strategy", "multi_worker", "--dropout", "0"],
            env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index in (0, 1)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    w0, w1 = (np.load(tmp_path / f"w{index}.npz") for index in (0, 1))
    assert all(np.array_equal(w0[key], w1[key]) for key in w0.files)
    # Only the chief writes the run's files, and the backup is gone at the end.
    assert (tmp_path / "run" / "checkpoints" / "best.weights.h5").is_file()
    assert not (tmp_path / "run" / "backup").exists()
    # Two workers of one device each train like two devices in one process.
    _train(tmp_path / "two", "--dropout", "0", *TWO_CPUS)
    for key, mirrored in zip(sorted(w0.files), _weights(tmp_path / "two")):
        np.testing.assert_allclose(w0[key], mirrored, atol=1e-5)


@pytest.mark.parametrize("strategy", [[], TWO_CPUS], ids=["default", "mirrored"])
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, strategy):
    # Dropout, Adam and a reshuffled dataset: everything a resume can get wrong.
    whole_history = _result(_train(tmp_path / "whole", *strategy))["history"]
    killed = _train(tmp_path / "again", *strategy, "--kill-at-step", "13", check=False)
    assert killed.returncode == -9  # SIGKILL: no handler ran
    assert (tmp_path / "again" / "backup").is_dir()
    resumed = _train(tmp_path / "again", *strategy)  # the same command
    assert _result(resumed)["resumed_from_step"] == 10  # backups every 5 steps
    for whole, again in zip(_weights(tmp_path / "whole"), _weights(tmp_path / "again"), strict=True):
        assert np.array_equal(whole, again)
    assert _result(resumed)["history"] == whole_history
    assert not (tmp_path / "again" / "backup").exists()


def test_tfdl_run_on_two_workers_trains_once_and_the_chief_exports(tmp_path):
    # The command the Kubernetes manifests run, one process per worker.
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    command = [sys.executable, "-m", "tfdl", "run", "digits_cnn", "--set", "training.strategy=multi_worker",
               "--set", "training.epochs=2", "--set", "export.tflite=[float32]"]
    workers = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
        )
        for i in (0, 1)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "the chief worker evaluates, exports" in outputs[1]
    metrics = json.loads((tmp_path / "runs" / "digits_cnn" / "metrics.json").read_text())
    assert metrics["training"]["strategy"] == "MultiWorkerMirroredStrategy (2 replicas)"
    assert metrics["parity"]["passed"] and metrics["test"]["accuracy"] > 0.5
