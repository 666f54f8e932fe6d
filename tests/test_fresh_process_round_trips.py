"""Round trips that hold in a fresh process: every layer, loss, schedule and registry model, and training resumed.

A `.keras` file that loads in the process that saved it can still fail in a
new one (an object registered only by a module the new process never
imports, a `get_config` missing an argument that the live object still
had). So everything here is saved in this process and loaded in ONE new
Python process (`tests/fresh_process_loader.py`, imports of tfdl's public
packages only, `safe_mode=True`), which computes the same outputs:

- each layer of `tfdl.layers`, inside a small functional model;
- each loss of `tfdl.losses`, and each schedule of `tfdl.schedules`, as a
  `.keras` file stores them (their serialized config);
- each registry model (its served form rebuilt around the loaded weights);
- the models with their own `train_step` (VAE, DCGAN, conditional GAN,
  WGAN), saved mid-training: the next two steps' losses in the new process
  equal the ones this process computes after the same save point. The
  second step depends on the optimizer's moments, so it holds only when the
  optimizer state travels with the file.

Layers are called once before they are saved and models train before
they are saved, so seed-generator states have moved on: the file must hold
where they are (Keras itself does not save them; `Sampling` and the GANs
save theirs).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import tfdl.layers as tfdl_layers
import tfdl.losses as tfdl_losses
import tfdl.schedules as tfdl_schedules
from harness import build_model as layer_model
from registry_models import TINY, example_batch, served_forms
from tfdl.models import available_models, build_model

LOADER = Path(__file__).parent / "fresh_process_loader.py"
ATOL = 1e-6


def floats(rng, *shape):
    return rng.random(shape).astype("float32")


def softmax(rng, *shape):
    logits = rng.normal(size=shape)
    return (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")


def backbone_layer(tmp_path: Path):
    """A SavedModelBackbone around a small exported Keras model."""
    inputs = keras.Input((5,), name="x")
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).export(str(tmp_path / "backbone"), verbose=False)
    return tfdl_layers.SavedModelBackbone(str(tmp_path / "backbone"))


def two(layer, tensors):
    first, second = tensors.values()
    return layer(first, second)


# name -> (layer factory, inputs, how the functional model calls it)
def layer_cases(rng) -> dict:
    missing = floats(rng, 4, 3)
    missing[[0, 2], [1, 0]] = np.nan
    return {
        "BahdanauAttention": (lambda _: tfdl_layers.BahdanauAttention(4),
                              {"query": floats(rng, 2, 3), "values": floats(rng, 2, 5, 3)}, two),
        "LearnedPositionEmbedding": (lambda _: tfdl_layers.LearnedPositionEmbedding(8), floats(rng, 2, 6, 4), None),
        "LuongAttention": (lambda _: tfdl_layers.LuongAttention("general"),
                           {"query": floats(rng, 2, 3, 4), "values": floats(rng, 2, 5, 4)}, two),
        "MissingValueImputation": (lambda _: tfdl_layers.MissingValueImputation([1.0, 2.0, 3.0], indicator_columns=[0]),
                                   missing, None),
        "ResidualBlock": (lambda _: tfdl_layers.ResidualBlock(4, strides=2), floats(rng, 2, 6, 6, 3), None),
        # Random path: the outputs match only if the seed generator's state travels with the file.
        "Sampling": (lambda _: tfdl_layers.Sampling(seed=1), {"mean": floats(rng, 2, 4), "log_var": floats(rng, 2, 4)},
                     lambda layer, t: layer([t["mean"], t["log_var"]])),
        "SavedModelBackbone": (backbone_layer, floats(rng, 2, 5), None),
        "ScaledDotProductAttention": (lambda _: tfdl_layers.ScaledDotProductAttention(),
                                      {"query": floats(rng, 2, 3, 4), "value": floats(rng, 2, 5, 4)}, two),
        "SinusoidalPositionEncoding": (lambda _: tfdl_layers.SinusoidalPositionEncoding(8), floats(rng, 2, 6, 4), None),
        "TokenAndPositionEmbedding": (lambda _: tfdl_layers.TokenAndPositionEmbedding(20, 4, 8),
                                      rng.integers(1, 20, (2, 6)).astype("int32"), None),
        "TransformerDecoderBlock": (lambda _: tfdl_layers.TransformerDecoderBlock(num_heads=2, intermediate_dim=8),
                                    floats(rng, 2, 6, 4), None),
        "TransformerEncoderBlock": (lambda _: tfdl_layers.TransformerEncoderBlock(num_heads=2, intermediate_dim=8),
                                    floats(rng, 2, 5, 4), None),
    }


def square_critic(x):
    return keras.ops.sum(x * x, axis=-1)


# name -> (the object, its arguments); `critic` stands for `square_critic`, built again in the new process.
def loss_cases(rng) -> dict:
    labels = rng.integers(0, 3, (2, 3)).astype("int32")
    labels[1, 2] = 0
    return {
        "AnchorFocalLoss": (tfdl_losses.AnchorFocalLoss(), [np.array([[0, -1, -2, 1]], "int32"),
                                                            rng.normal(size=(1, 4, 2)).astype("float32")]),
        "AnchorHuberLoss": (tfdl_losses.AnchorHuberLoss(delta=0.5), [
            np.concatenate([rng.normal(size=(1, 3, 4)), [[[1.0], [0.0], [1.0]]]], axis=-1).astype("float32"),
            rng.normal(size=(1, 3, 4)).astype("float32")]),
        "BinaryFocalLoss": (tfdl_losses.BinaryFocalLoss(alpha=0.3, gamma=1.5),
                            [rng.integers(0, 2, (4, 1)).astype("float32"), floats(rng, 4, 1)]),
        "CategoricalFocalLoss": (tfdl_losses.CategoricalFocalLoss(alpha=[0.2, 0.3, 0.5]),
                                 [np.eye(3, dtype="float32")[[0, 2, 1]], softmax(rng, 3, 3)]),
        "CrossentropyDiceLoss": (tfdl_losses.CrossentropyDiceLoss(dice_weight=0.5),
                                 [rng.integers(0, 2, (2, 4, 4)).astype("int32"), softmax(rng, 2, 4, 4, 2)]),
        "DiceLoss": (tfdl_losses.DiceLoss(smooth=0.5),
                     [rng.integers(0, 2, (2, 4, 4, 1)).astype("float32"), floats(rng, 2, 4, 4, 1)]),
        "MaskedSparseCategoricalCrossentropy": (tfdl_losses.MaskedSparseCategoricalCrossentropy(label_smoothing=0.1),
                                                [labels, softmax(rng, 2, 3, 4)]),
        "SparseCategoricalFocalLoss": (tfdl_losses.SparseCategoricalFocalLoss(gamma=1.0),
                                       [np.array([1, 0, 2], "int32"), softmax(rng, 3, 3)]),
        "critic_loss": (tfdl_losses.critic_loss, [floats(rng, 4, 1), floats(rng, 4, 1)]),
        "generator_loss": (tfdl_losses.generator_loss, [floats(rng, 4, 1)]),
        "gaussian_kl_divergence": (tfdl_losses.gaussian_kl_divergence, [floats(rng, 3, 2), floats(rng, 3, 2)]),
        "gradient_penalty": (tfdl_losses.gradient_penalty, ["critic", floats(rng, 4, 3), floats(rng, 4, 3), 7]),
        "vae_loss": (tfdl_losses.vae_loss, [floats(rng, 3, 4), floats(rng, 3, 4), floats(rng, 3, 2), floats(rng, 3, 2)]),
    }


def schedule_cases() -> dict:
    return {
        "CosineDecayWithWarmup": tfdl_schedules.CosineDecayWithWarmup(1e-3, warmup_steps=10, decay_steps=50, alpha=0.1),
        "CyclicLearningRate": tfdl_schedules.CyclicLearningRate(0.001, 0.006, step_size=10, mode="exp_range",
                                                                gamma=0.99),
        "ExponentialDecay": tfdl_schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9, staircase=True),
        "ScaledSchedule": tfdl_schedules.ScaledSchedule(tfdl_schedules.StepDecay(0.1, drop=0.5, every_steps=7),
                                                        3.0),
        "StepDecay": tfdl_schedules.StepDecay(0.1, drop=0.25, every_steps=9),
        "TransformerSchedule": tfdl_schedules.TransformerSchedule(d_model=16, warmup_steps=20, scale=2.0),
    }


STEPS = np.array([0, 1, 5, 9, 10, 21, 60], "int64")


def test_every_public_layer_loss_and_schedule_is_covered():
    rng = np.random.default_rng(0)
    assert sorted(layer_cases(rng)) == sorted(n for n in tfdl_layers.__all__)
    assert sorted(loss_cases(rng)) == sorted(n for n in tfdl_losses.__all__ if n != "replica_mean")
    public = [n for n in tfdl_schedules.__all__ if inspect.isclass(getattr(tfdl_schedules, n))]
    assert sorted(schedule_cases()) == sorted(public)
    assert sorted(TINY) == available_models()


# --- training resumed: the models with their own train_step ---

TRAINED = ("vae", "dcgan", "conditional_gan", "wgan")
STEPS_BEFORE_SAVE, STEPS_AFTER_SAVE = 2, 2


def training_batch(name: str, rng) -> list[np.ndarray]:
    if name == "vae":
        return [floats(rng, 16, 6)]
    images = rng.uniform(0, 16, (16, 64)).astype("float32")
    return [images, (np.arange(16) % 2).astype("int32")] if name == "conditional_gan" else [images]


def train_steps(model, batch, steps: int) -> dict[str, np.ndarray]:
    """Each step's logs on its own (metrics reset first, so no mean over earlier steps)."""
    logs = {}
    for step in range(steps):
        model.reset_metrics()
        for key, value in model.train_on_batch(*batch, return_dict=True).items():
            logs[f"step{step}_{key}"] = np.asarray(value)
    return logs


class Jobs:
    """What the new process loads, and what this process expects it to compute."""

    def __init__(self, root: Path):
        self.root, self.jobs, self.expected = root, {}, {}

    def add(self, name: str, kind: str, path: Path, arrays: dict, expected: dict, **extra):
        arrays_path = self.root / f"{name}.npz"
        np.savez(arrays_path, **arrays)
        self.jobs[name] = {"kind": kind, "path": str(path), "arrays": str(arrays_path), **extra}
        self.expected[name] = expected


def numpy_outputs(outputs) -> dict[str, np.ndarray]:
    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": np.asarray(v) for i, v in enumerate(outputs)}
    return {"output": np.asarray(outputs)}


def feed_of(model, arrays: dict):
    return arrays if len(arrays) > 1 or isinstance(model.input, dict) else next(iter(arrays.values()))


def add_layers(jobs: Jobs, rng) -> None:
    for name, (make, inputs, call) in layer_cases(rng).items():
        inputs = inputs if isinstance(inputs, dict) else {"x": inputs}
        model = layer_model(make(jobs.root), inputs, call)
        model(feed_of(model, inputs), training=False)  # moves seed states on: the file must hold where they are
        path = jobs.root / f"layer_{name}.keras"
        model.save(path)
        jobs.add(f"layer_{name}", "model", path, inputs, numpy_outputs(model(feed_of(model, inputs), training=False)))


def add_objects(jobs: Jobs, rng) -> None:
    for name, (loss, arguments) in loss_cases(rng).items():
        path = jobs.root / f"loss_{name}.json"
        path.write_text(json.dumps(keras.saving.serialize_keras_object(loss)))
        # Arrays travel in the .npz; the critic and an int seed are named in the job.
        arrays = {f"a{i}": a for i, a in enumerate(arguments) if isinstance(a, np.ndarray)}
        described = [["array", f"a{i}"] if isinstance(a, np.ndarray) else ["critic"] if a == "critic" else ["int", a]
                     for i, a in enumerate(arguments)]
        values = [square_critic if isinstance(a, str) else a for a in arguments]
        jobs.add(f"loss_{name}", "loss", path, arrays, numpy_outputs(loss(*values)), arguments=described)
    for name, schedule in schedule_cases().items():
        path = jobs.root / f"schedule_{name}.json"
        path.write_text(json.dumps(keras.saving.serialize_keras_object(schedule)))
        expected = {"output": np.asarray([float(schedule(step)) for step in STEPS])}
        jobs.add(f"schedule_{name}", "schedule", path, {"steps": STEPS}, expected)


def add_models(jobs: Jobs, rng) -> None:
    for name in available_models():
        keras.utils.set_random_seed(0)
        model = build_model(name, TINY[name])
        (form,) = served_forms(name, model, primary_only=True).values()  # builds a subclassed model
        path = jobs.root / f"model_{name}.keras"
        model.save(path)
        feed = example_batch(form, rng, batch=2)
        jobs.add(f"model_{name}", "model", path, feed, numpy_outputs(form(feed_of(form, feed), training=False)),
                 served_form=name)


def add_training(jobs: Jobs, rng) -> None:
    for name in TRAINED:
        keras.utils.set_random_seed(0)
        model = build_model(name, TINY[name])
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        batch = training_batch(name, rng)
        train_steps(model, batch, STEPS_BEFORE_SAVE)
        path = jobs.root / f"training_{name}.keras"
        model.save(path)
        # A WGAN counts one iteration per critic step (n_critic per train step).
        expected = {"iterations": np.asarray(int(model.optimizer.iterations)),
                    **train_steps(model, batch, STEPS_AFTER_SAVE)}
        keys = [f"b{i}" for i in range(len(batch))]
        jobs.add(f"training_{name}", "training", path, dict(zip(keys, batch)), expected, batch=keys,
                 steps=STEPS_AFTER_SAVE)


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    """Everything saved here, loaded and computed in one new process: (expected, got) per job."""
    root = tmp_path_factory.mktemp("fresh_process")
    rng = np.random.default_rng(0)
    jobs = Jobs(root)
    add_layers(jobs, rng)
    add_objects(jobs, rng)
    add_models(jobs, rng)
    add_training(jobs, rng)
    (root / "jobs.json").write_text(json.dumps(jobs.jobs))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(
        [str(LOADER.parent.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    run = subprocess.run([sys.executable, str(LOADER), str(root / "jobs.json"), str(root / "out.npz")],
                         capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    got = dict(np.load(root / "out.npz"))
    return {name: (expected, {k.split("/", 1)[1]: v for k, v in got.items() if k.split("/", 1)[0] == name})
            for name, expected in jobs.expected.items()}


def assert_same(round_trips, job: str, atol: float = ATOL) -> None:
    expected, got = round_trips[job]
    assert "error" not in got, f"{job} failed in the new process:\n{got.get('error')}"
    assert sorted(got) == sorted(expected), job
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=atol, rtol=1e-6, err_msg=f"{job}: {key}")


@pytest.mark.parametrize("name", sorted(tfdl_layers.__all__))
def test_layer_gives_identical_outputs_in_a_new_process(round_trips, name):
    assert_same(round_trips, f"layer_{name}")


@pytest.mark.parametrize("name", sorted(n for n in tfdl_losses.__all__ if n != "replica_mean"))
def test_loss_gives_identical_values_in_a_new_process(round_trips, name):
    assert_same(round_trips, f"loss_{name}")


@pytest.mark.parametrize("name", sorted(schedule_cases()))
def test_schedule_gives_identical_rates_in_a_new_process(round_trips, name):
    assert_same(round_trips, f"schedule_{name}")


@pytest.mark.parametrize("name", available_models())
def test_registry_model_gives_identical_outputs_in_a_new_process(round_trips, name):
    assert_same(round_trips, f"model_{name}")


@pytest.mark.parametrize("name", TRAINED)
def test_training_resumes_in_a_new_process_with_the_optimizer_state(round_trips, name):
    expected, _ = round_trips[f"training_{name}"]
    assert any(key.startswith(f"step{STEPS_AFTER_SAVE - 1}_") for key in expected)
    assert_same(round_trips, f"training_{name}")
