"""Do the exported artifacts compute what the Keras model computes?

Runs the Keras model, the SavedModel's `serving_default` signature and the
TFLite signature runner on the same raw inputs, and reports for each target
the largest absolute difference from Keras and how often the argmax (the
predicted class) agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from tfdl.export.saved_model import named_outputs


@dataclass(frozen=True)
class ParityResult:
    target: str
    max_abs_diff: float
    argmax_agreement: float
    passed: bool


@dataclass
class ParityReport:
    examples: int
    atol: float
    results: list[ParityResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict:
        return {
            "examples": self.examples,
            "atol": self.atol,
            "passed": self.passed,
            "targets": {r.target: asdict(r) for r in self.results},
        }


# Examples per call when a whole test split is run through a model: a split of
# 10,000 CIFAR images in one call holds gigabytes of activations at once.
BATCH = 256


def in_batches(call: Callable[[dict], Mapping], inputs: Mapping[str, np.ndarray],
               batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """`call(inputs)` computed `batch_size` examples at a time, outputs joined along the batch axis."""
    count = len(next(iter(inputs.values())))
    parts = [
        {k: np.asarray(v) for k, v in call({k: v[start:start + batch_size] for k, v in inputs.items()}).items()}
        for start in range(0, max(count, 1), batch_size)
    ]
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def keras_outputs(model, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Keras model's named outputs on `inputs` (keyed by input name), a batch at a time."""

    def call(chunk):
        feed = next(iter(chunk.values())) if len(chunk) == 1 else chunk
        return named_outputs(model, model(feed, training=False))

    return in_batches(call, inputs)


def saved_model_outputs(directory: Path | str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
    return in_batches(lambda chunk: signature(**{k: tf.constant(v) for k, v in chunk.items()}), inputs)


def tflite_outputs(path: Path | str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from tfdl.export.litert import load_interpreter

    runner = load_interpreter(path).get_signature_runner("serving_default")
    return in_batches(lambda chunk: runner(**chunk), inputs)


def _compare(target: str, reference: dict, candidate: dict, atol: float) -> ParityResult:
    missing = set(reference) - set(candidate)
    if missing:
        raise ValueError(f"{target} lacks outputs {sorted(missing)}; it has {sorted(candidate)}")
    diffs, agreements = [], []
    for name, expected in reference.items():
        got = np.asarray(candidate[name]).reshape(expected.shape)
        diffs.append(float(np.max(np.abs(got.astype(np.float64) - expected))))
        if expected.ndim in (2, 4) and expected.shape[-1] > 1:  # per example, or per pixel
            agreements.append(float(np.mean(got.argmax(-1) == expected.argmax(-1))))
    max_diff = max(diffs)
    agreement = min(agreements) if agreements else float("nan")
    return ParityResult(target, max_diff, agreement, max_diff <= atol)


def check_parity(
    model,
    inputs: dict[str, np.ndarray],
    saved_model_dir: Path | str | None = None,
    tflite_path: Path | str | None = None,
    atol: float = 1e-4,
    onnx_path: Path | str | None = None,
) -> ParityReport:
    """Compare each given artifact with `model` on `inputs` (raw, keyed by input name)."""
    reference = keras_outputs(model, inputs)
    report = ParityReport(examples=len(next(iter(inputs.values()))), atol=atol)
    if saved_model_dir is not None:
        report.results.append(_compare("saved_model", reference, saved_model_outputs(saved_model_dir, inputs), atol))
    if tflite_path is not None:
        report.results.append(_compare("tflite", reference, tflite_outputs(tflite_path, inputs), atol))
    if onnx_path is not None:
        from tfdl.export.onnx import onnx_outputs

        report.results.append(_compare("onnx", reference, in_batches(partial(onnx_outputs, onnx_path), inputs), atol))
    return report
