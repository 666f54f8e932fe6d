"""What each TFLite mode costs: accuracy against Keras, file size and latency, measured on the test split.

Each converted file runs in the LiteRT runtime (`LiteRTModel`, which
quantizes inputs and dequantizes outputs of integer models) on the raw test
inputs. The report gives the largest absolute difference from Keras, how
often the predicted class agrees with Keras, the accuracy against the
labels, the file size and the single-example latency. A mode passes when it
is within the tolerance set for its kind: a bound on the difference for the
float modes, a share of agreeing predictions for the quantized ones.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

from tfdl.export.litert import LiteRTModel
from tfdl.export.parity import in_batches
from tfdl.export.tflite import TFLiteExport

# Examples timed one at a time for the latency figure (after a warm-up).
_LATENCY_RUNS = 200
_LATENCY_WARMUP = 20


@dataclass(frozen=True)
class TFLiteModeReport:
    """One TFLite file against Keras on the test split (`None`: not measured, see `note`)."""

    mode: str
    file: str
    bytes: int
    max_abs_diff: float | None
    argmax_agreement: float | None
    accuracy: float | None
    keras_accuracy: float | None
    latency_ms_p50: float | None
    passed: bool | None
    criterion: str
    tf_ops: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "tf_ops": list(self.tf_ops)}


def _criterion(mode: str, float32_atol: float, float16_atol: float, min_agreement: float) -> tuple[str, float]:
    if mode == "float32":
        return f"max abs diff <= {float32_atol:g}", float32_atol
    if mode == "float16":
        return f"max abs diff <= {float16_atol:g}", float16_atol
    return f"argmax agreement >= {min_agreement:g}", min_agreement


def tflite_mode_report(
    export: TFLiteExport,
    inputs: Mapping[str, np.ndarray],
    keras_output: np.ndarray,
    labels: np.ndarray | None,
    output_name: str,
    *,
    float32_atol: float = 1e-4,
    float16_atol: float = 1e-2,
    min_agreement: float = 0.97,
) -> TFLiteModeReport:
    """Measure one converted file on `inputs` (raw, keyed by input name) against Keras's `keras_output`."""
    criterion, bound = _criterion(export.mode, float32_atol, float16_atol, min_agreement)
    common = dict(mode=export.mode, file=export.path.name, bytes=export.bytes, criterion=criterion,
                  tf_ops=tuple(export.tf_ops))
    if export.tf_ops:
        return TFLiteModeReport(
            **common, max_abs_diff=None, argmax_agreement=None, accuracy=None, keras_accuracy=None,
            latency_ms_p50=None, passed=None,
            note="holds Select TF ops: it needs a LiteRT build with the Flex delegate, which the installed runtime lacks",
        )
    runner = LiteRTModel(export.path)
    got = np.asarray(in_batches(runner, inputs)[output_name], dtype=np.float64).reshape(keras_output.shape)
    diff = float(np.max(np.abs(got - keras_output)))
    # Class scores on the last axis: per example, or per pixel for a segmentation map.
    classes = keras_output.ndim in (2, 4) and keras_output.shape[-1] > 1
    agreement = float(np.mean(got.argmax(-1) == keras_output.argmax(-1))) if classes else None
    accuracy = keras_accuracy = None
    if classes and labels is not None:
        accuracy = float(np.mean(got.argmax(-1) == labels))
        keras_accuracy = float(np.mean(keras_output.argmax(-1) == labels))
    if export.mode in ("float32", "float16"):
        passed = diff <= bound
    else:
        passed = agreement is not None and agreement >= bound
    return TFLiteModeReport(
        **common, max_abs_diff=diff, argmax_agreement=agreement, accuracy=accuracy,
        keras_accuracy=keras_accuracy, latency_ms_p50=single_example_latency(runner, inputs), passed=passed,
    )


def single_example_latency(runner: LiteRTModel, inputs: Mapping[str, np.ndarray], runs: int = _LATENCY_RUNS) -> float:
    """Median milliseconds of one call on one example, cycling through the inputs."""
    count = len(next(iter(inputs.values())))
    rows = [{k: v[i : i + 1] for k, v in inputs.items()} for i in range(min(count, runs))]
    for i in range(_LATENCY_WARMUP):
        runner(rows[i % len(rows)])
    times = []
    for i in range(runs):
        started = time.perf_counter()
        runner(rows[i % len(rows)])
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)
