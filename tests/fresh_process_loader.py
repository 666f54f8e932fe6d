"""The new process of the fresh-process round trips: loads what the test saved and computes the same things.

    python tests/fresh_process_loader.py JOBS.json OUT.npz

Run by `tests/test_fresh_process_round_trips.py`, never collected by pytest.
It imports only tfdl's public packages (which register their objects), the
way a user's serving or training script would; nothing it loads comes with
custom_objects. Each job of JOBS.json names a file the test wrote and what
to compute from it; the results go to OUT.npz keyed `JOB/OUTPUT`. A job that
fails records its error as text under `JOB/error`, so one broken component
names itself instead of hiding the others.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfdl.layers  # noqa: E402,F401  (registers the layers)
import tfdl.losses  # noqa: E402,F401
import tfdl.models  # noqa: E402,F401
import tfdl.schedules  # noqa: E402,F401


def _feed(model, arrays: dict):
    return arrays if len(arrays) > 1 or isinstance(model.input, dict) else next(iter(arrays.values()))


def _numpy(outputs) -> dict[str, np.ndarray]:
    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": np.asarray(v) for i, v in enumerate(outputs)}
    return {"output": np.asarray(outputs)}


def run_model(job: dict, arrays: dict) -> dict:
    """A `.keras` file: the outputs of the model (or of its served form, rebuilt around the loaded weights)."""
    model = keras.saving.load_model(job["path"], safe_mode=True)
    if job.get("served_form"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from registry_models import served_forms

        (model,) = served_forms(job["served_form"], model, primary_only=True).values()
    return _numpy(model(_feed(model, arrays), training=False))


def run_training(job: dict, arrays: dict) -> dict:
    """A compiled `.keras` file saved mid-training: the losses of the next steps on the same batch."""
    model = keras.saving.load_model(job["path"], safe_mode=True)
    results = {"iterations": np.asarray(int(model.optimizer.iterations))}
    for step in range(job["steps"]):
        model.reset_metrics()
        logs = model.train_on_batch(*[arrays[k] for k in job["batch"]], return_dict=True)
        for key, value in logs.items():
            results[f"step{step}_{key}"] = np.asarray(value)
    return results


def run_object(job: dict, arrays: dict) -> dict:
    """A serialized loss or schedule (as a `.keras` file stores it): its values on the saved arguments."""
    with open(job["path"]) as handle:
        config = json.load(handle)
    obj = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if job["kind"] == "schedule":
        return {"output": np.asarray([float(obj(step)) for step in arrays["steps"]])}
    return _numpy(obj(*[_argument(described, arrays) for described in job["arguments"]]))


def _square_critic(x):
    """The critic the test gives `gradient_penalty`, built again here (functions do not travel in files)."""
    return keras.ops.sum(x * x, axis=-1)


def _argument(described: list, arrays: dict):
    kind, *value = described
    if kind == "array":
        return arrays[value[0]]
    return _square_critic if kind == "critic" else value[0]


RUNNERS = {"model": run_model, "training": run_training, "loss": run_object, "schedule": run_object}


def main(jobs_path: str, out_path: str) -> None:
    with open(jobs_path) as handle:
        jobs = json.load(handle)
    results = {}
    for name, job in jobs.items():
        keras.utils.set_random_seed(0)
        arrays = dict(np.load(job["arrays"])) if job.get("arrays") else {}
        try:
            for key, value in RUNNERS[job["kind"]](job, arrays).items():
                results[f"{name}/{key}"] = value
        except Exception:  # noqa: BLE001 - recorded per job and asserted on by the test
            results[f"{name}/error"] = np.asarray(traceback.format_exc(limit=3))
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(*sys.argv[1:3])
