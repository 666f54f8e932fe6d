"""The contract between `tfdl run` and what runs it past one machine: docker/k8s/ and the GPU image.

Every manifest is parsed as Kubernetes reads it (YAML, several documents per
file). The Indexed Job's shell that builds TF_CONFIG is run for real with
bash, with a stand-in `tfdl` on PATH that records what it was started with,
and the TF_CONFIG it got is checked by the function the multi-worker strategy
reads it with. The command lines are loaded as run configs, so an override
tfdl would refuse fails here, not on a cluster.
"""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "docker" / "k8s"
TFJOB = K8S / "tfjob-multi-worker.yaml"
INDEXED_JOB = K8S / "multi-worker-indexed-job.yaml"
DOCKERFILE = ROOT / "docker" / "train-gpu.Dockerfile"
RUNS_MOUNT = "/work/runs"  # the image's WORKDIR is /work; runs go to runs/NAME


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _one(path: Path, kind: str) -> dict:
    found = [doc for doc in _documents(path) if doc["kind"] == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def _pod_spec(path: Path) -> dict:
    if path == TFJOB:
        return _one(path, "TFJob")["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    return _one(path, "Job")["spec"]["template"]["spec"]


def _indexed_job_script() -> tuple[str, dict[str, str]]:
    """The Indexed Job container's shell script and the environment the manifest gives it."""
    (container,) = _pod_spec(INDEXED_JOB)["containers"]
    assert container["command"] == ["/bin/bash", "-c"]
    (script,) = container["args"]
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    return script, env


def _run_indexed_job_script(index: int | None, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the real script under bash; `tfdl` on PATH is a stand-in that writes what it got to `out`."""
    script, env = _indexed_job_script()
    bin_dir, out = tmp_path / "bin", tmp_path / "out"
    bin_dir.mkdir()
    out.mkdir()
    fake = bin_dir / "tfdl"
    fake.write_text('#!/bin/sh\nprintf %s "$TF_CONFIG" > "$OUT/tf_config"\nprintf "%s\\0" "$@" > "$OUT/argv"\n')
    fake.chmod(0o755)
    env = {**env, "PATH": f"{bin_dir}:/usr/bin:/bin", "OUT": str(out)}
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=10)
    return result, out


def _set_overrides(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def _instruction(name: str) -> list[str]:
    return [rest for instruction, rest in _dockerfile_instructions() if instruction == name]


# --- every manifest ---------------------------------------------------------


def test_both_manifests_are_there():
    assert {TFJOB, INDEXED_JOB} <= set(K8S.glob("*.yaml"))


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_parses_into_named_kubernetes_objects(path):
    documents = _documents(path)
    assert documents
    for doc in documents:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


@pytest.mark.parametrize("path", [TFJOB, INDEXED_JOB], ids=lambda p: p.name)
def test_runs_go_to_a_claim_every_worker_shares(path):
    pod = _pod_spec(path)
    (container,) = [c for c in pod["containers"] if any(m["mountPath"] == RUNS_MOUNT for m in c["volumeMounts"])]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == RUNS_MOUNT]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = _one(path, "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # The image's user (uid 10001) must be able to write the claim.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10001


def test_both_manifests_declare_the_same_claim():
    assert _one(TFJOB, "PersistentVolumeClaim") == _one(INDEXED_JOB, "PersistentVolumeClaim")


@pytest.mark.parametrize("path", [TFJOB, INDEXED_JOB], ids=lambda p: p.name)
def test_each_worker_gets_one_gpu(path):
    (container,) = _pod_spec(path)["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


# --- the TFJob --------------------------------------------------------------


def test_tfjob_runs_two_workers_that_restart_on_failure():
    job = _one(TFJOB, "TFJob")
    assert job["apiVersion"] == "kubeflow.org/v1"
    replicas = job["spec"]["tfReplicaSpecs"]
    # Workers only: worker 0 is then the chief, the one tfdl lets write.
    assert set(replicas) == {"Worker"}
    assert replicas["Worker"]["replicas"] == 2
    assert replicas["Worker"]["restartPolicy"] == "OnFailure"


def test_tfjob_container_is_the_one_the_operator_configures():
    (container,) = _pod_spec(TFJOB)["containers"]
    # The operator looks for a container named `tensorflow` and the port named `tfjob-port`.
    assert container["name"] == "tensorflow"
    assert {"name": "tfjob-port", "containerPort": 2222} in container["ports"]


def test_tfjob_command_trains_multi_worker():
    (container,) = _pod_spec(TFJOB)["containers"]
    argv = container.get("command", []) + container.get("args", [])
    assert argv[:2] == ["tfdl", "run"]
    assert "training.strategy=multi_worker" in _set_overrides(argv)


def test_tfdl_accepts_the_tf_config_the_tfjob_operator_sets(monkeypatch):
    from tfdl.training.strategy import cluster_from_environment

    # The operator's format (training-operator, pkg/controller.v1/tensorflow/tensorflow.go).
    workers = [f"tfdl-digits-worker-{i}.default.svc:2222" for i in range(2)]
    raw = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 1}, "environment": "cloud"}
    monkeypatch.setenv("TF_CONFIG", json.dumps(raw))
    assert cluster_from_environment() == raw


# --- the Indexed Job --------------------------------------------------------


def test_indexed_job_runs_two_workers_with_restarts():
    spec = _one(INDEXED_JOB, "Job")["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] == spec["completions"] == 2
    assert spec.get("backoffLimitPerIndex", spec.get("backoffLimit", 0)) >= 1
    if "backoffLimitPerIndex" in spec:  # Kubernetes accepts it only with restartPolicy Never
        assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_indexed_job_names_agree_with_its_service_and_script():
    job, service = _one(INDEXED_JOB, "Job"), _one(INDEXED_JOB, "Service")
    pod_template = job["spec"]["template"]
    _, env = _indexed_job_script()
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS record per pod
    assert pod_template["spec"]["subdomain"] == service["metadata"]["name"] == env["SERVICE_NAME"]
    assert service["spec"]["selector"].items() <= pod_template["metadata"]["labels"].items()
    assert env["JOB_NAME"] == job["metadata"]["name"]  # pods' hostnames are JOB_NAME-INDEX
    assert int(env["NUM_WORKERS"]) == job["spec"]["completions"]
    assert [int(env["WORKER_PORT"])] == [p["port"] for p in service["spec"]["ports"]]


@pytest.mark.parametrize("index", [0, 1])
def test_indexed_job_script_gives_each_worker_its_tf_config(index, tmp_path, monkeypatch):
    result, out = _run_indexed_job_script(index, tmp_path)
    assert result.returncode == 0, result.stderr
    raw = (out / "tf_config").read_text()
    assert json.loads(raw) == {
        "cluster": {"worker": ["tfdl-train-0.tfdl-train:12345", "tfdl-train-1.tfdl-train:12345"]},
        "task": {"type": "worker", "index": index},
    }
    assert f"TF_CONFIG={raw}" in result.stdout  # the pod's log shows it

    from tfdl.training.strategy import cluster_from_environment

    monkeypatch.setenv("TF_CONFIG", raw)
    config = cluster_from_environment()
    assert config["task"]["index"] == index and len(config["cluster"]["worker"]) == 2

    argv = (out / "argv").read_text().split("\0")[:-1]
    assert argv[0] == "run" and "training.strategy=multi_worker" in _set_overrides(argv)


def test_indexed_job_script_fails_without_its_index(tmp_path):
    result, out = _run_indexed_job_script(None, tmp_path)
    assert result.returncode != 0
    assert "JOB_COMPLETION_INDEX" in result.stderr
    assert not (out / "tf_config").exists()  # tfdl never started with a broken TF_CONFIG


# --- the command lines are valid run configs -------------------------------


def _command_lines() -> dict[str, list[str]]:
    """Each shipped `tfdl run` command line, without the leading `tfdl`."""
    (tfjob,) = _pod_spec(TFJOB)["containers"]
    script, _ = _indexed_job_script()
    (exec_line,) = [line for line in script.splitlines() if line.strip().startswith("exec tfdl ")]
    return {
        "tfjob": (tfjob.get("command", []) + tfjob.get("args", []))[1:],
        "indexed-job": shlex.split(exec_line)[2:],
        "dockerfile-cmd": json.loads(_instruction("CMD")[-1]),
    }


@pytest.mark.parametrize("name", ["tfjob", "indexed-job", "dockerfile-cmd"])
def test_each_command_line_loads_as_a_run_config(name):
    from tfdl.config import load_config

    argv = _command_lines()[name]
    assert argv[0] == "run"
    config_path = ROOT / argv[1]  # the image copies configs/ to /work/configs
    assert config_path.is_file()
    config = load_config(str(config_path), _set_overrides(argv))
    if name != "dockerfile-cmd":
        assert config.training.strategy == "multi_worker"


# --- the GPU training image -------------------------------------------------


def test_training_image_runs_tfdl_as_a_non_root_user():
    assert json.loads(_instruction("ENTRYPOINT")[-1]) == ["tfdl"]
    assert _instruction("WORKDIR")[-1] == "/work"
    assert json.loads(_instruction("VOLUME")[-1]) == [RUNS_MOUNT]
    assert _instruction("USER")[-1] not in ("root", "0")
    (base,) = _instruction("FROM")
    assert base.startswith(("tensorflow/tensorflow:", "nvidia/cuda:")) and "gpu" in base + "".join(_instruction("ARG"))


def test_training_image_copies_and_installs_every_package_folder():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    package_dirs = {line.split("=")[1].strip() for line in setup["options"]["package_dir"].strip().splitlines()}
    copied = {source.rstrip("/") for rest in _instruction("COPY") for source in rest.split()[:-1]}
    assert package_dirs | {"setup.cfg", "pyproject.toml"} <= copied
    # The `gpu` extra exists, and the install uses it.
    assert "gpu" in setup["options.extras_require"]
    (extras,) = [rest for rest in _instruction("ARG") if rest.startswith("TFDL_EXTRAS=")]
    assert extras == "TFDL_EXTRAS=gpu"
    assert any('install "/src[${TFDL_EXTRAS}]"' in rest for rest in _instruction("RUN"))
